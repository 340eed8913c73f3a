// The packet engine's seam between the network (ns3driver.cc) and a transport.
//
// A transport (transports/tcp.cc: TCP sockets) opens one connection per (src, dst, key)
// before the clock starts and carries byte streams on them; the Net hands it bytes to send
// and hears back how many bytes each receiver has read. Everything a transport counts
// (retransmissions, timeouts, ...) it reports per connection through Counters().
#ifndef DLR_NS3DRIVER_H
#define DLR_NS3DRIVER_H

#include <cstdint>
#include <functional>
#include <vector>

#include "ns3/core-module.h"
#include "ns3/network-module.h"
#include "ns3/traffic-control-module.h"

namespace dlr {

// One connection's ends: nodes and the address the sender connects to.
struct Ends {
  uint32_t src = 0, dst = 0, dstAddr = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // After the internet stack is on every node, before any connection opens: per-host setup.
  virtual void Install(ns3::NodeContainer& /*nodes*/) {}
  // Each egress port once it has its queue disc, before Open: the node it leaves, its
  // queue and its rate in bytes/s (e.g. TCP bounds what a socket keeps in its host's queue).
  virtual void Port(uint32_t /*node*/, ns3::Ptr<ns3::QueueDisc> /*q*/, double /*rate*/) {}
  // A packet's priority class at a port with priorities (PFC on): 0 data, 1 control (leaves
  // first, paused apart).
  virtual int Class(ns3::Ptr<const ns3::QueueDiscItem> /*item*/) const { return 0; }
  // Open every connection but the local ones (src == dst: the Net carries those itself)
  // at simulated time 0, then call up() once, when the last one can carry bytes (at once
  // if there is none).
  virtual void Open(ns3::NodeContainer& nodes, const std::vector<Ends>& conns,
                    std::function<void()> up) = 0;
  // Append `bytes` to connection c's byte stream (c: its index in Open's conns).
  virtual void Send(size_t c, uint64_t bytes) = 0;
  // Per-connection counters, counter-major: counter k of connection c at k * nConns + c,
  // in the order the transport's Python record names them (its `counters`).
  virtual std::vector<uint64_t> Counters(size_t nConns) const = 0;
  // A time series the transport keeps (e.g. a QP's rate): flat triples (connection,
  // simulated time in s, value); empty if it keeps none.
  virtual std::vector<double> Series() const { return {}; }
  // After the run: close sockets, drop references (before Simulator::Destroy).
  virtual void Close() = 0;
  // Set by the Net: connection c's receiver has read `bytes` more bytes.
  std::function<void(size_t, uint64_t)> delivered;
};

}  // namespace dlr

#endif  // DLR_NS3DRIVER_H
