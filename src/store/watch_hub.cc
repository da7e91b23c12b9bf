#include "store/watch_hub.h"

namespace kiso::store {

WatchHub::Registration WatchHub::Add(KeyRange range, Revision after, bool prev_kv,
                                     std::shared_ptr<WatchChannel> channel) {
  std::lock_guard lock(mu_);
  uint64_t id = next_id_++;
  watchers_.emplace(id, Watcher{std::move(range), after, prev_kv, std::move(channel)});
  return {id, published_};
}

void WatchHub::Remove(uint64_t id) {
  std::lock_guard lock(mu_);
  watchers_.erase(id);
}

void WatchHub::Publish(Revision revision, const std::vector<WatchEvent>& events) {
  std::lock_guard lock(mu_);
  published_ = revision;
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    Watcher& w = it->second;
    std::vector<WatchEvent> mine;
    for (const WatchEvent& e : events) {
      if (e.kv.mod_revision <= w.after || !w.range.Contains(e.kv.key)) continue;
      mine.push_back(e);
      if (!w.prev_kv) mine.back().prev_kv.reset();
    }
    bool alive = mine.empty() ? !w.channel->ended() : w.channel->Push(std::move(mine));
    it = alive ? std::next(it) : watchers_.erase(it);
  }
}

void WatchHub::CloseAll(const Status& why) {
  std::lock_guard lock(mu_);
  for (auto& [id, w] : watchers_) w.channel->Close(why);
  watchers_.clear();
}

size_t WatchHub::size() const {
  std::lock_guard lock(mu_);
  return watchers_.size();
}

}  // namespace kiso::store
