#include "agent/node_loop.h"

#include "common/recover.h"

namespace kiso::agent {

void NodeLoop::Start(int workers, const std::function<void(const std::string&)>& reconcile,
                     std::chrono::seconds heartbeat, std::function<void()> beat) {
  for (int i = 0; i < workers; ++i) {
    workers_.emplace_back([this, reconcile] {
      while (auto key = queue_.Get()) {
        // A pod the agent cannot handle (a bug an odd object found) must not
        // end the node: it is logged and retried later, the others go on.
        try {
          reconcile(*key);
        } catch (...) {
          ReportRecovered("node: syncing " + *key, CurrentExceptionMessage());
          queue_.AddAfter(*key, std::chrono::seconds(10));
        }
        queue_.Done(*key);
      }
    });
  }
  heartbeat_ = std::thread([this, heartbeat, beat = std::move(beat)] {
    std::unique_lock lock(mu_);
    while (!stop_cv_.wait_for(lock, heartbeat, [&] { return stop_.load(); })) {
      lock.unlock();
      beat();
      lock.lock();
    }
  });
}

void NodeLoop::Stop() {
  if (stop_.exchange(true)) return;
  {
    std::lock_guard lock(mu_);
    stop_cv_.notify_all();
  }
  queue_.ShutDown();
  for (auto& w : workers_) w.join();
  workers_.clear();
  if (heartbeat_.joinable()) heartbeat_.join();
}

}  // namespace kiso::agent
