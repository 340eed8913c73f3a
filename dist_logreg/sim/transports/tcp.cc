// The TCP transport of the packet engine: one ns-3 TCP socket per connection.
//
// Its Python record (tcp.py) names the counters it reports, in the order of Counters():
// retransmitted segments, retransmitted bytes, retransmission timeouts.
//
// TCP small queues (TSQ, as Linux's tcp_small_queue_check): a sending socket (TsqSocket)
// sends no new segment while more than its limit of its own bytes wait in its host's NIC
// queue, and resumes when the queue drains below it. The limit is max(2 segments, the
// pacing rate x tsq seconds), the pacing rate as Linux computes it (2 x cwnd / srtt in
// slow start, 1.2 x after; at most the NIC's rate). ns-3's TcpSocketBase has no TSQ: a
// window grew into the NIC queue (unbounded, so that it never drops) and left it as a
// burst at line rate into the fabric.
// Compiled by cppyy's include (a file is compiled once; another may include it).
#ifndef DLR_TRANSPORTS_TCP_CC
#define DLR_TRANSPORTS_TCP_CC

#include <algorithm>
#include <string>
#include <vector>

#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"

#include "../ns3driver.h"

namespace dlr {
using namespace ns3;

class TsqSocket : public TcpSocketBase {
 public:
  uint64_t queued = 0;  // bytes of this socket waiting in its host's NIC queue
  double nicRate = 0;   // bytes/s
  double tsq = 0;       // s of the pacing rate the socket may queue; 0: no limit
  uint32_t wireSegment = 0;
  mutable bool blocked = false;  // the last send stopped at the limit

  // Linux: max(2 packets, sk_pacing_rate >> sk_pacing_shift (10: ~1 ms))
  double Limit() const {
    double rate = nicRate, srtt = m_tcb->m_srtt.Get().GetSeconds();
    if (srtt > 0) {
      double ratio = m_tcb->m_cWnd.Get() < m_tcb->m_ssThresh.Get() ? 2.0 : 1.2;
      rate = std::min(rate, ratio * m_tcb->m_cWnd.Get() / srtt);
    }
    return std::max(2.0 * wireSegment, rate * tsq);
  }

  uint32_t AvailableWindow() const override {
    if (tsq > 0 && queued >= Limit()) {
      blocked = true;
      return 0;
    }
    return TcpSocketBase::AvailableWindow();
  }

