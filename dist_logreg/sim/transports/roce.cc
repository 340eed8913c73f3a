// The RoCEv2 transport of the packet engine: one reliable-connected queue pair per
// connection, carried in UDP (RoCEv2 is UDP-encapsulated, destination port 4791).
//
// Sender: packets of `payload` bytes numbered by a PSN, paced at the QP's rate (line rate
// at start); the QPs of one host share its NIC round robin, one packet at a time, so the
// host queue holds at most a packet or two. Receiver: in-order packets are delivered; a
// gap is NACKed once (go-back-N: the out-of-order packets are dropped and the sender goes
// back to the first missing PSN; selective, as IRN: they are kept, and the NACK names the
// PSNs newly missing, which alone are resent). ACKs every `ackEvery` packets and at the
// end of what the sender had queued; a timeout (`rto`) resends from the first unacked PSN
// when the tail is lost. DCQCN (Zhu et al., SIGCOMM 2015): data is ECN-capable; the
// receiver answers a CE-marked packet with a CNP, at most one per QP per `cnpInterval`;
// the sender cuts its rate by alpha/2 and raises alpha, then recovers in stages (fast
// recovery, additive, hyper increase) on a timer and a byte counter.
//
// Each packet's first 16 bytes are real (the BTH and ICRC of RoCEv2): type, flags,
// connection, PSN, and a second PSN for a NACK. Its Python record (roce.py) names the
// counters, in the order of Counters(): retransmitted packets and bytes, timeouts, NACKs
// received, CNPs received.
// Compiled by cppyy's include (a file is compiled once; another may include it).
#ifndef DLR_TRANSPORTS_ROCE_CC
#define DLR_TRANSPORTS_ROCE_CC

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <vector>

#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"
#include "ns3/traffic-control-module.h"

#include "../ns3driver.h"

namespace dlr {
using namespace ns3;

// DCQCN's parameters (roce.py: each an option, with its source).
struct Dcqcn {
  bool on = true;
  double g = 1.0 / 256, timer = 55e-6, rai = 40e6 / 8, rhai = 400e6 / 8, minRate = 100e6 / 8;
  double cnpInterval = 50e-6;
  uint64_t byteCounter = 10u << 20;
  uint32_t stages = 5;  // F: fast-recovery stages before additive increase
};

class RoceTransport : public Transport {
 public:
  enum : uint8_t { DATA = 1, ACK = 2, NACK = 3, CNP = 4 };
  static const uint32_t HDR = 16, PORT = 4791;

  RoceTransport(uint32_t payload, bool selective, double rto, uint32_t ackEvery,
                const Dcqcn& cc)
      : m_payload(payload), m_selective(selective), m_rto(rto),
        m_ackEvery(std::max<uint32_t>(ackEvery, 1)), m_cc(cc) {}

  // Each connection's line rate, bytes/s (0: its host's NIC rate), before Open: a host
  // whose one device feeds links of different rates (a GPU: its NVLink and its NIC) paces
  // each QP at its path's own NIC (packet_graph.py).
  void SetLineRates(const std::vector<double>& rates) { m_lineOf = rates; }

  // Test hook: the first time connection c sends PSN psn, the packet is lost on the wire.
  void DropOnce(size_t c, uint32_t psn) { m_drops.push_back({c, psn}); }

