#include "apiserver/http/fair_gate.h"

#include <algorithm>
#include <thread>

namespace kiso::apiserver {

using Clock = std::chrono::steady_clock;

FairGate::FairGate(FairGateOptions options) : options_(options) {
  if (options_.seats <= 0)
    options_.seats = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void FairGate::Ticket::Release() {
  if (gate_) gate_->Leave(flow_, mutating_);
  gate_ = nullptr;
}

int FairGate::ActiveFlows(Clock::time_point now) {
  int active = 0;
  for (auto it = flows_.begin(); it != flows_.end();) {
    const Flow& f = it->second;
    bool recent = now - f.last_seen < options_.active_window;
    if (f.running == 0 && f.waiting == 0 && !recent) {
      it = flows_.erase(it);  // Forgotten once idle: the map holds only recent clients.
      continue;
    }
    ++active;
    ++it;
  }
  return active;
}

int FairGate::Share(Clock::time_point now) {
  int active = ActiveFlows(now);
  if (active <= 1) return options_.max_inflight + options_.max_mutating_inflight;
  return std::max(1, options_.seats / active);
}

int* FairGate::Counter(bool mutating) {
  int& counter = mutating ? mutating_inflight_ : inflight_;
  int limit = mutating ? options_.max_mutating_inflight : options_.max_inflight;
  return counter >= limit || closed_ ? nullptr : &counter;
}

std::optional<FairGate::Ticket> FairGate::Enter(const std::string& flow, bool mutating) {
  std::unique_lock lock(mu_);
  int* counter = Counter(mutating);
  if (counter == nullptr) return std::nullopt;
  ++*counter;
  auto now = Clock::now();
  Flow& f = flows_[flow];  // Stable: std::map nodes do not move, and it has a waiter now.
  f.last_seen = now;
  ++f.waiting;
  bool admitted = f.turn.wait_until(lock, now + options_.max_wait,
                                    [&] { return closed_ || f.running < Share(Clock::now()); });
  --f.waiting;
  if (!admitted || closed_) {
    --*counter;
    return std::nullopt;
  }
  ++f.running;
  // The share may allow more than the seat that woke us (another flow went idle).
  if (f.waiting > 0 && f.running < Share(Clock::now())) f.turn.notify_one();
  return Ticket(this, flow, mutating, f.waiting > 0);
}

std::optional<FairGate::Ticket> FairGate::TryEnter(const std::string& flow, bool mutating) {
  std::lock_guard lock(mu_);
  int* counter = Counter(mutating);
  if (counter == nullptr) return std::nullopt;
  auto now = Clock::now();
  Flow& f = flows_[flow];
  f.last_seen = now;
  if (f.waiting > 0 || f.running >= Share(now)) return std::nullopt;
  ++*counter;
  ++f.running;
  return Ticket(this, flow, mutating, false);
}

void FairGate::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  for (auto& [name, f] : flows_) f.turn.notify_all();
}

void FairGate::Leave(const std::string& flow, bool mutating) {
  std::lock_guard lock(mu_);
  --(mutating ? mutating_inflight_ : inflight_);
  auto now = Clock::now();
  Flow& f = flows_[flow];
  --f.running;
  f.last_seen = now;
  if (f.waiting > 0) {
    f.turn.notify_one();
    return;
  }
  // Its seat may be another flow's turn now.
  int share = Share(now);
  for (auto& [name, other] : flows_) {
    if (other.waiting > 0 && other.running < share) other.turn.notify_one();
  }
}

int FairGate::running(const std::string& flow) {
  std::lock_guard lock(mu_);
  auto it = flows_.find(flow);
  return it == flows_.end() ? 0 : it->second.running;
}

int FairGate::waiting(const std::string& flow) {
  std::lock_guard lock(mu_);
  auto it = flows_.find(flow);
  return it == flows_.end() ? 0 : it->second.waiting;
}

int FairGate::active_flows() {
  std::lock_guard lock(mu_);
  return ActiveFlows(Clock::now());
}

}  // namespace kiso::apiserver
