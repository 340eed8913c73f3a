// A switch port's egress queue with PFC and RED/ECN, for the packet engine's Net.
//
// FIFO of at most MaxSize bytes. ECN: RED on the instantaneous queue, marking with a
// probability rising from 0 at kmin to pmax at kmax, and every packet above kmax (a step
// at kmin when kmax <= kmin). PFC: the Net keeps, per ingress link of the switch, the
// bytes that arrived on it and still wait in one of its egress queues; `ingress` names the
// link the packet being enqueued came in on (-1: none), `admit` charges it (false: the
// headroom overflowed, the packet is dropped), `left` credits it back at dequeue. A port
// paused by its downstream neighbour (`paused`) dequeues nothing until resumed.
// Compiled by cppyy's include (a file is compiled once; another may include it).
#ifndef DLR_PFC_CC
#define DLR_PFC_CC

#include <deque>
#include <functional>

#include "ns3/core-module.h"
#include "ns3/network-module.h"
#include "ns3/traffic-control-module.h"

namespace dlr {
using namespace ns3;

class PfcQueue : public QueueDisc {
 public:
  PfcQueue() : QueueDisc(QueueDiscSizePolicy::SINGLE_INTERNAL_QUEUE) {}

  std::function<int()> ingress;
  std::function<bool(int, uint32_t)> admit;
  std::function<void(int, uint32_t)> left;
  bool paused = false;
  uint32_t kmin = 0, kmax = 0;
  double pmax = 1.0;
  uint64_t headroomDrops = 0;
  Ptr<UniformRandomVariable> rng;

 private:
  std::deque<int> m_in;  // the ingress link of each queued packet, in FIFO order

  bool DoEnqueue(Ptr<QueueDiscItem> item) override {
    if (GetCurrentSize() + item > GetMaxSize()) {
      DropBeforeEnqueue(item, "buffer full");
      return false;
    }
    int in = ingress ? ingress() : -1;
    uint32_t n = item->GetSize();
    if (in >= 0 && !admit(in, n)) {
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
    bool ok = GetInternalQueue(0)->Enqueue(item);
    if (ok)
      m_in.push_back(in);
    else if (in >= 0)
      left(in, n);
    return ok;
  }

  Ptr<QueueDiscItem> DoDequeue() override {
    if (paused) return nullptr;
    Ptr<QueueDiscItem> item = GetInternalQueue(0)->Dequeue();
    if (item) {
      int in = m_in.front();
      m_in.pop_front();
      if (in >= 0) left(in, item->GetSize());
    }
    return item;
  }

  Ptr<const QueueDiscItem> DoPeek() override {
    if (paused) return nullptr;
    return GetInternalQueue(0)->Peek();
  }

  bool CheckConfig() override {
    if (GetNInternalQueues() == 0)
      AddInternalQueue(CreateObjectWithAttributes<DropTailQueue<QueueDiscItem>>(
          "MaxSize", QueueSizeValue(GetMaxSize())));
    return true;
  }

  void InitializeParams() override {}
};

}  // namespace dlr

#endif  // DLR_PFC_CC