  void Open(NodeContainer& nodes, const std::vector<Ends>& conns,
            std::function<void()> up) override {
    m_nodes = nodes;
    m_qp.assign(conns.size(), Qp());
    m_rx.assign(conns.size(), Rx());
    m_host.assign(nodes.GetN(), Host());
    std::vector<bool> sink(nodes.GetN(), false);
    for (size_t c = 0; c < conns.size(); ++c) {
      const Ends& e = conns[c];
      if (e.src == e.dst) continue;
      sink[e.dst] = true;
      Qp& q = m_qp[c];
      q.node = e.src;
      m_host[e.src].line = LineRate(e.src);
      bool own = c < m_lineOf.size() && m_lineOf[c] > 0;  // its path's, below the host's
      q.line = q.rate = q.target = own ? m_lineOf[c] : m_host[e.src].line;
      m_host[e.src].nic = nodes.Get(e.src)->GetObject<TrafficControlLayer>()
                              ->GetRootQueueDiscOnDevice(nodes.Get(e.src)->GetDevice(1));
      m_host[e.src].qps.push_back(c);
      q.sock = Socket::CreateSocket(nodes.Get(e.src), UdpSocketFactory::GetTypeId());
      q.sock->Bind(InetSocketAddress(Ipv4Address::GetAny(), 1024 + c));
      q.sock->SetIpTos(0x02);  // ECT(0): switches mark instead of dropping
      q.sock->Connect(InetSocketAddress(Ipv4Address(e.dstAddr), PORT));
      q.sock->SetRecvCallback(
          Callback<void, Ptr<Socket>>([this, c](Ptr<Socket> s) { OnControl(c, s); }));
    }
    for (uint32_t n = 0; n < nodes.GetN(); ++n) {
      if (!sink[n]) continue;
      if (m_host[n].line == 0) m_host[n].line = LineRate(n);
      Ptr<Socket> s = Socket::CreateSocket(nodes.Get(n), UdpSocketFactory::GetTypeId());
      s->Bind(InetSocketAddress(Ipv4Address::GetAny(), PORT));
      s->SetIpRecvTos(true);
      s->SetRecvCallback(
          Callback<void, Ptr<Socket>>([this, n](Ptr<Socket> sk) { OnData(n, sk); }));
      m_sinks.push_back(s);
    }
    up();  // no handshake: a QP is ready when created
  }

  void Send(size_t c, uint64_t bytes) override {
    m_qp[c].pending += bytes;
    Wake(m_qp[c].node, Simulator::Now());
  }

  // Control: every packet but DATA (ACK, NACK, CNP): the byte after the UDP header.
  int Class(Ptr<const QueueDiscItem> item) const override {
    Ptr<const Ipv4QueueDiscItem> ip = DynamicCast<const Ipv4QueueDiscItem>(item);
    if (!ip || ip->GetHeader().GetProtocol() != 17 || ip->GetPacket()->GetSize() < 9) return 0;
    uint8_t b[9];
    ip->GetPacket()->CopyData(b, 9);
    return b[8] == DATA ? 0 : 1;
  }

  std::vector<uint64_t> Counters(size_t nConns) const override {
    std::vector<uint64_t> out(5 * nConns, 0);
    for (size_t c = 0; c < std::min(nConns, m_qp.size()); ++c) {
      const Qp& q = m_qp[c];
      uint64_t v[5] = {q.retrans, q.retransBytes, q.timeouts, q.nacks, q.cnps};
      for (size_t k = 0; k < 5; ++k) out[k * nConns + c] = v[k];
    }
    return out;
  }

  // Rate changes (connection, time s, bytes/s), at most kSeries per QP.
  std::vector<double> Series() const override { return m_series; }

  void Close() override {
    for (auto& q : m_qp) {
      if (q.sock) q.sock->Close();
      Simulator::Cancel(q.rtoEv);
      Simulator::Cancel(q.incEv);
    }
    for (auto& s : m_sinks) s->Close();
    for (auto& h : m_host) Simulator::Cancel(h.wake);
    m_sinks.clear();
    m_qp.clear();
    m_rx.clear();
    m_host.clear();
  }

 private:
  static const size_t kSeries = 400;
  struct Qp {
    Ptr<Socket> sock;
    uint32_t node = 0;
    uint64_t pending = 0;       // bytes handed over, not yet cut into packets
    std::vector<uint32_t> len;  // payload of each PSN cut so far
    uint32_t nxt = 0, una = 0;  // next PSN to send (go-back-N rewinds it), first unacked
    std::deque<uint32_t> retx;  // selective: PSNs to resend first
    double line = 0, rate = 0, target = 0, alpha = 1.0, alphaAt = 0, ackAskedAt = 0;
    Time next;  // pacing: the QP's next packet not before this
    uint64_t sinceInc = 0;
    uint32_t highSent = 0;  // highest PSN sent + 1: a PSN below it is a resend
    uint32_t timerStage = 0, byteStage = 0, sinceAck = 0;
    EventId rtoEv, incEv;
    uint64_t retrans = 0, retransBytes = 0, timeouts = 0, nacks = 0, cnps = 0;
    size_t samples = 0;
  };
  struct Rx {
    uint32_t nxt = 0, high = 0;  // next PSN expected in order; highest PSN seen + 1
    bool nacked = false;         // go-back-N: the gap at nxt was NACKed already
    double lastCnp = -1.0;
    std::map<uint32_t, uint32_t> ooo;  // selective: PSN -> payload, held until in order
    Address from;
  };
  struct Host {
    std::vector<size_t> qps;
    size_t rr = 0;
    double line = 0;
    Ptr<QueueDisc> nic;  // the NIC's own queue: paused by PFC, the host waits
    Time busy, wakeAt;  // the NIC is sending until busy; a Pump is due at wakeAt
    EventId wake;
  };

