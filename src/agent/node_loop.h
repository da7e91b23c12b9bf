// NodeLoop: what every node agent runs, real or hollow — workers draining a
// keyed work queue (a key is never reconciled by two workers at once) and a
// heartbeat every period, until Stop().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/work_queue.h"

namespace kiso::agent {

class NodeLoop {
 public:
  ~NodeLoop() { Stop(); }
  void Start(int workers, const std::function<void(const std::string&)>& reconcile,
             std::chrono::seconds heartbeat, std::function<void()> beat);
  // Joins the workers and the heartbeat. Idempotent.
  void Stop();
  bool stopping() const { return stop_.load(); }
  client::WorkQueue& queue() { return queue_; }

 private:
  client::WorkQueue queue_;
  std::vector<std::thread> workers_;
  std::thread heartbeat_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable stop_cv_;
};

}  // namespace kiso::agent
