// The packet engine's network and message driver, compiled at run time by cppyy.
//
// One dlr::Net builds the network (nodes, point-to-point cables, one queue disc per port,
// optional per-port loss), forwards by table (switch.cc: the paths the Python side pinned,
// else equal-cost groups hashed per flow or sprayed per packet), has its transport
// (ns3driver.h) open one connection per (src, dst, key) before the clock starts, and then
// drives the messages: message i is handed to its connection delay[i] seconds after the
// last message it depends on has arrived; it arrives when the receiver has read its last
// byte (a connection is a byte stream, so messages on one connection arrive in the order
// they were started). Doing this in C++ keeps Python out of the event loop: one call to
// Run simulates the whole collective.
// Compiled by cppyy's include (a file is compiled once; another may include it).
#ifndef DLR_NS3DRIVER_CC
#define DLR_NS3DRIVER_CC

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <deque>
#include <string>
#include <vector>

#include "ns3/core-module.h"
#include "ns3/internet-module.h"
#include "ns3/network-module.h"
#include "ns3/point-to-point-module.h"
#include "ns3/traffic-control-module.h"

#include "ns3driver.h"
#include "pfc.cc"
#include "switch.cc"

namespace dlr {
using namespace ns3;

inline uint32_t& RunSeed() {
  static uint32_t seed = 0;
  return seed;
}

// Before a run, before the transport sets its own defaults: a clean configuration and the
// run's random stream.
void Reset(uint32_t seed) {
  Config::Reset();
  RngSeedManager::SetSeed(1);
  RngSeedManager::SetRun(seed + 1);
  RunSeed() = seed;
}

// Ctrl-C (or SIGTERM) during Run: the handler (installed for the run only) sets the flag to
// the signal's number, and Net::CheckInterrupt, a periodic event, stops the simulator when it
// sees it.
volatile std::sig_atomic_t g_interrupted = 0;
inline void OnSigint(int sig) { g_interrupted = sig; }

class Net {
 public:
  // results, read by Python after Run
  std::vector<double> msgStart, msgDone, sampleTimes;
  std::vector<uint64_t> linkBytes, linkDrops, linkMarks, linkLoss, linkPeak;
  std::vector<uint32_t> samples;  // link-major within each sample: t * L + l
  std::vector<uint64_t> connRx, connCounters;  // counters: the transport's, counter-major
  std::vector<double> series;                  // the transport's (connection, t, value)
  // PFC, per directed link l: PAUSEs that stopped l's sender, the time it stood paused,
  // packets that came in on l and overflowed its headroom at the switch
  std::vector<uint64_t> linkPauses, linkHeadroomDrops;
  std::vector<double> linkPausedS;
  double t0 = -1.0;
  int64_t nDone = 0;
  bool interrupted = false;  // Run stopped by SIGINT or SIGTERM
  int interruptedBy = 0;     // which: the signal's number

  // The transport's defaults must be set already: the internet stack reads them here.
  Net(int nNodes, int nLinks, uint32_t mtu, Transport* transport)
      : m_mtu(mtu), m_tr(transport) {
    m_nodes.Create(nNodes);
    InternetStackHelper stack;
    stack.Install(m_nodes);
    for (int n = 0; n < nNodes; ++n) {  // forwarding by table (switch.cc), not ns-3's routing
      Ptr<TableRouting> r = CreateObject<TableRouting>();
      m_nodes.Get(n)->GetObject<Ipv4>()->SetRoutingProtocol(r);
      m_routing.push_back(r);
    }
    m_tr->Install(m_nodes);
    m_tr->delivered = [this](size_t c, uint64_t n) { Delivered(c, n); };
    m_dev.resize(nLinks);
    m_qd.resize(nLinks);
    m_if.resize(nLinks, 0);
    linkBytes.assign(nLinks, 0);
    linkDrops.assign(nLinks, 0);
    linkMarks.assign(nLinks, 0);
    linkLoss.assign(nLinks, 0);
    linkPeak.assign(nLinks, 0);
    linkPauses.assign(nLinks, 0);
    linkHeadroomDrops.assign(nLinks, 0);
    linkPausedS.assign(nLinks, 0.0);
    m_pq.resize(nLinks);
    m_inBytes.assign(nLinks * PfcQueue::kClasses, 0);
    m_pauseSent.assign(nLinks * PfcQueue::kClasses, false);
    m_pausedAt.assign(nLinks * PfcQueue::kClasses, -1.0);
    m_rev.assign(nLinks, -1);
    m_linkDelay.assign(nLinks, 0.0);
    m_linkA.assign(nLinks, 0);
    m_hostAddr.assign(nNodes, 0);
  }

