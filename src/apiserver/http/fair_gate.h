// FairGate: admission of API requests by client, so that one client cannot
// starve the others (kube-apiserver's max-in-flight filter and, in a small
// form, its API Priority and Fairness).
//
//   - At most `max_inflight` non-mutating and `max_mutating_inflight`
//     mutating requests are in the gate (running or waiting) at once; past
//     that a request is refused with 429 and Retry-After (upstream's
//     --max-requests-inflight 400 and --max-mutating-requests-inflight 200).
//   - While several clients (flows) are active, each runs at most its share
//     of `seats` requests at once; the rest of its requests wait their turn in
//     order. One client alone has no share to keep to. A flood from one
//     client then holds its share of the CPU, not every core, and the others'
//     requests run at once instead of queuing behind it.
//   - A request admitted while more of its flow's wait behind it is
//     `crowded`: its flow asks more than its share, and the server runs it at
//     a lower CPU priority, so that on a machine with few cores the others'
//     requests do not wait behind it for a core either.
// A request holds its seat until its response is written. Long-running
// requests (watches, logs, exec, attach, port-forward, tunnels) do not pass
// through the gate. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace kiso::apiserver {

struct FairGateOptions {
  int max_inflight = 400;
  int max_mutating_inflight = 200;
  // Requests that run at once, shared by the active flows (0: one per core).
  int seats = 0;
  // A flow counts as active this long after its last request.
  std::chrono::milliseconds active_window{1000};
  // A request that waits longer for its turn is refused (429).
  std::chrono::milliseconds max_wait{15000};
};

class FairGate {
 public:
  explicit FairGate(FairGateOptions options);

  // A seat, given back when destroyed.
  class Ticket {
   public:
    Ticket(Ticket&& other) noexcept
        : gate_(other.gate_),
          flow_(std::move(other.flow_)),
          mutating_(other.mutating_),
          crowded_(other.crowded_) {
      other.gate_ = nullptr;
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    Ticket& operator=(Ticket&& other) noexcept {
      if (this != &other) {
        Release();
        gate_ = other.gate_;
        flow_ = std::move(other.flow_);
        mutating_ = other.mutating_;
        crowded_ = other.crowded_;
        other.gate_ = nullptr;
      }
      return *this;
    }
    ~Ticket() { Release(); }

    // More requests of its flow were waiting for a seat when it got this one.
    bool crowded() const { return crowded_; }

   private:
    void Release();
    friend class FairGate;
    Ticket(FairGate* gate, std::string flow, bool mutating, bool crowded)
        : gate_(gate), flow_(std::move(flow)), mutating_(mutating), crowded_(crowded) {}
    FairGate* gate_;
    std::string flow_;
    bool mutating_;
    bool crowded_;
  };

  // Waits for a seat for a request of `flow`; nullopt when it must be refused
  // (over the in-flight limits, or its turn did not come within max_wait).
  std::optional<Ticket> Enter(const std::string& flow, bool mutating);
  // A seat now, or nullopt when the request would have to wait for one (or
  // be refused): Enter without waiting.
  std::optional<Ticket> TryEnter(const std::string& flow, bool mutating);
  // The server is stopping: every waiting request is refused now, and every
  // later one at once (a request queued for max_wait would hold the stop up).
  void Close();

  // For tests and metrics.
  int running(const std::string& flow);
  int waiting(const std::string& flow);
  int active_flows();

 private:
  struct Flow {
    int running = 0;
    int waiting = 0;
    std::chrono::steady_clock::time_point last_seen;
    // Its waiting requests wait here: a freed seat wakes one of them, not
    // every waiting thread of every flow.
    std::condition_variable turn;
  };
  void Leave(const std::string& flow, bool mutating);
  // The in-flight counter of the kind, or null when it is at its limit or
  // the gate is closed. REQUIRES: mu_ held.
  int* Counter(bool mutating);
  // The most a flow may run at once now. REQUIRES: mu_ held.
  int Share(std::chrono::steady_clock::time_point now);
  int ActiveFlows(std::chrono::steady_clock::time_point now);  // REQUIRES: mu_ held.

  FairGateOptions options_;
  std::mutex mu_;
  std::map<std::string, Flow> flows_;  // guarded by mu_; a flow with waiters is never erased
  int inflight_ = 0;                   // guarded by mu_
  int mutating_inflight_ = 0;          // guarded by mu_
  bool closed_ = false;                // guarded by mu_
};

}  // namespace kiso::apiserver
