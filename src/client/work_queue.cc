#include "client/work_queue.h"

#include <algorithm>

#include "common/worker_pool.h"

namespace kiso::client {

WorkQueue::~WorkQueue() { ShutDown(); }

void WorkQueue::Add(const std::string& key) {
  std::lock_guard lock(mu_);
  if (shutting_down_ || !dirty_.insert(key).second) return;
  if (!processing_.contains(key)) queue_.push_back(key);
  cv_.notify_one();
  DispatchLocked();
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::steady_clock::duration delay) {
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  auto when = std::chrono::steady_clock::now() + delay;
  auto [it, added] = due_.try_emplace(key, when);
  if (!added) {
    if (it->second <= when) return;
    auto [first, last] = delayed_.equal_range(it->second);
    for (auto d = first; d != last; ++d) {
      if (d->second == key) {
        delayed_.erase(d);
        break;
      }
    }
    it->second = when;
  }
  delayed_.emplace(when, key);
  cv_.notify_one();
  DispatchLocked();
}

void WorkQueue::PromoteDueLocked() {
  auto now = std::chrono::steady_clock::now();
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    due_.erase(key);
    if (dirty_.insert(key).second && !processing_.contains(key)) queue_.push_back(key);
  }
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock lock(mu_);
  while (true) {
    if (shutting_down_) return std::nullopt;
    PromoteDueLocked();
    if (!queue_.empty()) {
      std::string key = std::move(queue_.front());
      queue_.pop_front();
      dirty_.erase(key);
      processing_.insert(key);
      return key;
    }
    if (delayed_.empty()) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, delayed_.begin()->first);
    }
  }
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.contains(key)) queue_.push_back(key);
  cv_.notify_all();  // A worker for the requeued key, or a Claim waiting for it.
  DispatchLocked();
}

bool WorkQueue::Claim(const std::string& key) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return shutting_down_ || !processing_.contains(key); });
  if (shutting_down_) return false;
  if (auto it = std::find(queue_.begin(), queue_.end(), key); it != queue_.end()) queue_.erase(it);
  processing_.insert(key);
  return true;
}

void WorkQueue::Serve(WorkerPool* pool, int max_active,
                      std::function<void(const std::string&)> process) {
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  pool_ = pool;
  max_active_ = max_active;
  process_ = std::move(process);
  PromoteDueLocked();
  DispatchLocked();
}

void WorkQueue::DispatchLocked() {
  if (!pool_ || shutting_down_) return;
  const int wanted = static_cast<int>(std::min<size_t>(max_active_, queue_.size()));
  for (; active_ < wanted; ++active_) pool_->Run([this] { Drain(); });
  if (delayed_.empty()) return;
  // A timed job for the earliest delayed key, unless one comes as soon.
  auto earliest = delayed_.begin()->first;
  if (std::any_of(timers_.begin(), timers_.end(),
                  [&](const auto& t) { return t.second.when <= earliest; })) {
    return;
  }
  uint64_t token = ++next_token_;
  // The job needs mu_, held here: it cannot run before it is recorded.
  uint64_t id = pool_->RunAt(earliest, [this, token] { OnTimer(token); });
  timers_.emplace(token, Timer{id, earliest});
}

void WorkQueue::OnTimer(uint64_t token) {
  std::lock_guard lock(mu_);
  timers_.erase(token);
  if (!shutting_down_) {
    PromoteDueLocked();
    DispatchLocked();
  }
  cv_.notify_all();  // ShutDown may wait for this timer.
}

void WorkQueue::Drain() {
  std::unique_lock lock(mu_);
  while (!shutting_down_ && !queue_.empty()) {
    std::string key = std::move(queue_.front());
    queue_.pop_front();
    dirty_.erase(key);
    processing_.insert(key);
    lock.unlock();
    process_(key);  // Calls Done(key).
    lock.lock();
  }
  --active_;
  cv_.notify_all();  // ShutDown may wait for this job.
}

void WorkQueue::ShutDown() {
  std::unique_lock lock(mu_);
  shutting_down_ = true;
  cv_.notify_all();
  if (!pool_) return;
  for (auto it = timers_.begin(); it != timers_.end();) {
    it = pool_->Cancel(it->second.id) ? timers_.erase(it) : std::next(it);
  }
  // A timer already handed to a worker, and the keys in process, finish first.
  cv_.wait(lock, [this] { return active_ == 0 && timers_.empty(); });
}

}  // namespace kiso::client