  void AddCable(int a, int b, int lab, int lba, double rateAB, double rateBA,
                double delay, uint32_t qAB, uint32_t qBA, uint32_t kAB, uint32_t kBA,
                double lossAB, double lossBA, uint32_t subnet) {
    PointToPointHelper p2p;
    p2p.SetChannelAttribute("Delay", TimeValue(Seconds(delay)));
    p2p.SetDeviceAttribute("Mtu", UintegerValue(m_mtu + 2));
    p2p.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", StringValue("1p"));
    NetDeviceContainer d = p2p.Install(m_nodes.Get(a), m_nodes.Get(b));
    DynamicCast<PointToPointNetDevice>(d.Get(0))->SetDataRate(DataRate(rateAB));
    DynamicCast<PointToPointNetDevice>(d.Get(1))->SetDataRate(DataRate(rateBA));
    m_dev[lab] = d.Get(0);
    m_dev[lba] = d.Get(1);
    m_linkDelay[lab] = m_linkDelay[lba] = delay;
    m_linkA[lab] = a;
    m_linkA[lba] = b;
    m_rev[lab] = lba;
    m_rev[lba] = lab;
    if (m_pfc) {  // which link the packet now being forwarded came in on; PAUSE frames
      d.Get(1)->TraceConnectWithoutContext(
          "MacRx", Callback<void, Ptr<const Packet>>(
                       [this, b, lab](Ptr<const Packet> p) { Received(b, lab, p); }));
      d.Get(0)->TraceConnectWithoutContext(
          "MacRx", Callback<void, Ptr<const Packet>>(
                       [this, a, lba](Ptr<const Packet> p) { Received(a, lba, p); }));
    }
    InstallQueue(lab, qAB, kAB);
    InstallQueue(lba, qBA, kBA);
    m_tr->Port(a, m_qd[lab], rateAB / 8);
    m_tr->Port(b, m_qd[lba], rateBA / 8);
    InstallLoss(d.Get(1), lab, lossAB);  // loss on a->b is seen by b's receiver
    InstallLoss(d.Get(0), lba, lossBA);
    Ipv4AddressHelper addr;
    addr.SetBase(Ipv4Address(subnet), Ipv4Mask("255.255.255.252"));
    Ipv4InterfaceContainer ifc = addr.Assign(d);
    m_if[lab] = ifc.Get(0).second;
    m_if[lba] = ifc.Get(1).second;
    if (m_hostAddr[a] == 0) m_hostAddr[a] = ifc.GetAddress(0).Get();
    if (m_hostAddr[b] == 0) m_hostAddr[b] = ifc.GetAddress(1).Get();
    d.Get(0)->TraceConnectWithoutContext(
        "PhyTxEnd", Callback<void, Ptr<const Packet>>(
                        [this, lab](Ptr<const Packet> p) { linkBytes[lab] += p->GetSize(); }));
    d.Get(1)->TraceConnectWithoutContext(
        "PhyTxEnd", Callback<void, Ptr<const Packet>>(
                        [this, lba](Ptr<const Packet> p) { linkBytes[lba] += p->GetSize(); }));
  }

