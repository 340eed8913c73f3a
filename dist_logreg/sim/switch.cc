// The packet engine's forwarding: a table lookup per packet, O(1) whatever the fabric's size.
//
// Every node (host or switch) gets a dlr::TableRouting instead of ns-3's static and global
// routing (whose lookups scan every route and every interface address: the cost of a
// packet-hop grew with the hosts). The Net fills two tables, shared by all nodes:
//
// - pinned paths: connection c's data packets (source port 1024 + c; its reverse traffic,
//   ACKs, NACKs and CNPs, has destination port 1024 + c) leave node n on the interface
//   the Python side chose (the fabric's own ECMP hash, so the flow and packet engines see
//   the same collisions). One hash map per node, keyed by (c, direction).
// - equal-cost groups: per (node, destination host), the interfaces on a shortest path.
//   A packet with no pinned entry is hashed over its group on its 5-tuple, salted by the
//   node (salt 0 on every node: polarized), or, when spraying, sent on a random member of
//   the group per packet (on a node told to SprayInTurn, the members in turn).
//
// A host delivers what is addressed to it and drops anything else (hosts do not forward).
// Compiled by cppyy's include (a file is compiled once; another may include it).
#ifndef DLR_SWITCH_CC
#define DLR_SWITCH_CC

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"