  uint32_t m_payload;
  bool m_selective;
  double m_rto;
  uint32_t m_ackEvery;
  Dcqcn m_cc;
  NodeContainer m_nodes;
  std::vector<Qp> m_qp;
  std::vector<Rx> m_rx;
  std::vector<Host> m_host;
  std::vector<Ptr<Socket>> m_sinks;
  std::vector<std::pair<size_t, uint32_t>> m_drops;
  std::vector<double> m_lineOf;
  std::vector<double> m_series;

  static double Now() { return Simulator::Now().GetSeconds(); }

  // The host's NIC rate, bytes/s (its first device after the loopback).
  double LineRate(uint32_t node) {
    DataRateValue v;
    m_nodes.Get(node)->GetDevice(1)->GetAttribute("DataRate", v);
    return v.Get().GetBitRate() / 8.0;
  }

  // Bytes a packet of `udp` UDP payload bytes takes on the wire (IP 20, UDP 8, PPP 2).
  static double Wire(uint32_t udp) { return udp + 30.0; }

  bool HasData(const Qp& q) const {
    return !q.retx.empty() || q.nxt < q.len.size() || q.pending > 0;
  }

  // Times are ns-3's (whole nanoseconds): the NIC's and the pacer's clocks never drift
  // below the simulator's, so a Pump due now runs now.
  void Wake(uint32_t node, Time at) {
    Host& h = m_host[node];
    if (h.wake.IsPending() && h.wakeAt <= at) return;
    Simulator::Cancel(h.wake);
    h.wakeAt = std::max(at, Simulator::Now());
    h.wake = Simulator::Schedule(h.wakeAt - Simulator::Now(), [this, node]() { Pump(node); });
  }

  // The host's NIC: the next QP (round robin) whose pacing allows a packet sends one.
  void Pump(uint32_t node) {
    Host& h = m_host[node];
    Time now = Simulator::Now(), soonest = Time::Max();
    if (now < h.busy) return Wake(node, h.busy);
    if (h.nic && h.nic->GetNBytes() > 2 * (m_payload + HDR + 28))  // paused: look again
      return Wake(node, now + Seconds(Wire(m_payload + HDR) / h.line));
    for (size_t k = 0; k < h.qps.size(); ++k) {
      size_t i = (h.rr + k) % h.qps.size();
      Qp& q = m_qp[h.qps[i]];
      if (!HasData(q)) continue;
      if (q.next <= now) {
        double wire = SendOne(h.qps[i]);
        h.busy = now + Seconds(wire / h.line);
        q.next = now + Seconds(wire / q.rate);
        h.rr = i + 1;
        return Wake(node, h.busy);
      }
      soonest = std::min(soonest, q.next);
    }
    if (soonest < Time::Max()) Wake(node, soonest);
  }

  // Send one packet of QP c (a resend first); returns its wire bytes.
  double SendOne(size_t c) {
    Qp& q = m_qp[c];
    uint32_t psn;
    if (!q.retx.empty()) {
      psn = q.retx.front();
      q.retx.pop_front();
    } else if (q.nxt < q.len.size()) {
      psn = q.nxt++;
    } else {
      uint32_t n = (uint32_t)std::min<uint64_t>(q.pending, m_payload);
      q.pending -= n;
      q.len.push_back(n);
      psn = q.nxt++;
    }
    uint32_t n = q.len[psn];
    if (psn < q.highSent) {
      q.retrans += 1;
      q.retransBytes += n;
    }
    q.highSent = std::max(q.highSent, psn + 1);
    bool last = !HasData(q);
    // an ACK requested every ackEvery packets, and at least every rto/4 of sending: at a
    // rate DCQCN has cut (or behind a PAUSE) ackEvery packets can outlast the timeout
    double now = Now();
    uint8_t flags = (last || ++q.sinceAck >= m_ackEvery || now - q.ackAskedAt >= m_rto / 4);
    if (flags) {
      q.sinceAck = 0;
      q.ackAskedAt = now;
    }
    if (!Dropped(c, psn)) q.sock->Send(Make(DATA, flags, c, psn, 0, n));
    if (!q.rtoEv.IsPending()) ArmRto(c);
    if (m_cc.on) ByteCounter(c, n);
    return Wire(HDR + n);
  }