  // RED between K and kmax[link] bytes with marking probability up to pmax (DCQCN's Kmin,
  // Kmax, Pmax); without it (or kmax <= K) a step at K. Before the cables.
  void SetRed(const std::vector<uint32_t>& kmax, double pmax) {
    m_kmax = kmax;
    m_pmax = pmax;
  }

  // PFC on every switch ingress link: PAUSE its sender when more than xoff bytes that came
  // in on it wait in the switch, RESUME at xon, drop beyond xoff + headroom[link]. Nodes
  // below `hosts` are hosts (no ingress accounting). Before the cables.
  void SetPfc(int hosts, uint32_t xoff, uint32_t xon, const std::vector<uint32_t>& headroom) {
    m_pfc = true;
    m_hosts = hosts;
    m_xoff = xoff;
    m_xon = xon;
    m_headroom = headroom;
    m_lastIn.assign(m_nodes.GetN(), -1);
  }

  // A shared buffer of `bytes` per switch (nodes from `hosts` on): a port may hold at most
  // alpha x the bytes of the buffer still free (the dynamic threshold). Before the cables.
  void SetBuffer(int hosts, uint64_t bytes, double alpha) {
    m_bufHosts = hosts;
    m_buffer = bytes;
    m_alpha = alpha;
    m_used.assign(m_nodes.GetN(), 0);
  }

  uint32_t HostAddr(int node) const { return m_hostAddr[node]; }

  // The forwarding tables, after the cables: nodes below `hosts` are hosts; the equal-cost
  // group of (node n, host h) is the directed links groupLink[groupPtr[n * hosts + h] ..
  // groupPtr[n * hosts + h + 1]); `salt` is mixed into every switch's hash with its index
  // (polarized: the same salt everywhere); `spray`: a random member per packet instead.
  void SetTables(int hosts, const std::vector<int64_t>& groupPtr,
                 const std::vector<int32_t>& groupLink, uint64_t salt, bool polarized,
                 bool spray) {
    auto t = std::make_shared<Tables>();
    t->hosts = hosts;
    t->spray = spray;
    t->groupPtr = groupPtr;
    t->groupIf.reserve(groupLink.size());
    for (int32_t l : groupLink) t->groupIf.push_back((int32_t)m_if[l]);
    for (int h = 0; h < hosts; ++h) t->hostOf[m_hostAddr[h]] = h;
    std::shared_ptr<const Tables> shared = t;
    for (size_t n = 0; n < m_routing.size(); ++n) {
      bool host = (int)n < hosts;
      uint64_t nodeSalt = polarized ? salt : Mix(salt + 0x9e3779b97f4a7c15ULL * (n + 1));
      m_routing[n]->Configure(shared, (int)n, host, nodeSalt, RunSeed());
      if (host) m_routing[n]->SetOwnAddress(m_hostAddr[n]);
    }
  }

  // When spraying, `node` takes its equal-cost members in turn (switch.cc). After SetTables.
  void SprayInTurn(int node) { m_routing[node]->SprayInTurn(); }

  // Connection c's data packets leave each link's sending node on that link (the path
  // the fabric's hash gave it): `links` in order from the source.
  void Pin(uint32_t c, const std::vector<int32_t>& links) {
    for (int32_t l : links) m_routing[m_linkA[l]]->Pin(c, 0, m_if[l]);
  }

  int AddConn(int src, int dst, uint32_t dstAddr) {
    Ends e;
    e.src = src;
    e.dst = dst;
    e.dstAddr = dstAddr;
    m_ends.push_back(e);
    m_streams.emplace_back();
    return (int)m_ends.size() - 1;
  }