namespace dlr {
using namespace ns3;

// What every node's routing reads: the groups in CSR form over (node, host) pairs, the
// host of each address, and each directed link's interface on its sending node.
struct Tables {
  int hosts = 0;
  std::vector<int64_t> groupPtr;  // (nodes * hosts + 1): group of (n, h) is [ptr, ptr+1)
  std::vector<int32_t> groupIf;   // interfaces on node n towards host h
  std::unordered_map<uint32_t, int32_t> hostOf;  // host address -> host index
  bool spray = false;
};

// A 64-bit mix (splitmix64's finaliser): a hash whose low bits depend on every input bit.
inline uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class TableRouting : public Ipv4RoutingProtocol {
 public:
  static TypeId GetTypeId() {
    static TypeId tid = TypeId("dlr::TableRouting")
                            .SetParent<Ipv4RoutingProtocol>()
                            .SetGroupName("Internet")
                            .AddConstructor<TableRouting>();
    return tid;
  }

  // node: its index; host: whether it is a host (delivers, never forwards); salt: mixed
  // into its ECMP hash (0 on every node: polarized)
  void Configure(std::shared_ptr<const Tables> tables, int node, bool host, uint64_t salt,
                 uint32_t rngSeed) {
    m_tables = std::move(tables);
    m_node = node;
    m_host = host;
    m_salt = salt;
    m_rng = Mix(rngSeed * 0x9e3779b97f4a7c15ULL + (uint64_t)node + 1);
  }

  // Connection c's packets in `direction` (0: data, from source port 1024 + c; 1: its
  // reverse traffic, to port 1024 + c) leave this node on interface `iface`.
  void Pin(uint32_t c, int direction, uint32_t iface) { m_pinned[(c << 1) | direction] = iface; }

  // The address this host answers to (its NIC's).
  void SetOwnAddress(uint32_t address) { m_own = address; }

  // When spraying, take the group's members in turn (per flow, its 5-tuple) instead of at
  // random: a NIC spreading a QP evenly over its ports (the rail family's NIC nodes).
  void SprayInTurn() { m_inTurn = true; }

  Ptr<Ipv4Route> RouteOutput(Ptr<Packet> p, const Ipv4Header& header, Ptr<NetDevice>,
                             Socket::SocketErrno& sockerr) override {
    int32_t iface = Choose(p, header);
    if (iface < 0) {
      sockerr = Socket::ERROR_NOROUTETOHOST;
      return nullptr;
    }
    sockerr = Socket::ERROR_NOTERROR;
    return RouteVia(iface);
  }

  bool RouteInput(Ptr<const Packet> p, const Ipv4Header& header, Ptr<const NetDevice> idev,
                  const UnicastForwardCallback& ucb, const MulticastForwardCallback&,
                  const LocalDeliverCallback& lcb, const ErrorCallback& ecb) override {
    if (m_host) {
      if (header.GetDestination().Get() != m_own) return false;  // hosts do not forward
      lcb(p, header, m_ipv4->GetInterfaceForDevice(idev));
      return true;
    }
    int32_t iface = Choose(p, header);
    if (iface < 0) {
      ecb(p, header, Socket::ERROR_NOROUTETOHOST);
      return true;
    }
    ucb(RouteVia(iface), p, header);
    return true;
  }

  void NotifyInterfaceUp(uint32_t) override {}
  void NotifyInterfaceDown(uint32_t) override {}
  void NotifyAddAddress(uint32_t, Ipv4InterfaceAddress) override {}
  void NotifyRemoveAddress(uint32_t, Ipv4InterfaceAddress) override {}
  void SetIpv4(Ptr<Ipv4> ipv4) override { m_ipv4 = ipv4; }
  void PrintRoutingTable(Ptr<OutputStreamWrapper> stream, Time::Unit) const override {
    *stream->GetStream() << "dlr::TableRouting on node " << m_node << ": " << m_pinned.size()
                         << " pinned entries\n";
  }

 protected:
  void DoDispose() override {
    m_routes.clear();
    m_ipv4 = nullptr;
    Ipv4RoutingProtocol::DoDispose();
  }

 private:
  std::shared_ptr<const Tables> m_tables;
  int m_node = 0;
  bool m_host = false;
  uint64_t m_salt = 0, m_rng = 1;
  uint32_t m_own = 0;
  bool m_inTurn = false;
  std::unordered_map<uint64_t, uint64_t> m_turn;  // per flow (5-tuple): the next member
  Ptr<Ipv4> m_ipv4;
  std::unordered_map<uint32_t, uint32_t> m_pinned;
  std::unordered_map<uint32_t, Ptr<Ipv4Route>> m_routes;  // one per interface, made once

  // The interface for this packet: its pinned entry, else its equal-cost group's member by
  // hash (or at random per packet when spraying); -1 if the destination is unknown.
  int32_t Choose(Ptr<const Packet> p, const Ipv4Header& header) {
    uint16_t sport = 0, dport = 0;
    uint8_t ports[4];
    if (p && p->GetSize() >= 4 && p->CopyData(ports, 4) == 4) {  // TCP and UDP alike
      sport = (uint16_t)((ports[0] << 8) | ports[1]);
      dport = (uint16_t)((ports[2] << 8) | ports[3]);
    }
    if (!m_pinned.empty()) {
      auto it = m_pinned.end();
      if (sport >= 1024) it = m_pinned.find(((uint32_t)(sport - 1024) << 1) | 0u);
      if (it == m_pinned.end() && dport >= 1024)
        it = m_pinned.find(((uint32_t)(dport - 1024) << 1) | 1u);
      if (it != m_pinned.end()) return (int32_t)it->second;
    }
    const Tables& t = *m_tables;
    auto h = t.hostOf.find(header.GetDestination().Get());
    if (h == t.hostOf.end()) return -1;
    size_t pair = (size_t)m_node * t.hosts + h->second;
    int64_t lo = t.groupPtr[pair], n = t.groupPtr[pair + 1] - lo;
    if (n <= 0) return -1;
    if (n == 1) return t.groupIf[lo];
    uint64_t pick;
    uint64_t tuple = ((uint64_t)header.GetSource().Get() << 32) | header.GetDestination().Get();
    uint64_t rest = ((uint64_t)header.GetProtocol() << 32) | ((uint64_t)sport << 16) | dport;
    if (t.spray && m_inTurn) {
      pick = m_turn[Mix(Mix(tuple) ^ rest)]++;  // per flow: a QP's packets alternate
    } else if (t.spray) {
      m_rng = Mix(m_rng);
      pick = m_rng;
    } else {
      pick = Mix(Mix(tuple ^ m_salt) ^ rest);
    }
    return t.groupIf[lo + (int64_t)(pick % (uint64_t)n)];
  }

  Ptr<Ipv4Route> RouteVia(uint32_t iface) {
    auto it = m_routes.find(iface);
    if (it != m_routes.end()) return it->second;
    Ptr<Ipv4Route> r = Create<Ipv4Route>();
    r->SetOutputDevice(m_ipv4->GetNetDevice(iface));
    r->SetSource(m_ipv4->GetAddress(iface, 0).GetLocal());
    r->SetGateway(Ipv4Address::GetZero());  // point-to-point: no next-hop resolution
    m_routes[iface] = r;
    return r;
  }
};

}  // namespace dlr

#endif  // DLR_SWITCH_CC
