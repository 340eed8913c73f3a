// A port's egress queue with priorities, PFC and RED/ECN, for the packet engine's Net.
//
// Two priority classes, strict priority on egress: class 1 (control: ACKs, NACKs, CNPs,
// what the transport's `classify` names) leaves before class 0 (data); PFC's own PAUSE
// frames (PfcTag) leave before both. Each class is a FIFO; all share MaxSize bytes. ECN:
// RED on the instantaneous queue, marking with a probability rising from 0 at kmin to
// pmax at kmax, and every packet above kmax (a step at kmin when kmax <= kmin). PFC, per
// class: the Net keeps, per ingress link of the switch and class, the bytes that arrived on
// it and still wait in one of its egress queues; `ingress` names the link the packet being
// enqueued came in on (-1: none), `admit` charges it (false: the headroom overflowed, the
// packet is dropped), `left` credits it back at dequeue. A class paused by the downstream
// neighbour (`paused[c]`) dequeues nothing until resumed; the other class goes on. A
// switch's shared buffer (`shared`): a port may hold at most alpha x the buffer left free.
// Compiled by cppyy's include (a file is compiled once; another may include it).
#ifndef DLR_PFC_CC
#define DLR_PFC_CC

#include <deque>
#include <functional>
#include <ostream>

#include "ns3/core-module.h"
#include "ns3/network-module.h"
#include "ns3/traffic-control-module.h"

namespace dlr {
using namespace ns3;

// On a PAUSE (or RESUME) frame: the link whose sender it stops, the class, on or off.
class PfcTag : public Tag {
 public:
  int32_t link = -1;
  uint8_t cls = 0, on = 0;

  static TypeId GetTypeId() {
    static TypeId tid = TypeId("dlr::PfcTag").SetParent<Tag>().AddConstructor<PfcTag>();
    return tid;
  }
  TypeId GetInstanceTypeId() const override { return GetTypeId(); }
  uint32_t GetSerializedSize() const override { return 6; }
  void Serialize(TagBuffer b) const override {
    b.WriteU32((uint32_t)link);
    b.WriteU8(cls);
    b.WriteU8(on);
  }
  void Deserialize(TagBuffer b) override {
    link = (int32_t)b.ReadU32();
    cls = b.ReadU8();
    on = b.ReadU8();
  }
  void Print(std::ostream& os) const override { os << "pfc " << link << " " << (int)cls; }
};

class PfcQueue : public QueueDisc {
 public:
  static constexpr int kClasses = 2;  // 0: data, 1: control (strict priority)
  static constexpr int kPauseLane = 2;

  PfcQueue() : QueueDisc(QueueDiscSizePolicy::MULTIPLE_QUEUES, QueueSizeUnit::BYTES) {}

  std::function<int()> ingress;
  std::function<bool(int, int, uint32_t)> admit;  // (ingress, class, bytes)
  std::function<void(int, int, uint32_t)> left;
  std::function<int(Ptr<const QueueDiscItem>)> classify;  // none: every packet data
  // A switch's shared buffer (none: this port's MaxSize alone): may this port, holding
  // `mine` bytes, take n more? `used` tells it the bytes that came in (+) or left (-).
  std::function<bool(uint32_t, uint32_t)> shared;
  std::function<void(int64_t)> used;
  bool paused[kClasses] = {false, false};
  uint32_t kmin = 0, kmax = 0;
  double pmax = 1.0;
  uint64_t headroomDrops = 0;
  Ptr<UniformRandomVariable> rng;

  // A PAUSE frame of the Net's: ahead of every class, never paused, never dropped.
  void EnqueuePause(Ptr<QueueDiscItem> item) {
    Enqueue(item);
    Run();
  }

 private:
  std::deque<int> m_in[kClasses];  // the ingress link of each queued packet, per class

  static bool IsPause(Ptr<const QueueDiscItem> item) {
    PfcTag tag;
    return item->GetPacket()->PeekPacketTag(tag);
  }

  bool DoEnqueue(Ptr<QueueDiscItem> item) override {
    if (IsPause(item)) return GetInternalQueue(kPauseLane)->Enqueue(item);
    if (GetNBytes() + item->GetSize() > GetMaxSize().GetValue()) {
      DropBeforeEnqueue(item, "buffer full");
      return false;
    }
    int cls = classify ? classify(item) : 0;
    int in = ingress ? ingress() : -1;
    uint32_t n = item->GetSize();
    if (shared && !shared(GetNBytes(), n)) {
      DropBeforeEnqueue(item, "shared buffer");
      return false;
    }
    if (in >= 0 && !admit(in, cls, n)) {
      headroomDrops += 1;
      DropBeforeEnqueue(item, "PFC headroom overflow");
      return false;
    }
    if (kmin > 0) {
      uint32_t q = GetNBytes();
      double p = 0;
      if (q >= kmin) p = (kmax <= kmin || q >= kmax) ? 1.0 : pmax * (q - kmin) / (kmax - kmin);
      if (p > 0 && (p >= 1.0 || rng->GetValue() < p)) Mark(item, "ECN");
    }
    bool ok = GetInternalQueue(cls)->Enqueue(item);
    if (ok) {
      m_in[cls].push_back(in);
      if (used) used(n);
    } else if (in >= 0) {
      left(in, cls, n);
    }
    return ok;
  }

  // The lane that sends next: PAUSE frames, then control, then data; -1: none.
  int Next() const {
    if (!GetInternalQueue(kPauseLane)->IsEmpty()) return kPauseLane;
    for (int c = kClasses - 1; c >= 0; --c)
      if (!paused[c] && !GetInternalQueue(c)->IsEmpty()) return c;
    return -1;
  }

  Ptr<QueueDiscItem> DoDequeue() override {
    int lane = Next();
    if (lane < 0) return nullptr;
    Ptr<QueueDiscItem> item = GetInternalQueue(lane)->Dequeue();
    if (item && lane < kClasses) {
      int in = m_in[lane].front();
      m_in[lane].pop_front();
      if (in >= 0) left(in, lane, item->GetSize());
      if (used) used(-(int64_t)item->GetSize());
    }
    return item;
  }

  Ptr<const QueueDiscItem> DoPeek() override {
    int lane = Next();
    return lane < 0 ? nullptr : GetInternalQueue(lane)->Peek();
  }

  bool CheckConfig() override {
    for (int i = (int)GetNInternalQueues(); i <= kPauseLane; ++i)
      AddInternalQueue(CreateObjectWithAttributes<DropTailQueue<QueueDiscItem>>(
          "MaxSize", QueueSizeValue(QueueSize(QueueSizeUnit::BYTES, 1u << 31))));
    return true;
  }

  void InitializeParams() override {}
};

}  // namespace dlr

#endif  // DLR_PFC_CC