  void SetMessages(const std::vector<int64_t>& conn, const std::vector<uint64_t>& bytes,
                   const std::vector<double>& delay, const std::vector<int64_t>& ndeps,
                   const std::vector<int64_t>& outPtr, const std::vector<int64_t>& outIdx,
                   const std::vector<double>& outDelay, double localRate) {
    m_msgConn = conn;
    m_bytes = bytes;
    m_delay = delay;
    m_left = ndeps;
    m_outPtr = outPtr;
    m_outIdx = outIdx;
    m_outDelay = outDelay;
    m_localRate = localRate;
    m_ready.assign(conn.size(), 0.0);
    msgStart.assign(conn.size(), -1.0);
    msgDone.assign(conn.size(), -1.0);
  }

  void Run(double sampleEvery, double stopAt) {
    m_sampleEvery = sampleEvery;
    for (size_t l = 0; l < m_qd.size(); ++l) {
      if (!m_qd[l]) continue;
      m_qd[l]->TraceConnectWithoutContext(
          "BytesInQueue", Callback<void, uint32_t, uint32_t>([this, l](uint32_t, uint32_t now) {
            if (now > linkPeak[l]) linkPeak[l] = now;
          }));
    }
    // after the nodes' own initialisation events at time 0 (traffic control needs it)
    Simulator::ScheduleNow([this]() { m_tr->Open(m_nodes, m_ends, [this]() { Begin(); }); });
    Simulator::Stop(Seconds(stopAt));
    g_interrupted = 0;
    struct sigaction sa = {}, old = {}, oldTerm = {};
    sa.sa_handler = OnSigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    sigaction(SIGTERM, &sa, &oldTerm);
    m_wallAt = std::chrono::steady_clock::now();
    m_checkStep = 1e-6;
    Simulator::Schedule(Seconds(m_checkStep), [this]() { CheckInterrupt(); });
    Simulator::Run();
    sigaction(SIGINT, &old, nullptr);
    sigaction(SIGTERM, &oldTerm, nullptr);
    interrupted = g_interrupted != 0;
    interruptedBy = g_interrupted;
    for (size_t l = 0; l < m_qd.size(); ++l) {
      if (!m_qd[l]) continue;
      const QueueDisc::Stats& st = m_qd[l]->GetStats();
      linkDrops[l] = st.nTotalDroppedPackets;
      linkMarks[l] = st.nTotalMarkedPackets;
    }
    double end = Simulator::Now().GetSeconds();
    for (size_t l = 0; l < m_pq.size(); ++l)  // still paused at the end
      for (int c = 0; c < PfcQueue::kClasses; ++c)
        if (m_pq[l] && m_pq[l]->paused[c]) linkPausedS[l] += end - m_pausedAt[Slot(l, c)];
    for (auto& s : m_streams) connRx.push_back(s.rx);
    connCounters = m_tr->Counters(m_ends.size());
    series = m_tr->Series();
    m_tr->Close();
    m_ends.clear();
    m_streams.clear();
    m_routing.clear();
    Simulator::Destroy();
  }

 private:
  // Every few milliseconds of wall time: stop if SIGINT or SIGTERM came. The simulated step between
  // checks doubles while checks come under 10 ms of wall time apart and halves above 50 ms
  // (at most 1 s simulated: a drained run still ends at stopAt).
  void CheckInterrupt() {
    if (g_interrupted) {
      Simulator::Stop();
      return;
    }
    auto now = std::chrono::steady_clock::now();
    double wall = std::chrono::duration<double>(now - m_wallAt).count();
    m_wallAt = now;
    if (wall < 0.01) m_checkStep = std::min(m_checkStep * 2, 1.0);
    if (wall > 0.05) m_checkStep = std::max(m_checkStep / 2, 1e-9);
    Simulator::Schedule(Seconds(m_checkStep), [this]() { CheckInterrupt(); });
  }

  std::chrono::steady_clock::time_point m_wallAt;
  double m_checkStep = 1e-6;

  // What the Net knows of a connection: bytes handed over and read, messages in flight.
  struct Stream {
    uint64_t queued = 0, rx = 0;
    std::deque<std::pair<int64_t, uint64_t>> expect;  // (message, cumulative end byte)
  };

