#include "store/watch_channel.h"

namespace kiso::store {

void WatchChannel::SetReplay(Replayer replayer, Revision after, Revision up_to) {
  std::lock_guard lock(mu_);
  replayer_ = std::move(replayer);
  replay_after_ = after;
  replay_up_to_ = up_to;
}

bool WatchChannel::Push(std::vector<WatchEvent> events) {
  {
    std::lock_guard lock(mu_);
    if (!end_.ok()) return false;
    if (buffer_.size() + events.size() > capacity_) {
      end_ = MakeStatus(Code::kResourceExhausted,
                        "watch fell behind: more than {} events waiting to be read; list again and "
                        "watch from the new revision",
                        capacity_);
      buffer_.clear();  // Events past a gap are useless to the consumer.
    } else {
      for (auto& e : events) buffer_.push_back(std::move(e));
    }
  }
  cv_.notify_one();
  return true;
}

void WatchChannel::Close(Status why) {
  {
    std::lock_guard lock(mu_);
    if (end_.ok()) end_ = std::move(why);
  }
  cv_.notify_one();
}

bool WatchChannel::ended() const {
  std::lock_guard lock(mu_);
  return !end_.ok();
}

void WatchChannel::Cancel() {
  Close(Status(Code::kCancelled, "watch cancelled"));
  std::lock_guard lock(mu_);
  buffer_.clear();
}

Result<std::vector<WatchEvent>> WatchChannel::Next(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  // History first, read on this (the consumer's) thread so a large replay
  // costs the producer nothing.
  while (replay_after_ < replay_up_to_ && end_.ok()) {
    Replayer replayer = replayer_;
    Revision after = replay_after_;
    Revision up_to = replay_up_to_;
    lock.unlock();
    Result<ReplayChunk> chunk = replayer(after, up_to);
    lock.lock();
    if (!chunk.ok()) {
      if (end_.ok()) end_ = chunk.status();
      break;
    }
    replay_after_ = chunk->scanned_to;
    if (!chunk->events.empty() && end_.ok()) return std::move(chunk->events);
  }
  cv_.wait_until(lock, deadline, [&] { return !buffer_.empty() || !end_.ok(); });
  if (!buffer_.empty()) {
    std::vector<WatchEvent> out;
    out.swap(buffer_);
    return out;
  }
  if (!end_.ok()) return end_;
  return std::vector<WatchEvent>{};
}

ChannelWatch::~ChannelWatch() {
  channel_->Cancel();
  if (on_close_) on_close_();
}

}  // namespace kiso::store
