#include "common/worker_pool.h"

#include <thread>

#include "common/recover.h"

namespace kiso {

WorkerPool::~WorkerPool() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  exited_.wait(lock, [this] { return threads_ == 0; });
}

void WorkerPool::Run(std::function<void()> job) {
  std::lock_guard lock(mu_);
  jobs_.push_back(std::move(job));
  if (idle_ >= static_cast<int>(jobs_.size()) || threads_ >= max_threads_) {
    cv_.notify_one();
    return;
  }
  ++threads_;
  std::thread([this] { Work(); }).detach();
}

void WorkerPool::Work() {
  std::unique_lock lock(mu_);
  while (true) {
    if (jobs_.empty()) {
      if (stopping_) break;
      ++idle_;
      bool woke = cv_.wait_for(lock, idle_exit_, [this] { return !jobs_.empty() || stopping_; });
      --idle_;
      if (!woke) break;  // Idle long enough: the pool shrinks.
      continue;
    }
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
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
