#include "common/worker_pool.h"

#include <thread>

#include "common/recover.h"

namespace kiso {

WorkerPool::~WorkerPool() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  timed_.clear();
  timed_ids_.clear();
  cv_.notify_all();
  keeper_cv_.notify_all();
  exited_.wait(lock, [this] { return threads_ == 0; });
}

void WorkerPool::Run(std::function<void()> job) {
  std::lock_guard lock(mu_);
  jobs_.push_back(std::move(job));
  WakeOrSpawnLocked();
}

void WorkerPool::SpawnLocked() {
  ++threads_;
  std::thread([this] { Work(); }).detach();
}

void WorkerPool::WakeOrSpawnLocked() {
  const int free = idle_ - (timekeeper_ ? 1 : 0);  // Idle, and not keeping the time.
  if (free >= static_cast<int>(jobs_.size())) {
    cv_.notify_one();
  } else if (threads_ < max_threads_) {
    SpawnLocked();
  } else {
    cv_.notify_one();
    keeper_cv_.notify_one();  // At the cap, the timekeeper works too.
  }
}

uint64_t WorkerPool::RunAt(Clock::time_point when, std::function<void()> job) {
  std::lock_guard lock(mu_);
  uint64_t id = ++next_id_;
  bool earliest = timed_.empty() || when < timed_.begin()->first.first;
  timed_.emplace(std::make_pair(when, id), std::move(job));
  timed_ids_.emplace(id, when);
  if (timekeeper_) {
    if (earliest) keeper_cv_.notify_one();  // It waits for a later time.
  } else if (idle_ > 0) {
    cv_.notify_one();  // An idle worker becomes the timekeeper.
  } else if (threads_ < max_threads_) {
    SpawnLocked();
  }  // Else the first worker to finish its job keeps the time.
  return id;
}

bool WorkerPool::Cancel(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = timed_ids_.find(id);
  if (it == timed_ids_.end()) return false;
  timed_.erase(std::make_pair(it->second, id));
  timed_ids_.erase(it);
  return true;
}

void WorkerPool::Work() {
  std::unique_lock lock(mu_);
  while (true) {
    for (auto now = Clock::now(); !timed_.empty() && timed_.begin()->first.first <= now;) {
      timed_ids_.erase(timed_.begin()->first.second);
      jobs_.push_back(std::move(timed_.begin()->second));
      timed_.erase(timed_.begin());
    }
    if (jobs_.empty()) {
      if (stopping_) break;
      ++idle_;
      bool woke = true;
      if (!timed_.empty() && !timekeeper_) {
        // Keeps the time: waits for the earliest timed job, a sooner one or a job.
        // The time is copied: wait_until reads it again once woken, and by
        // then another worker may have taken the job (or Cancel erased it).
        timekeeper_ = true;
        const Clock::time_point earliest = timed_.begin()->first.first;
        keeper_cv_.wait_until(lock, earliest);
        timekeeper_ = false;
      } else {
        woke = cv_.wait_for(lock, idle_exit_, [this] {
          return !jobs_.empty() || stopping_ || (!timed_.empty() && !timekeeper_);
        });
      }
      --idle_;
      if (!woke) break;  // Idle long enough: the pool shrinks.
      continue;
    }
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    // More queued (timed jobs fell due together), or time to keep: another worker.
    if (!jobs_.empty()) WakeOrSpawnLocked();
    if (!timed_.empty() && !timekeeper_ && idle_ > 0) cv_.notify_one();
    lock.unlock();
    try {
      job();
    } catch (...) {
      ReportRecovered("a worker's job", CurrentExceptionMessage());
    }
    job = nullptr;  // Whatever it holds goes before the pool may end.
    lock.lock();
  }
  if (--threads_ == 0) exited_.notify_all();
}

}  // namespace kiso
