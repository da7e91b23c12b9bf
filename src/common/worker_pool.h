// WorkerPool: threads for work that may block (an API request's handler, a
// stream that writes as it reads), made when every worker is busy, up to
// `max_threads` (more work waits its turn), and ended after a while idle: the
// pool is as large as the work in flight, within its cap, and costs no
// thread while there is none.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace kiso {

class WorkerPool {
 public:
  explicit WorkerPool(int max_threads = 64,
                      std::chrono::milliseconds idle_exit = std::chrono::seconds(30))
      : max_threads_(max_threads), idle_exit_(idle_exit) {}
  // Waits for every job queued or running to finish.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `job` on a worker: an idle one, a new one, or the first free once
  // all `max_threads` are busy. Never blocks.
  void Run(std::function<void()> job);

 private:
  void Work();

  const int max_threads_;
  const std::chrono::milliseconds idle_exit_;
  std::mutex mu_;
  std::condition_variable cv_;      // Jobs for idle workers.
  std::condition_variable exited_;  // A worker ended.
  std::deque<std::function<void()>> jobs_;
  int threads_ = 0;
  int idle_ = 0;
  bool stopping_ = false;
};

}  // namespace kiso