  bool Dropped(size_t c, uint32_t psn) {
    for (auto it = m_drops.begin(); it != m_drops.end(); ++it) {
      if (it->first == c && it->second == psn) {
        m_drops.erase(it);
        return true;
      }
    }
    return false;
  }

  static Ptr<Packet> Make(uint8_t type, uint8_t flags, size_t c, uint32_t psn, uint32_t aux,
                          uint32_t payload) {
    uint8_t b[HDR] = {};
    b[0] = type;
    b[1] = flags;
    uint32_t w[3] = {(uint32_t)c, psn, aux};
    std::memcpy(b + 4, w, sizeof(w));
    Ptr<Packet> p = Create<Packet>(b, HDR);
    if (payload) p->AddAtEnd(Create<Packet>(payload));
    return p;
  }

  static void Parse(Ptr<Packet> p, uint8_t& type, uint8_t& flags, uint32_t& c, uint32_t& psn,
                    uint32_t& aux) {
    uint8_t b[HDR];
    p->CopyData(b, HDR);
    uint32_t w[3];
    std::memcpy(w, b + 4, sizeof(w));
    type = b[0];
    flags = b[1];
    c = w[0];
    psn = w[1];
    aux = w[2];
  }

  void ArmRto(size_t c) {
    Qp& q = m_qp[c];
    Simulator::Cancel(q.rtoEv);
    q.rtoEv = Simulator::Schedule(Seconds(m_rto), [this, c]() { Timeout(c); });
  }

  // The tail (or a resend) was lost: resend from the first unacked PSN.
  void Timeout(size_t c) {
    Qp& q = m_qp[c];
    if (q.una >= q.len.size()) return;
    q.timeouts += 1;
    if (m_selective)
      q.retx.push_front(q.una);
    else
      q.nxt = q.una;
    ArmRto(c);
    Wake(q.node, Simulator::Now());
  }

  // ---- the receiver ----

  void OnData(uint32_t node, Ptr<Socket> s) {
    Ptr<Packet> p;
    Address from;
    while ((p = s->RecvFrom(from))) {
      if (p->GetSize() < HDR) continue;
      uint8_t type, flags;
      uint32_t c, psn, aux;
      Parse(p, type, flags, c, psn, aux);
      SocketIpTosTag tos;
      bool ce = p->PeekPacketTag(tos) && (tos.GetTos() & 3) == 3;
      Rx& r = m_rx[c];
      r.from = from;
      if (ce && m_cc.on && (r.lastCnp < 0 || Now() - r.lastCnp >= m_cc.cnpInterval)) {
        r.lastCnp = Now();
        Reply(node, s, c, CNP, 0, 0);
      }
      Receive(node, s, c, psn, p->GetSize() - HDR, flags & 1);
    }
  }

  void Receive(uint32_t node, Ptr<Socket> s, uint32_t c, uint32_t psn, uint32_t n, bool ackReq) {
    Rx& r = m_rx[c];
    if (psn == r.nxt) {
      uint64_t got = n;
      r.nxt += 1;
      bool filled = false;
      for (auto it = r.ooo.find(r.nxt); it != r.ooo.end(); it = r.ooo.find(r.nxt)) {
        got += it->second;
        r.ooo.erase(it);
        r.nxt += 1;
        filled = true;
      }
      r.nacked = false;
      r.high = std::max(r.high, r.nxt);
      delivered(c, got);
      if (ackReq || filled) Reply(node, s, c, ACK, r.nxt, 0);
    } else if (psn > r.nxt) {
      if (!m_selective) {
        if (!r.nacked) Reply(node, s, c, NACK, r.nxt, r.nxt + 1);
        r.nacked = true;
      } else if (!r.ooo.count(psn)) {
        r.ooo[psn] = n;
        uint32_t from = std::max(r.high, r.nxt);
        if (from < psn) Reply(node, s, c, NACK, r.nxt, psn, from);
      }
      r.high = std::max(r.high, psn + 1);
    } else {
      Reply(node, s, c, ACK, r.nxt, 0);  // a duplicate: the sender may have missed an ACK
    }
  }

