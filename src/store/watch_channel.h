// WatchChannel: the bounded queue between a backend producing watch events
// and the one consumer reading them, shared by every backend so a slow
// watcher is handled the same everywhere: producers never block, and a
// consumer that lets `capacity` events pile up loses its watch
// (ResourceExhausted) instead of stalling writers or other watchers.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "store/store.h"

namespace kiso::store {

class WatchChannel {
 public:
  // Reads stored history for the consumer, in chunks: events with revision in
  // (after, up_to], at most a few thousand per call, plus the revision the
  // read reached (== up_to when done). Called on the consumer's thread.
  struct ReplayChunk {
    std::vector<WatchEvent> events;
    Revision scanned_to = 0;
  };
  using Replayer = std::function<Result<ReplayChunk>(Revision after, Revision up_to)>;

  explicit WatchChannel(size_t capacity) : capacity_(capacity) {}

  // Makes the consumer first replay history in (after, up_to] through
  // `replayer` before any pushed event. REQUIRES: called before any Push.
  void SetReplay(Replayer replayer, Revision after, Revision up_to);

  // Producer side. Appends events in revision order. Returns false if the
  // watch has ended (the producer should forget it). Never blocks on the consumer.
  bool Push(std::vector<WatchEvent> events);
  // Ends the watch with `why`; buffered events are still delivered first.
  void Close(Status why);
  bool ended() const;

  // Consumer side: see Watch::Next and Watch::Cancel.
  Result<std::vector<WatchEvent>> Next(std::chrono::steady_clock::time_point deadline);
  void Cancel();

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchEvent> buffer_;
  Status end_;  // Non-OK once ended.
  Replayer replayer_;
  Revision replay_after_ = 0;
  Revision replay_up_to_ = 0;
};

// A Watch that reads a channel and runs `on_close` once when destroyed
// (detaching the channel from its producer).
class ChannelWatch : public Watch {
 public:
  ChannelWatch(std::shared_ptr<WatchChannel> channel, std::function<void()> on_close)
      : channel_(std::move(channel)), on_close_(std::move(on_close)) {}
  ~ChannelWatch() override;
  ChannelWatch(const ChannelWatch&) = delete;
  ChannelWatch& operator=(const ChannelWatch&) = delete;

  Result<std::vector<WatchEvent>> Next(std::chrono::steady_clock::time_point deadline) override {
    return channel_->Next(deadline);
  }
  void Cancel() override { channel_->Cancel(); }

 private:
  std::shared_ptr<WatchChannel> channel_;
  std::function<void()> on_close_;
};

}  // namespace kiso::store