  NodeContainer m_nodes;
  uint32_t m_mtu;
  Transport* m_tr;
  std::vector<Ptr<NetDevice>> m_dev;
  std::vector<Ptr<QueueDisc>> m_qd;
  std::vector<uint32_t> m_if, m_hostAddr;
  std::vector<Ends> m_ends;
  std::vector<Stream> m_streams;
  std::vector<int64_t> m_msgConn, m_left, m_outPtr, m_outIdx;
  std::vector<uint64_t> m_bytes;
  std::vector<double> m_delay, m_outDelay, m_ready;
  double m_localRate = 1e12, m_sampleEvery = 0, m_pmax = 1.0;
  bool m_pfc = false;
  int m_hosts = 0;
  uint32_t m_xoff = 0, m_xon = 0;
  std::vector<uint32_t> m_headroom;
  int m_bufHosts = 0;
  uint64_t m_buffer = 0;  // per switch, bytes (0: no shared buffer)
  double m_alpha = 1.0;
  std::vector<uint64_t> m_used;  // per node: bytes in its ports' queues
  std::vector<int> m_lastIn, m_linkA, m_rev;
  std::vector<Ptr<PfcQueue>> m_pq;
  std::vector<uint64_t> m_inBytes;
  std::vector<bool> m_pauseSent;
  std::vector<double> m_pausedAt, m_linkDelay;
  std::vector<uint32_t> m_kmax;
  std::vector<std::pair<Ptr<RateErrorModel>, double>> m_loss;
  std::vector<Ptr<TableRouting>> m_routing;

  void InstallQueue(int link, uint32_t qbytes, uint32_t k) {
    if (m_pfc || (m_buffer > 0 && m_linkA[link] >= m_bufHosts))
      return InstallPfcQueue(link, qbytes, k);
    TrafficControlHelper tch;
    std::string size = std::to_string(qbytes) + "B";
    if (k > 0) {
      bool red = (size_t)link < m_kmax.size() && m_kmax[link] > k;
      double maxTh = red ? m_kmax[link] : k + m_mtu, interm = red ? 1.0 / m_pmax : 1.0;
      tch.SetRootQueueDisc("ns3::RedQueueDisc", "MaxSize", StringValue(size), "MinTh",
                           DoubleValue(k), "MaxTh", DoubleValue(maxTh), "QW",
                           DoubleValue(1.0), "LInterm", DoubleValue(interm), "MeanPktSize",
                           UintegerValue(m_mtu), "UseEcn", BooleanValue(true), "UseHardDrop",
                           BooleanValue(false), "Gentle", BooleanValue(false));
    } else {
      tch.SetRootQueueDisc("ns3::FifoQueueDisc", "MaxSize", StringValue(size));
    }
    m_qd[link] = tch.Install(m_dev[link]).Get(0);
  }

  void InstallPfcQueue(int link, uint32_t qbytes, uint32_t k) {
    Ptr<PfcQueue> q = CreateObject<PfcQueue>();
    q->SetMaxSize(QueueSize(QueueSizeUnit::BYTES, qbytes));
    q->kmin = k;
    q->kmax = (size_t)link < m_kmax.size() ? m_kmax[link] : 0;
    q->pmax = q->kmax > k ? m_pmax : 1.0;
    q->rng = CreateObject<UniformRandomVariable>();
    q->rng->SetStream(2000 + link);
    int node = m_linkA[link];
    q->classify = [this](Ptr<const QueueDiscItem> i) { return m_tr->Class(i); };
    if (m_buffer > 0 && node >= m_bufHosts) {
      q->shared = [this, node](uint32_t mine, uint32_t n) {
        uint64_t used = m_used[node];
        return used + n <= m_buffer && mine + n <= m_alpha * (double)(m_buffer - used);
      };
      q->used = [this, node](int64_t d) { m_used[node] += d; };
    }
    if (m_pfc && node >= m_hosts) {
      q->ingress = [this, node]() { return m_lastIn[node]; };
      q->admit = [this](int in, int c, uint32_t n) { return Admit(in, c, n); };
      q->left = [this](int in, int c, uint32_t n) { Left(in, c, n); };
    }
    Ptr<TrafficControlLayer> tc = m_dev[link]->GetNode()->GetObject<TrafficControlLayer>();
    tc->SetRootQueueDiscOnDevice(m_dev[link], q);
    m_qd[link] = q;
    m_pq[link] = q;
  }

