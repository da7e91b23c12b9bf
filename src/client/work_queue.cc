#include "client/work_queue.h"

#include <algorithm>

namespace kiso::client {

void WorkQueue::Add(const std::string& key) {
  std::lock_guard lock(mu_);
  if (shutting_down_ || !dirty_.insert(key).second) return;
  if (!processing_.contains(key)) queue_.push_back(key);
  cv_.notify_one();
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
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock lock(mu_);
  while (true) {
    if (shutting_down_) return std::nullopt;
    auto now = std::chrono::steady_clock::now();
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
      std::string key = delayed_.begin()->second;
      delayed_.erase(delayed_.begin());
      due_.erase(key);
      if (dirty_.insert(key).second && !processing_.contains(key)) queue_.push_back(key);
    }
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
}

bool WorkQueue::Claim(const std::string& key) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return shutting_down_ || !processing_.contains(key); });
  if (shutting_down_) return false;
  if (auto it = std::find(queue_.begin(), queue_.end(), key); it != queue_.end()) queue_.erase(it);
  processing_.insert(key);
  return true;
}

void WorkQueue::ShutDown() {
  std::lock_guard lock(mu_);
  shutting_down_ = true;
  cv_.notify_all();
}

}  // namespace kiso::client
