"""The C++ half of the packet engine, compiled at run time by cppyy (ns-3's own JIT).

One ``dlr::Net`` object builds the network (nodes, point-to-point cables, one queue
disc per port, optional per-port loss), holds the routes the Python side computed, opens
one persistent TCP connection per ``(src, dst, key)`` before the clock starts, and then
drives the messages: message ``i`` is handed to its connection's socket ``delay[i]``
seconds after the last message it depends on has arrived; it arrives when the receiver
has read its last byte (a connection is a byte stream, so messages on one connection
arrive in the order they were started). Doing this in C++ keeps Python out of the event
loop: one call to ``Run`` simulates the whole collective.

Only ``ns3net.py`` uses this module; it calls :func:`load` once per process.
"""

from __future__ import annotations

CODE = r"""
#include <deque>
#include <vector>
#include <string>
namespace dlr {
using namespace ns3;

struct Conn {
  uint32_t src = 0, dst = 0, dstAddr = 0;
  bool local = false;
  Ptr<Socket> sock;
  uint64_t pending = 0, queued = 0, rx = 0;
  std::deque<std::pair<int64_t, uint64_t>> expect;  // (message, cumulative end byte)
  uint32_t highTx = 0;
  bool sentAny = false;
  uint64_t retrans = 0, retransBytes = 0, timeouts = 0;
};

void SetDefaults(const std::string& tcp, uint32_t segment, uint32_t buffer, double minRto,
                 bool ecn, bool spray, uint32_t seed) {
  Config::Reset();
  RngSeedManager::SetSeed(1);
  RngSeedManager::SetRun(seed + 1);
  Config::SetDefault("ns3::TcpL4Protocol::SocketType", TypeIdValue(TypeId::LookupByName(tcp)));
  Config::SetDefault("ns3::TcpSocket::SegmentSize", UintegerValue(segment));
  Config::SetDefault("ns3::TcpSocket::SndBufSize", UintegerValue(buffer));
  // 4x the send buffer: what is in flight (at most the send buffer) always fits at the
  // receiver, else ns-3 can reject the segment that fills a hole and stall on RTOs
  Config::SetDefault("ns3::TcpSocket::RcvBufSize", UintegerValue(4 * buffer));
  Config::SetDefault("ns3::TcpSocketBase::MinRto", TimeValue(Seconds(minRto)));
  // Every segment ACKed at once (Linux's quick-ACK): with delayed ACKs (ns-3: every 2nd
  // segment or 200 ms) a window of one or two segments, after an RTO or a DCTCP cut, waited
  // for the timer on every round trip (a 1 MiB ring at 0.1% loss took 15 s, not 0.44 s)
  Config::SetDefault("ns3::TcpSocket::DelAckCount", UintegerValue(1));
  // SACK off: with it, ns-3.44 let a connection that lost segments at a full port retransmit
  // on every RTO without progress for minutes of simulated time (recursive doubling on a
  // leaf-spine, 1 MiB buffers); NewReno-style recovery does not stall
  Config::SetDefault("ns3::TcpSocketBase::Sack", BooleanValue(false));
  Config::SetDefault("ns3::TcpSocketBase::UseEcn", StringValue(ecn ? "On" : "Off"));
  Config::SetDefault("ns3::Ipv4GlobalRouting::RandomEcmpRouting", BooleanValue(spray));
}

class Net {
 public:
  // results, read by Python after Run
  std::vector<double> msgStart, msgDone, sampleTimes;
  std::vector<uint64_t> linkBytes, linkDrops, linkMarks, linkLoss, linkPeak;
  std::vector<uint32_t> samples;  // link-major within each sample: t * L + l
  std::vector<uint64_t> connRetrans, connRetransBytes, connTimeouts, connRx;
  double t0 = -1.0;
  int64_t nDone = 0;

  Net(int nNodes, int nLinks, uint32_t mtu) : m_mtu(mtu) {
    m_nodes.Create(nNodes);
    InternetStackHelper stack;
    stack.Install(m_nodes);
    m_dev.resize(nLinks);
    m_qd.resize(nLinks);
    m_if.resize(nLinks, 0);
    m_linkNode.resize(nLinks, 0);
    linkBytes.assign(nLinks, 0);
    linkDrops.assign(nLinks, 0);
    linkMarks.assign(nLinks, 0);
    linkLoss.assign(nLinks, 0);
    linkPeak.assign(nLinks, 0);
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
    m_linkNode[lab] = a;
    m_linkNode[lba] = b;
    InstallQueue(lab, qAB, kAB);
    InstallQueue(lba, qBA, kBA);
    InstallLoss(d.Get(1), lab, lossAB);  // loss on a->b is seen by b's receiver
    InstallLoss(d.Get(0), lba, lossBA);
    Ipv4AddressHelper addr;
    addr.SetBase(Ipv4Address(subnet), Ipv4Mask("255.255.255.252"));
    Ipv4InterfaceContainer ifc = addr.Assign(d);
    m_if[lab] = ifc.Get(0).second;
    m_if[lba] = ifc.Get(1).second;
    if (m_hostAddr[a] == 0) m_hostAddr[a] = ifc.GetAddress(0).Get();
    if (m_hostAddr[b] == 0) m_hostAddr[b] = ifc.GetAddress(1).Get();
    d.Get(0)->TraceConnectWithoutContext("PhyTxEnd",
        Callback<void, Ptr<const Packet>>([this, lab](Ptr<const Packet> p) {
          linkBytes[lab] += p->GetSize(); }));
    d.Get(1)->TraceConnectWithoutContext("PhyTxEnd",
        Callback<void, Ptr<const Packet>>([this, lba](Ptr<const Packet> p) {
          linkBytes[lba] += p->GetSize(); }));
  }

  uint32_t HostAddr(int node) const { return m_hostAddr[node]; }

  void AddAddress(int node, int link, uint32_t address) {
    Ptr<Ipv4> ip = m_nodes.Get(node)->GetObject<Ipv4>();
    ip->AddAddress(m_if[link], Ipv4InterfaceAddress(Ipv4Address(address),
                                                   Ipv4Mask("255.255.255.255")));
  }

  void AddRoute(int node, uint32_t address, int link) {
    Ptr<Ipv4> ip = m_nodes.Get(node)->GetObject<Ipv4>();
    Ipv4StaticRoutingHelper helper;
    helper.GetStaticRouting(ip)->AddHostRouteTo(Ipv4Address(address), m_if[link]);
  }

  void PopulateGlobal() { Ipv4GlobalRoutingHelper::PopulateRoutingTables(); }

  int AddConn(int src, int dst, uint32_t dstAddr) {
    Conn c;
    c.src = src; c.dst = dst; c.dstAddr = dstAddr; c.local = (src == dst);
    m_conns.push_back(c);
    return (int)m_conns.size() - 1;
  }

  void SetMessages(const std::vector<int64_t>& conn, const std::vector<uint64_t>& bytes,
                   const std::vector<double>& delay, const std::vector<int64_t>& ndeps,
                   const std::vector<int64_t>& outPtr, const std::vector<int64_t>& outIdx,
                   const std::vector<double>& outDelay, double localRate) {
    m_msgConn = conn; m_bytes = bytes; m_delay = delay; m_left = ndeps;
    m_outPtr = outPtr; m_outIdx = outIdx; m_outDelay = outDelay; m_localRate = localRate;
    m_ready.assign(conn.size(), 0.0);
    msgStart.assign(conn.size(), -1.0);
    msgDone.assign(conn.size(), -1.0);
  }

  void Run(double sampleEvery, double stopAt) {
    m_sampleEvery = sampleEvery;
    for (size_t l = 0; l < m_qd.size(); ++l) {
      if (!m_qd[l]) continue;
      m_qd[l]->TraceConnectWithoutContext("BytesInQueue",
          Callback<void, uint32_t, uint32_t>([this, l](uint32_t, uint32_t now) {
            if (now > linkPeak[l]) linkPeak[l] = now; }));
    }
    // after the nodes' own initialisation events at time 0 (traffic control needs it)
    Simulator::ScheduleNow([this]() { Open(); });
    Simulator::Stop(Seconds(stopAt));
    Simulator::Run();
    for (size_t l = 0; l < m_qd.size(); ++l) {
      if (!m_qd[l]) continue;
      const QueueDisc::Stats& st = m_qd[l]->GetStats();
      linkDrops[l] = st.nTotalDroppedPackets;
      linkMarks[l] = st.nTotalMarkedPackets;
    }
    for (auto& c : m_conns) {
      connRetrans.push_back(c.retrans);
      connRetransBytes.push_back(c.retransBytes);
      connTimeouts.push_back(c.timeouts);
      connRx.push_back(c.rx);
    }
    for (auto& c : m_conns) if (c.sock) c.sock->Close();
    for (auto& s : m_sinks) s->Close();
    m_accepted.clear();
    m_conns.clear();
    m_sinks.clear();
    Simulator::Destroy();
  }

 private:
  NodeContainer m_nodes;
  uint32_t m_mtu;
  std::vector<Ptr<NetDevice>> m_dev;
  std::vector<Ptr<QueueDisc>> m_qd;
  std::vector<uint32_t> m_if, m_hostAddr;
  std::vector<int> m_linkNode;
  std::vector<Conn> m_conns;
  std::vector<Ptr<Socket>> m_sinks, m_accepted;
  std::vector<int64_t> m_msgConn, m_left, m_outPtr, m_outIdx;
  std::vector<uint64_t> m_bytes;
  std::vector<double> m_delay, m_outDelay, m_ready;
  double m_localRate = 1e12, m_sampleEvery = 0;
  std::vector<std::pair<Ptr<RateErrorModel>, double>> m_loss;
  int64_t m_toConnect = 0;

  void InstallQueue(int link, uint32_t qbytes, uint32_t k) {
    TrafficControlHelper tch;
    std::string size = std::to_string(qbytes) + "B";
    if (k > 0) {
      tch.SetRootQueueDisc("ns3::RedQueueDisc", "MaxSize", StringValue(size),
          "MinTh", DoubleValue(k), "MaxTh", DoubleValue(k + m_mtu),
          "QW", DoubleValue(1.0), "LInterm", DoubleValue(1.0),
          "MeanPktSize", UintegerValue(m_mtu), "UseEcn", BooleanValue(true),
          "UseHardDrop", BooleanValue(false), "Gentle", BooleanValue(false));
    } else {
      tch.SetRootQueueDisc("ns3::FifoQueueDisc", "MaxSize", StringValue(size));
    }
    m_qd[link] = tch.Install(m_dev[link]).Get(0);
  }

  void InstallLoss(Ptr<NetDevice> rx, int link, double rate) {
    if (rate <= 0) return;
    Ptr<RateErrorModel> em = CreateObject<RateErrorModel>();
    em->SetAttribute("ErrorUnit", StringValue("ERROR_UNIT_PACKET"));
    em->SetAttribute("ErrorRate", DoubleValue(0.0));  // lossless handshakes: see Begin
    m_loss.push_back({em, rate});
    em->AssignStreams(1000 + link);
    rx->SetAttribute("ReceiveErrorModel", PointerValue(em));
    rx->TraceConnectWithoutContext("PhyRxDrop",
        Callback<void, Ptr<const Packet>>([this, link](Ptr<const Packet>) {
          linkLoss[link] += 1; }));
  }

  void Open() {
    OpenSinks();
    m_toConnect = 0;
    for (size_t c = 0; c < m_conns.size(); ++c)
      if (!m_conns[c].local) ++m_toConnect;
    for (size_t c = 0; c < m_conns.size(); ++c)
      if (!m_conns[c].local) OpenConn(c);
    if (m_toConnect == 0) Begin();
  }

  void OpenSinks() {
    std::vector<bool> has(m_nodes.GetN(), false);
    for (auto& c : m_conns) if (!c.local) has[c.dst] = true;
    for (uint32_t n = 0; n < m_nodes.GetN(); ++n) {
      if (!has[n]) continue;
      Ptr<Socket> s = Socket::CreateSocket(m_nodes.Get(n), TcpSocketFactory::GetTypeId());
      s->Bind(InetSocketAddress(Ipv4Address::GetAny(), 9));
      s->Listen();
      s->SetAcceptCallback(MakeNullCallback<bool, Ptr<Socket>, const Address&>(),
          Callback<void, Ptr<Socket>, const Address&>(
              [this](Ptr<Socket> a, const Address& from) { Accepted(a, from); }));
      m_sinks.push_back(s);
    }
  }

  void Accepted(Ptr<Socket> a, const Address& from) {
    size_t c = InetSocketAddress::ConvertFrom(from).GetPort() - 1024;
    m_accepted.push_back(a);
    a->SetRecvCallback(Callback<void, Ptr<Socket>>([this, c](Ptr<Socket> s) { Recv(c, s); }));
  }

  void OpenConn(size_t c) {
    Conn& cn = m_conns[c];
    cn.sock = Socket::CreateSocket(m_nodes.Get(cn.src), TcpSocketFactory::GetTypeId());
    cn.sock->Bind(InetSocketAddress(Ipv4Address::GetAny(), 1024 + c));
    cn.sock->TraceConnectWithoutContext("Tx",
        Callback<void, Ptr<const Packet>, const TcpHeader&, Ptr<const TcpSocketBase>>(
            [this, c](Ptr<const Packet> p, const TcpHeader& h, Ptr<const TcpSocketBase>) {
              OnTx(c, p, h); }));
    cn.sock->TraceConnectWithoutContext("CongState",
        Callback<void, TcpSocketState::TcpCongState_t, TcpSocketState::TcpCongState_t>(
            [this, c](TcpSocketState::TcpCongState_t, TcpSocketState::TcpCongState_t now) {
              if (now == TcpSocketState::CA_LOSS) m_conns[c].timeouts += 1; }));
    cn.sock->SetConnectCallback(
        Callback<void, Ptr<Socket>>([this](Ptr<Socket>) {
          m_toConnect -= 1;
          if (m_toConnect == 0) Begin(); }),
        Callback<void, Ptr<Socket>>([](Ptr<Socket>) {
          NS_FATAL_ERROR("dlr: a connection failed"); }));
    cn.sock->SetSendCallback(
        Callback<void, Ptr<Socket>, uint32_t>([this, c](Ptr<Socket>, uint32_t) { Push(c); }));
    cn.sock->Connect(InetSocketAddress(Ipv4Address(cn.dstAddr), 9));
  }

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

  void Begin() {
    t0 = Simulator::Now().GetSeconds();
    // loss starts with the collective: a lost SYN would leave ns-3's backed-off 3 s+ RTO on
    // the connection until its next RTT sample, a warm-up artefact MPI does not have
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
    if (nDone < (int64_t)m_msgConn.size())
      Simulator::Schedule(Seconds(m_sampleEvery), [this]() { Sample(); });
  }

  void Start(size_t i) {
    msgStart[i] = Simulator::Now().GetSeconds() - t0;
    Conn& cn = m_conns[m_msgConn[i]];
    if (m_bytes[i] == 0) { Done(i); return; }
    if (cn.local) {
      Simulator::Schedule(Seconds(m_bytes[i] / m_localRate), [this, i]() { Done(i); });
      return;
    }
    cn.queued += m_bytes[i];
    cn.pending += m_bytes[i];
    cn.expect.push_back({(int64_t)i, cn.queued});
    Push(m_msgConn[i]);
  }

  void Push(size_t c) {
    Conn& cn = m_conns[c];
    while (cn.pending > 0) {
      uint32_t room = cn.sock->GetTxAvailable();
      if (room == 0) break;
      uint32_t n = (uint32_t)std::min<uint64_t>({cn.pending, (uint64_t)room, 65536});
      int sent = cn.sock->Send(Create<Packet>(n));
      if (sent <= 0) break;
      cn.pending -= (uint64_t)sent;
    }
  }

  void Recv(size_t c, Ptr<Socket> s) {
    Conn& cn = m_conns[c];
    Ptr<Packet> p;
    while ((p = s->Recv())) {
      if (p->GetSize() == 0) break;
      cn.rx += p->GetSize();
    }
    while (!cn.expect.empty() && cn.expect.front().second <= cn.rx) {
      int64_t i = cn.expect.front().first;
      cn.expect.pop_front();
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
"""

_LOADED = {}


def load():
    """Import ns-3 (about 20 s the first time) and compile the driver once per process.

    Returns the ``cppyy.gbl`` namespace holding ``ns3`` and ``dlr``.
    """
    if "gbl" not in _LOADED:
        import cppyy
        from ns import ns  # noqa: F401  (loads every ns-3 module into cppyy)

        cppyy.cppdef(CODE)
        _LOADED["gbl"] = cppyy.gbl
    return _LOADED["gbl"]