  static size_t Slot(size_t link, int cls) { return link * PfcQueue::kClasses + cls; }

  // Ingress link `in` of a switch, class c: charge n bytes; PAUSE its sender above xoff.
  bool Admit(int in, int c, uint32_t n) {
    size_t k = Slot(in, c);
    if (m_inBytes[k] + n > (uint64_t)m_xoff + m_headroom[in]) {
      linkHeadroomDrops[in] += 1;
      return false;
    }
    m_inBytes[k] += n;
    if (!m_pauseSent[k] && m_inBytes[k] > m_xoff) {
      m_pauseSent[k] = true;
      SendPause(in, c, true);
    }
    return true;
  }

  void Left(int in, int c, uint32_t n) {
    size_t k = Slot(in, c);
    m_inBytes[k] -= n;
    if (m_pauseSent[k] && m_inBytes[k] <= m_xon) {
      m_pauseSent[k] = false;
      SendPause(in, c, false);
    }
  }

  // A PAUSE (or RESUME) frame for class c of link `in`'s sender: 64 bytes on the wire
  // (42 of payload, 20 of IPv4, 2 of PPP) ahead of every packet of the switch's port
  // back to the sender; not from inside the queue that is enqueuing or dequeuing.
  void SendPause(int in, int c, bool on) {
    Ptr<Packet> p = Create<Packet>(42);
    PfcTag tag;
    tag.link = in;
    tag.cls = (uint8_t)c;
    tag.on = on ? 1 : 0;
    p->AddPacketTag(tag);
    Ipv4Header h;
    h.SetDestination(Ipv4Address("192.0.2.1"));  // nobody's: dropped where it arrives
    h.SetProtocol(253);
    h.SetPayloadSize(p->GetSize());
    h.SetTtl(1);
    Ptr<QueueDiscItem> item = Create<Ipv4QueueDiscItem>(p, Address(), 0x0800, h);
    Ptr<PfcQueue> q = m_pq[m_rev[in]];
    Simulator::ScheduleNow([q, item]() { q->EnqueuePause(item); });
  }

  // A packet came in on link `in` to `node`: the link a switch forwards it from, or a
  // PAUSE frame that stops (or restarts) the class it names on the link it names.
  void Received(int node, int in, Ptr<const Packet> p) {
    m_lastIn[node] = in;
    PfcTag tag;
    if (p->PeekPacketTag(tag)) Pause(tag.link, tag.cls, tag.on != 0);
  }

  void Pause(int link, int c, bool on) {
    Ptr<PfcQueue> q = m_pq[link];
    double now = Simulator::Now().GetSeconds();
    if (on && !q->paused[c]) {
      linkPauses[link] += 1;
      m_pausedAt[Slot(link, c)] = now;
    } else if (!on && q->paused[c]) {
      linkPausedS[link] += now - m_pausedAt[Slot(link, c)];
    }
    q->paused[c] = on;
    if (!on) q->Run();
  }

