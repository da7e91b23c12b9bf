// WorkerPool: threads for work that may block (an API request's handler, a
// stream that writes as it reads), made when every worker is busy and ended
// after a while idle: the pool is as large as the blocking work in flight,
// never larger, and costs no thread while there is none.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace kiso {

class WorkerPool {
 public:
  explicit WorkerPool(std::chrono::milliseconds idle_exit = std::chrono::seconds(30))
      : idle_exit_(idle_exit) {}
  // Waits for every job queued or running to finish.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `job` on a worker: an idle one, or a new one. Never blocks.
  void Run(std::function<void()> job);

  int threads() const;

 private:
  void Work();

  const std::chrono::milliseconds idle_exit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;      // Jobs for idle workers.
  std::condition_variable exited_;  // A worker ended.
  std::deque<std::function<void()>> jobs_;
  int threads_ = 0;
  int idle_ = 0;
  bool stopping_ = false;
};

}  // namespace kiso
