// WorkQueue: keys to reconcile (client-go's workqueue): a key waiting is
// queued once however often it is added; a key being processed is never
// handed to a second worker, and is queued again on Done if it was added
// meanwhile; AddAfter delays a retry (a key waiting twice keeps the earlier
// time, as client-go's delaying queue does). Its keys are taken either by
// workers blocking in Get, or, once Serve is called, by jobs on a WorkerPool
// made as keys come: then no thread waits while the queue has nothing to do.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace kiso {
class WorkerPool;
}  // namespace kiso

namespace kiso::client {

class WorkQueue {
 public:
  WorkQueue() = default;
  ~WorkQueue();  // Shuts down.
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Add(const std::string& key);
  void AddAfter(const std::string& key, std::chrono::steady_clock::duration delay);
  // Blocks for the next key; nullopt once ShutDown has been called.
  std::optional<std::string> Get();
  void Done(const std::string& key);
  // Takes `key` out of turn, as a worker would have it: waits while a worker
  // has it, then marks it processing (a queued copy waits for Done, which
  // hands it out again). False once ShutDown has been called.
  bool Claim(const std::string& key);
  // From now on `pool` runs `process` on each key as it becomes ready, at
  // most `max_active` (≥ 1) keys at a time (as that many workers in Get would), and
  // a delayed key waits as a timed job of the pool's. `process` must call
  // Done(key). Not with Get. Nothing after ShutDown.
  void Serve(WorkerPool* pool, int max_active, std::function<void(const std::string&)> process);
  // Stops handing keys out; when serving, also waits for the keys being
  // processed and takes back the pool's timed jobs.
  void ShutDown();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> dirty_;       // Queued or to be requeued.
  std::set<std::string> processing_;  // Handed to a worker.
  std::multimap<std::chrono::steady_clock::time_point, std::string> delayed_;
  std::map<std::string, std::chrono::steady_clock::time_point> due_;  // Each delayed key's time.
  bool shutting_down_ = false;

  // REQUIRES: mu_ held. Delayed keys whose time has come join the queue.
  void PromoteDueLocked();
  // REQUIRES: mu_ held. When serving: jobs for queued keys, up to max_active_,
  // and a timed job for the earliest delayed key.
  void DispatchLocked();
  void Drain();  // A serving job: processes keys until none is queued.
  void OnTimer(uint64_t token);

  WorkerPool* pool_ = nullptr;  // Serving, when set.
  int max_active_ = 0;
  int active_ = 0;  // Drain jobs running or queued on the pool.
  std::function<void(const std::string&)> process_;
  // Timed jobs on the pool, by token: the pool's id and the time.
  struct Timer {
    uint64_t id;
    std::chrono::steady_clock::time_point when;
  };
  std::map<uint64_t, Timer> timers_;
  uint64_t next_token_ = 0;
};

}  // namespace kiso::client