  // A control packet from the receiver of c back to its sender's QP.
  void Reply(uint32_t node, Ptr<Socket> s, uint32_t c, uint8_t type, uint32_t psn,
             uint32_t to, uint32_t from = 0) {
    Ptr<Packet> p = Make(type, 0, c, psn, type == NACK && m_selective ? to : 0, 0);
    if (type == NACK && m_selective) {  // PSNs [from, to) newly missing: 4 more bytes
      uint8_t b[4];
      std::memcpy(b, &from, 4);
      p->AddAtEnd(Create<Packet>(b, 4));
    }
    Host& h = m_host[node];
    h.busy = std::max(h.busy, Simulator::Now()) + Seconds(Wire(p->GetSize()) / h.line);
    s->SendTo(p, 0, m_rx[c].from);
  }

  // ---- the sender's control path ----

  void OnControl(size_t c, Ptr<Socket> s) {
    Ptr<Packet> p;
    while ((p = s->Recv())) {
      if (p->GetSize() < HDR) continue;
      uint8_t type, flags;
      uint32_t cc, psn, aux;
      Parse(p, type, flags, cc, psn, aux);
      Qp& q = m_qp[c];
      if (type == CNP) {
        q.cnps += 1;
        Cut(c);
        continue;
      }
      if (psn > q.una) {
        q.una = psn;
        if (q.nxt < q.una) q.nxt = q.una;
        if (q.una >= q.len.size() && !HasData(q))
          Simulator::Cancel(q.rtoEv);
        else
          ArmRto(c);
      }
      if (type != NACK) continue;
      q.nacks += 1;
      if (!m_selective) {
        if (q.nxt > psn) q.nxt = psn;  // go back N
      } else {
        uint32_t from = psn;
        if (p->GetSize() >= HDR + 4) {
          uint8_t b[HDR + 4];
          p->CopyData(b, HDR + 4);
          std::memcpy(&from, b + HDR, 4);
        }
        for (uint32_t k = std::max(from, q.una); k < aux; ++k) q.retx.push_back(k);
      }
      Wake(q.node, Simulator::Now());
    }
  }

  // DCQCN: a CNP cuts the rate by alpha/2 and raises alpha.
  void Cut(size_t c) {
    if (!m_cc.on) return;
    Qp& q = m_qp[c];
    double now = Now();
    // alpha decays by (1-g) per timer period without a CNP (applied lazily, here)
    double idle = std::floor((now - q.alphaAt) / m_cc.timer);
    if (idle > 0) q.alpha *= std::pow(1 - m_cc.g, idle);
    q.target = q.rate;
    q.rate = std::max(m_cc.minRate, q.rate * (1 - q.alpha / 2));
    q.alpha = (1 - m_cc.g) * q.alpha + m_cc.g;
    q.alphaAt = now;
    q.timerStage = q.byteStage = 0;
    q.sinceInc = 0;
    Record(c);
    Simulator::Cancel(q.incEv);
    q.incEv = Simulator::Schedule(Seconds(m_cc.timer), [this, c]() { TimerUp(c); });
  }

  void TimerUp(size_t c) {
    Qp& q = m_qp[c];
    q.timerStage += 1;
    Increase(c);
    if (q.rate < q.line)
      q.incEv = Simulator::Schedule(Seconds(m_cc.timer), [this, c]() { TimerUp(c); });
  }

  void ByteCounter(size_t c, uint32_t n) {
    Qp& q = m_qp[c];
    if (q.rate >= q.line) return;
    q.sinceInc += n;
    if (q.sinceInc >= m_cc.byteCounter) {
      q.sinceInc = 0;
      q.byteStage += 1;
      Increase(c);
    }
  }

  // Fast recovery towards the target, then additive, then hyper increase of the target.
  void Increase(size_t c) {
    Qp& q = m_qp[c];
    uint32_t hi = std::max(q.timerStage, q.byteStage), lo = std::min(q.timerStage, q.byteStage);
    if (lo > m_cc.stages)
      q.target += (lo - m_cc.stages) * m_cc.rhai;
    else if (hi > m_cc.stages)
      q.target += m_cc.rai;
    q.target = std::min(q.target, q.line);
    q.rate = std::min(q.line, (q.rate + q.target) / 2);
    if (q.line - q.rate < 1e-6 * q.line) q.rate = q.line;
    Record(c);
  }

  void Record(size_t c) {
    Qp& q = m_qp[c];
    if (q.samples++ >= kSeries) return;
    m_series.insert(m_series.end(), {(double)c, Now(), q.rate});
  }
};

}  // namespace dlr

#endif  // DLR_TRANSPORTS_ROCE_CC
