// WorkerPool: threads for work that may block (an API request's handler, a
// stream that writes as it reads, a controller's pass over a key), made when
// every worker is busy, up to `max_threads` (more work waits its turn), and
// ended after a while idle: the pool is as large as the work in flight, within
// its cap, and costs no thread while there is none. Jobs may also be timed
// (RunAt): one idle worker then waits for the earliest, and only while there
// is one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace kiso {

class WorkerPool {
 public:
  using Clock = std::chrono::steady_clock;

  explicit WorkerPool(int max_threads = 64,
                      std::chrono::milliseconds idle_exit = std::chrono::seconds(30))
      : max_threads_(max_threads), idle_exit_(idle_exit) {}
  // Waits for every job queued or running to finish; timed jobs not yet due are dropped.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `job` on a worker: an idle one, a new one, or the first free once
  // all `max_threads` are busy. Never blocks.
  void Run(std::function<void()> job);
  // Runs `job` as Run would once `when` has come. Returns an id for Cancel.
  uint64_t RunAt(Clock::time_point when, std::function<void()> job);
  // Takes back a timed job that is not due yet: true if it will not run
  // (false: it has been handed to a worker, or was never there).
  bool Cancel(uint64_t id);

 private:
  // REQUIRES: mu_ held. A worker for the jobs queued: an idle one, or a new one.
  void WakeOrSpawnLocked();
  void SpawnLocked();
  void Work();

  const int max_threads_;
  const std::chrono::milliseconds idle_exit_;
  std::mutex mu_;
  std::condition_variable cv_;         // Jobs for idle workers, or the time to keep.
  std::condition_variable keeper_cv_;  // The timekeeper: a sooner timed job, or a job.
  std::condition_variable exited_;     // A worker ended.
  std::deque<std::function<void()>> jobs_;
  // Timed jobs by (time, id); each id's time, for Cancel.
  std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> timed_;
  std::unordered_map<uint64_t, Clock::time_point> timed_ids_;
  uint64_t next_id_ = 0;
  bool timekeeper_ = false;  // An idle worker waits for timed_'s earliest.
  int threads_ = 0;
  int idle_ = 0;
  bool stopping_ = false;
};

}  // namespace kiso