  void InstallLoss(Ptr<NetDevice> rx, int link, double rate) {
    if (rate <= 0) return;
    Ptr<RateErrorModel> em = CreateObject<RateErrorModel>();
    em->SetAttribute("ErrorUnit", StringValue("ERROR_UNIT_PACKET"));
    em->SetAttribute("ErrorRate", DoubleValue(0.0));  // lossless handshakes: see Begin
    m_loss.push_back({em, rate});
    em->AssignStreams(1000 + link);
    rx->SetAttribute("ReceiveErrorModel", PointerValue(em));
    // a PAUSE frame is not lost (a real one carries a timer and is repeated: not modelled)
    rx->TraceConnectWithoutContext(
        "PhyRxDrop", Callback<void, Ptr<const Packet>>([this, link](Ptr<const Packet> p) {
          PfcTag tag;
          if (m_pfc && p->PeekPacketTag(tag))
            Pause(tag.link, tag.cls, tag.on != 0);
          else
            linkLoss[link] += 1;
        }));
  }

  void Begin() {
    t0 = Simulator::Now().GetSeconds();
    // loss starts with the collective: a lost handshake (TCP: a SYN) would leave a backed-off
    // timer (ns-3: a 3 s+ RTO until the next RTT sample), a warm-up artefact MPI does not have
    for (auto& em : m_loss) em.first->SetRate(em.second);
    for (size_t i = 0; i < m_msgConn.size(); ++i)
      if (m_left[i] == 0) Simulator::Schedule(Seconds(m_delay[i]), [this, i]() { Start(i); });
    if (m_msgConn.empty()) Simulator::Stop();
    if (m_sampleEvery > 0) Sample();
  }

  void Sample() {
    sampleTimes.push_back(Simulator::Now().GetSeconds() - t0);
    for (size_t l = 0; l < m_qd.size(); ++l) {
      uint32_t b = m_qd[l] ? m_qd[l]->GetNBytes() : 0;
      samples.push_back(b);
    }
    // at most 2^17 samples and 2^22 values (16 MB): a run far longer than the flow time the
    // interval was sized by (timeouts, long link delays) stops sampling, memory bounded
    bool room = sampleTimes.size() < (size_t(1) << 17) && samples.size() < (size_t(1) << 22);
    if (nDone < (int64_t)m_msgConn.size() && room)
      Simulator::Schedule(Seconds(m_sampleEvery), [this]() { Sample(); });
  }

  void Start(size_t i) {
    msgStart[i] = Simulator::Now().GetSeconds() - t0;
    size_t c = m_msgConn[i];
    if (m_bytes[i] == 0) {
      Done(i);
      return;
    }
    if (m_ends[c].src == m_ends[c].dst) {
      Simulator::Schedule(Seconds(m_bytes[i] / m_localRate), [this, i]() { Done(i); });
      return;
    }
    Stream& s = m_streams[c];
    s.queued += m_bytes[i];
    s.expect.push_back({(int64_t)i, s.queued});
    m_tr->Send(c, m_bytes[i]);
  }

  void Delivered(size_t c, uint64_t n) {
    Stream& s = m_streams[c];
    s.rx += n;
    while (!s.expect.empty() && s.expect.front().second <= s.rx) {
      int64_t i = s.expect.front().first;
      s.expect.pop_front();
      Done(i);
    }
  }

  void Done(size_t i) {
    msgDone[i] = Simulator::Now().GetSeconds() - t0;
    ++nDone;
    double now = Simulator::Now().GetSeconds();
    for (int64_t k = m_outPtr[i]; k < m_outPtr[i + 1]; ++k) {
      int64_t j = m_outIdx[k];
      // e.g. the receiver reduces what arrived before it sends on: an extra delay per edge
      m_ready[j] = std::max(m_ready[j], now + m_outDelay[k]);
      m_left[j] -= 1;
      if (m_left[j] == 0)
        Simulator::Schedule(Seconds(m_ready[j] - now + m_delay[j]), [this, j]() { Start(j); });
    }
    if (nDone == (int64_t)m_msgConn.size()) Simulator::Stop();
  }
};

}  // namespace dlr

#endif  // DLR_NS3DRIVER_CC
