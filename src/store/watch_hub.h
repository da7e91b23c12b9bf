// WatchHub: fans committed events out to the watches of a local backend.
// The committer publishes each batch once, in revision order; every watcher
// gets the events in its range through its own bounded WatchChannel, so a
// slow watcher costs the committer one append and nothing more.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "store/watch_channel.h"

namespace kiso::store {

class WatchHub {
 public:
  explicit WatchHub(Revision published) : published_(published) {}

  // Adds a watcher for events in `range` with revision > `after`. Returns its
  // id and the last revision already published: the caller replays history
  // in (after, that revision] and the hub delivers everything after it.
  struct Registration {
    uint64_t id = 0;
    Revision published = 0;
  };
  Registration Add(KeyRange range, Revision after, bool prev_kv,
                   std::shared_ptr<WatchChannel> channel);
  void Remove(uint64_t id);

  // Delivers the events of committed revisions (ascending) up to `revision`.
  // Events carry prev_kv; it is stripped for watchers that did not ask.
  void Publish(Revision revision, const std::vector<WatchEvent>& events);

  // Ends every watch with `why` (store shutdown).
  void CloseAll(const Status& why);

  size_t size() const;

 private:
  struct Watcher {
    KeyRange range;
    Revision after;
    bool prev_kv;
    std::shared_ptr<WatchChannel> channel;
  };
  mutable std::mutex mu_;
  Revision published_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Watcher> watchers_;
};

}  // namespace kiso::store