  // The NIC queue sent n of this socket's bytes on.
  void Drained(uint32_t n) {
    queued -= std::min<uint64_t>(queued, n);
    if (blocked && queued < Limit()) {
      blocked = false;
      // not from inside the queue's dequeue: the segments sent go into that queue
      Simulator::ScheduleNow([this]() { SendPendingData(m_connected); });
    }
  }
};

// A TsqSocket on node's TCP, set up as TcpL4Protocol::CreateSocket sets up its sockets.
inline Ptr<TsqSocket> CreateTsqSocket(Ptr<Node> node) {
  Ptr<TcpL4Protocol> tcp = node->GetObject<TcpL4Protocol>();
  TypeIdValue cc, recovery, rtt;
  tcp->GetAttribute("SocketType", cc);
  tcp->GetAttribute("RecoveryType", recovery);
  tcp->GetAttribute("RttEstimatorType", rtt);
  ObjectFactory f;
  Ptr<TsqSocket> s = CreateObject<TsqSocket>();
  s->SetNode(node);
  s->SetTcp(tcp);
  f.SetTypeId(rtt.Get());
  s->SetRtt(f.Create<RttEstimator>());
  f.SetTypeId(cc.Get());
  s->SetCongestionControlAlgorithm(f.Create<TcpCongestionOps>());
  f.SetTypeId(recovery.Get());
  s->SetRecoveryAlgorithm(f.Create<TcpRecoveryOps>());
  tcp->AddSocket(s);
  return s;
}

class TcpTransport : public Transport {
 public:
  // `type`: the congestion control's ns-3 TypeId name (ns3::TcpCubic, ...). Sets the TCP
  // defaults every socket of the run takes: construct after Reset, before the Net.
  // `tsq`: seconds of its pacing rate a socket may keep in its host's NIC queue (0: no
  // limit); `wireSegment`: a full segment's bytes in that queue; `timestamps`: the
  // timestamp option (RFC 7323) on every segment, as Linux sends it.
  TcpTransport(const std::string& type, uint32_t segment, uint32_t buffer, double minRto,
               bool ecn, double tsq = 0, uint32_t wireSegment = 0, bool timestamps = true)
      : m_tsq(tsq), m_wireSegment(wireSegment) {
    Config::SetDefault("ns3::TcpL4Protocol::SocketType",
                       TypeIdValue(TypeId::LookupByName(type)));
    Config::SetDefault("ns3::TcpSocket::SegmentSize", UintegerValue(segment));
    Config::SetDefault("ns3::TcpSocket::SndBufSize", UintegerValue(buffer));
    // 4x the send buffer: what is in flight (at most the send buffer) always fits at the
    // receiver, else ns-3 can reject the segment that fills a hole and stall on RTOs
    Config::SetDefault("ns3::TcpSocket::RcvBufSize", UintegerValue(4 * buffer));
    Config::SetDefault("ns3::TcpSocketBase::MinRto", TimeValue(Seconds(minRto)));
    // Every segment ACKed at once (Linux's quick-ACK): with delayed ACKs (ns-3: every 2nd
    // segment or 200 ms) a window of one or two segments, after an RTO or a DCTCP cut,
    // waited for the timer on every round trip (a 1 MiB ring at 0.1% loss took 15 s, not
    // 0.44 s)
    Config::SetDefault("ns3::TcpSocket::DelAckCount", UintegerValue(1));
    // SACK off: with it, ns-3.44 let a connection that lost segments at a full port
    // retransmit on every RTO without progress for minutes of simulated time (recursive
    // doubling on a leaf-spine, 1 MiB buffers); NewReno-style recovery does not stall
    Config::SetDefault("ns3::TcpSocketBase::Sack", BooleanValue(false));
    Config::SetDefault("ns3::TcpSocketBase::UseEcn", StringValue(ecn ? "On" : "Off"));
    // Off: no option to write and parse on every segment and ACK (ns-3 builds it as an
    // object through its factory, three times per packet received); RTT from ACK times
    Config::SetDefault("ns3::TcpSocketBase::Timestamp", BooleanValue(timestamps));
  }

  void Port(uint32_t node, Ptr<QueueDisc> q, double rate) override {
    if (m_ports.size() <= node) m_ports.resize(node + 1);
    m_ports[node].push_back({q, rate});
  }

  void Open(NodeContainer& nodes, const std::vector<Ends>& conns,
            std::function<void()> up) override {
    m_up = up;
    m_conns.assign(conns.size(), Conn());
    if (m_tsq > 0) WatchHostQueues(conns);
    OpenSinks(nodes, conns);
    m_toConnect = 0;
    for (auto& e : conns)
      if (e.src != e.dst) ++m_toConnect;
    for (size_t c = 0; c < conns.size(); ++c)
      if (conns[c].src != conns[c].dst) OpenConn(nodes, conns[c], c);
    if (m_toConnect == 0) m_up();
  }

  void Send(size_t c, uint64_t bytes) override {
    m_conns[c].pending += bytes;
    Push(c);
  }

  // Control: a segment without payload (an ACK, SYN, FIN).
  int Class(Ptr<const QueueDiscItem> item) const override {
    Ptr<const Ipv4QueueDiscItem> ip = DynamicCast<const Ipv4QueueDiscItem>(item);
    if (!ip || ip->GetHeader().GetProtocol() != 6) return 0;
    TcpHeader h;
    uint32_t header = ip->GetPacket()->PeekHeader(h);
    return ip->GetPacket()->GetSize() <= header ? 1 : 0;
  }

  std::vector<uint64_t> Counters(size_t nConns) const override {
    std::vector<uint64_t> out(3 * nConns, 0);
    for (size_t c = 0; c < std::min(nConns, m_conns.size()); ++c) {
      out[c] = m_conns[c].retrans;
      out[nConns + c] = m_conns[c].retransBytes;
      out[2 * nConns + c] = m_conns[c].timeouts;
    }
    return out;
  }

