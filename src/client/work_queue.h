// WorkQueue: keys to reconcile (client-go's workqueue): a key waiting is
// queued once however often it is added; a key being processed is never
// handed to a second worker, and is queued again on Done if it was added
// meanwhile; AddAfter delays a retry (a key waiting twice keeps the earlier
// time, as client-go's delaying queue does).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace kiso::client {

class WorkQueue {
 public:
  void Add(const std::string& key);
  void AddAfter(const std::string& key, std::chrono::steady_clock::duration delay);
  // Blocks for the next key; nullopt once ShutDown has been called.
  std::optional<std::string> Get();
  void Done(const std::string& key);
  // Takes `key` out of turn, as a worker would have it: waits while a worker
  // has it, then marks it processing (a queued copy waits for Done, which
  // hands it out again). False once ShutDown has been called.
  bool Claim(const std::string& key);
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
};

}  // namespace kiso::client