  void Close() override {
    for (auto& c : m_conns)
      if (c.sock) c.sock->Close();
    for (auto& s : m_sinks) s->Close();
    m_accepted.clear();
    m_conns.clear();
    m_ports.clear();
    m_sinks.clear();
  }

 private:
  struct Conn {
    Ptr<Socket> sock;
    Ptr<TsqSocket> tsq;  // the same socket when TSQ is on
    uint64_t pending = 0;
    uint32_t highTx = 0;
    bool sentAny = false;
    uint64_t retrans = 0, retransBytes = 0, timeouts = 0;
  };

  std::vector<Conn> m_conns;
  std::vector<Ptr<Socket>> m_sinks, m_accepted;
  int64_t m_toConnect = 0;
  std::function<void()> m_up;
  double m_tsq = 0;
  uint32_t m_wireSegment = 0;
  std::vector<std::vector<std::pair<Ptr<QueueDisc>, double>>> m_ports;  // per node

  // The sending connection a packet in a host's queue belongs to (source port 1024 + c;
  // the receivers' ACKs leave port 9), or -1. The port is the TCP header's first two
  // bytes, read as they are: deserializing the header (PeekHeader) builds an ns-3 object
  // per option (the timestamp on every segment), twice a packet here.
  int64_t ConnOf(Ptr<const QueueDiscItem> item) const {
    Ptr<const Ipv4QueueDiscItem> ip = DynamicCast<const Ipv4QueueDiscItem>(item);
    if (!ip || ip->GetHeader().GetProtocol() != 6) return -1;
    uint8_t port[2];
    if (ip->GetPacket()->CopyData(port, 2) < 2) return -1;
    int64_t c = (int64_t)((port[0] << 8) | port[1]) - 1024;
    return c >= 0 && (size_t)c < m_conns.size() && m_conns[c].tsq ? c : -1;
  }

  // Count each sending socket's bytes in its host's NIC queue (every port of a node that
  // sends: a host has one).
  void WatchHostQueues(const std::vector<Ends>& conns) {
    std::vector<bool> sends(m_ports.size(), false);
    for (auto& e : conns)
      if (e.src != e.dst && e.src < sends.size()) sends[e.src] = true;
    for (size_t n = 0; n < m_ports.size(); ++n) {
      if (!sends[n]) continue;
      for (auto& port : m_ports[n]) {
        port.first->TraceConnectWithoutContext(
            "Enqueue", Callback<void, Ptr<const QueueDiscItem>>([this](Ptr<const QueueDiscItem> i) {
              int64_t c = ConnOf(i);
              if (c >= 0) m_conns[c].tsq->queued += i->GetSize();
            }));
        port.first->TraceConnectWithoutContext(
            "Dequeue", Callback<void, Ptr<const QueueDiscItem>>([this](Ptr<const QueueDiscItem> i) {
              int64_t c = ConnOf(i);
              if (c >= 0) m_conns[c].tsq->Drained(i->GetSize());
            }));
      }
    }
  }

  void OpenSinks(NodeContainer& nodes, const std::vector<Ends>& conns) {
    std::vector<bool> has(nodes.GetN(), false);
    for (auto& e : conns)
      if (e.src != e.dst) has[e.dst] = true;
    for (uint32_t n = 0; n < nodes.GetN(); ++n) {
      if (!has[n]) continue;
      Ptr<Socket> s = Socket::CreateSocket(nodes.Get(n), TcpSocketFactory::GetTypeId());
      s->Bind(InetSocketAddress(Ipv4Address::GetAny(), 9));
      s->Listen();
      s->SetAcceptCallback(MakeNullCallback<bool, Ptr<Socket>, const Address&>(),
                           Callback<void, Ptr<Socket>, const Address&>(
                               [this](Ptr<Socket> a, const Address& from) { Accepted(a, from); }));
      m_sinks.push_back(s);
    }
  }

  // A connection's source port is 1024 + its index: the receiver knows which one it is.
  void Accepted(Ptr<Socket> a, const Address& from) {
    size_t c = InetSocketAddress::ConvertFrom(from).GetPort() - 1024;
    m_accepted.push_back(a);
    a->SetRecvCallback(Callback<void, Ptr<Socket>>([this, c](Ptr<Socket> s) { Recv(c, s); }));
  }

  void OpenConn(NodeContainer& nodes, const Ends& e, size_t c) {
    Conn& cn = m_conns[c];
    if (m_tsq > 0) {
      cn.tsq = CreateTsqSocket(nodes.Get(e.src));
      cn.tsq->tsq = m_tsq;
      cn.tsq->wireSegment = m_wireSegment;
      if (e.src < m_ports.size())
        for (auto& port : m_ports[e.src]) cn.tsq->nicRate = std::max(cn.tsq->nicRate, port.second);
      cn.sock = cn.tsq;
    } else {
      cn.sock = Socket::CreateSocket(nodes.Get(e.src), TcpSocketFactory::GetTypeId());
    }
    cn.sock->Bind(InetSocketAddress(Ipv4Address::GetAny(), 1024 + c));
    cn.sock->TraceConnectWithoutContext(
        "Tx", Callback<void, Ptr<const Packet>, const TcpHeader&, Ptr<const TcpSocketBase>>(
                  [this, c](Ptr<const Packet> p, const TcpHeader& h, Ptr<const TcpSocketBase>) {
                    OnTx(c, p, h);
                  }));
    cn.sock->TraceConnectWithoutContext(
        "CongState",
        Callback<void, TcpSocketState::TcpCongState_t, TcpSocketState::TcpCongState_t>(
            [this, c](TcpSocketState::TcpCongState_t, TcpSocketState::TcpCongState_t now) {
              if (now == TcpSocketState::CA_LOSS) m_conns[c].timeouts += 1;
            }));
    cn.sock->SetConnectCallback(Callback<void, Ptr<Socket>>([this](Ptr<Socket>) {
                                  m_toConnect -= 1;
                                  if (m_toConnect == 0) m_up();
                                }),
                                Callback<void, Ptr<Socket>>([](Ptr<Socket>) {
                                  NS_FATAL_ERROR("dlr: a connection failed");
                                }));
    cn.sock->SetSendCallback(
        Callback<void, Ptr<Socket>, uint32_t>([this, c](Ptr<Socket>, uint32_t) { Push(c); }));
    cn.sock->Connect(InetSocketAddress(Ipv4Address(e.dstAddr), 9));
  }

  // A data segment below the highest byte sent so far is a retransmission.
  void OnTx(size_t c, Ptr<const Packet> p, const TcpHeader& h) {
    uint32_t n = p->GetSize();
    if (n == 0) return;
    Conn& cn = m_conns[c];
    uint32_t seq = h.GetSequenceNumber().GetValue();
    if (cn.sentAny && (int32_t)(seq - cn.highTx) < 0) {
      cn.retrans += 1;
      cn.retransBytes += n;
    }
    if (!cn.sentAny || (int32_t)(seq + n - cn.highTx) > 0) cn.highTx = seq + n;
    cn.sentAny = true;
  }

  // As much of the stream as the send buffer takes, in one write: TCP segments the bytes
  // the same whatever the writes, but a segment that straddles two written packets is
  // merged by ns-3 into real memory (copied at every later header and read); writes of
  // 64 KiB did that every 7 jumbo segments.
  void Push(size_t c) {
    Conn& cn = m_conns[c];
    while (cn.pending > 0) {
      uint32_t room = cn.sock->GetTxAvailable();
      if (room == 0) break;
      uint32_t n = (uint32_t)std::min<uint64_t>(cn.pending, room);
      int sent = cn.sock->Send(Create<Packet>(n));
      if (sent <= 0) break;
      cn.pending -= (uint64_t)sent;
    }
  }

  void Recv(size_t c, Ptr<Socket> s) {
    uint64_t n = 0;
    Ptr<Packet> p;
    while ((p = s->Recv())) {
      if (p->GetSize() == 0) break;
      n += p->GetSize();
    }
    if (n > 0) delivered(c, n);
  }
};

}  // namespace dlr

#endif  // DLR_TRANSPORTS_TCP_CC
