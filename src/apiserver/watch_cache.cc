#include "apiserver/watch_cache.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/json/monotonic_resource.hpp>

#include "api/packed_json.h"
#include "apiserver/verbs/fields.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

// Guards CachedObject's decoded form: one of a few locks by the object's
// address (a mutex in each of the cache's objects would cost more than the
// pointers it guards).
std::mutex& DecodedLock(const void* object) {
  static std::mutex locks[64];
  return locks[(reinterpret_cast<uintptr_t>(object) >> 4) % 64];
}

Result<ObjectPtr> MakeCached(const std::string& key, std::string_view value,
                             store::Revision revision, bool keep_decoded) {
  // Decoded on a scratch arena (one block, freed on return): what is kept
  // is the JSON, the selectors' values and, for informers, a packed copy.
  json::monotonic_resource scratch(value.size() * 4 + 1024);
  KISO_ASSIGN_OR_RETURN(json::value v, api::ParseJson(value, false, json::storage_ptr(&scratch)));
  if (!v.is_object()) return MakeStatus(Code::kDataLoss, "{}: stored value is not an object", key);
  auto& meta = api::Child(v.get_object(), "metadata");
  meta["resourceVersion"] = std::to_string(revision);
  auto obj = std::make_shared<CachedObject>();
  obj->key = key;
  obj->revision = revision;
  obj->ns = std::string(api::GetString(v, {"metadata", "namespace"}));
  obj->name = std::string(api::GetString(v, {"metadata", "name"}));
  obj->labels = api::GetLabels(v);
  const std::vector<std::string>& fields = FieldSelectorFields(api::GetString(v, {"kind"}));
  std::vector<std::string> values;
  values.reserve(fields.size());
  for (const auto& field : fields) values.push_back(FieldValue(v, field));
  obj->fields = FieldValues(&fields, std::move(values));
  obj->json = json::serialize(v);
  obj->json.shrink_to_fit();  // Kept for as long as the version is: no slack from its growth.
  if (keep_decoded) {
    api::DropManagedFields(v);
    obj->HoldDecoded(api::PackedCopy(v));
  }
  return ObjectPtr(std::move(obj));
}

}  // namespace

Result<ObjectPtr> MakeCachedObject(const std::string& key, std::string_view value,
                                   store::Revision revision) {
  return MakeCached(key, value, revision, false);
}

std::shared_ptr<const json::value> CachedObject::Decoded() const {
  {
    std::lock_guard lock(DecodedLock(this));
    if (held_) return held_;
  }
  // Not held (an older version, or a kind no informer keeps whole): decoded
  // for this reader. Nothing is remembered of it, so no version keeps memory
  // for a copy it no longer has.
  auto decoded = api::PackedDecode(json);
  return decoded.ok() ? std::move(*decoded) : std::make_shared<const json::value>();
}

void CachedObject::HoldDecoded(std::shared_ptr<const json::value> decoded) const {
  std::lock_guard lock(DecodedLock(this));
  held_ = std::move(decoded);
}

void CachedObject::ReleaseDecoded() const {
  std::shared_ptr<const json::value> last;  // Freed outside the lock, if it was the last.
  std::lock_guard lock(DecodedLock(this));
  last = std::move(held_);
}

// ---- CacheWatcher ----

Result<std::vector<EventPtr>> CacheWatcher::Next(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return !queue_.empty() || !ended_.ok(); });
  if (!queue_.empty()) {
    std::vector<EventPtr> out(queue_.begin(), queue_.end());
    queue_.clear();
    return out;
  }
  if (!ended_.ok()) return ended_;
  return std::vector<EventPtr>();
}

void CacheWatcher::Cancel() {
  std::lock_guard lock(mu_);
  if (ended_.ok()) ended_ = Status(Code::kCancelled, "the watch was cancelled");
  cv_.notify_all();
  if (notify_) notify_();
}

void CacheWatcher::SetNotify(std::function<void()> ready) {
  std::lock_guard lock(mu_);
  notify_ = std::move(ready);
  if (notify_ && (!queue_.empty() || !ended_.ok())) notify_();
}

CacheWatcher::~CacheWatcher() {
  SetNotify(nullptr);
  if (cache_) cache_->Remove(this);
}

// ---- WatchCache ----

Result<std::unique_ptr<WatchCache>> WatchCache::Start(store::Store* store, const Options& options) {
  std::unique_ptr<WatchCache> cache(new WatchCache(store, options));
  auto range = store::KeyRange::Prefix("/registry/");
  KISO_ASSIGN_OR_RETURN(auto listed, store->Range(range, {}));
  for (const auto& kv : listed.kvs) {
    auto obj = MakeCachedObject(kv.key, kv.value, kv.mod_revision);
    if (!obj.ok()) {
      spdlog::error("watch cache: skipping {}: {}", kv.key, obj.status().ToString());
      continue;
    }
    cache->objects_.emplace(kv.key, *obj);
  }
  cache->floor_ = cache->revision_ = listed.revision;
  store::WatchOptions wopts;
  wopts.prev_kv = true;
  wopts.buffer_events = 100000;
  KISO_ASSIGN_OR_RETURN(cache->watch_, store->WatchRange(range, listed.revision, wopts));
  WatchCache* raw = cache.get();
  cache->thread_ = std::thread([raw] { raw->Run(); });
  return cache;
}

WatchCache::~WatchCache() {
  {
    std::lock_guard lock(watch_mu_);
    closing_ = true;
    if (watch_) watch_->Cancel();  // None when Start failed before watching.
  }
  closing_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::unique_lock lock(mu_);
  for (auto* w : watchers_) {
    std::lock_guard wl(w->mu_);
    w->cache_ = nullptr;
    End(w, Status(Code::kCancelled, "the API server is shutting down"));
  }
  watchers_.clear();
}

bool WatchCache::Rewatch(const Status& why) {
  spdlog::warn("watch cache: the store's watch broke at revision {} ({}): watching again",
               revision_, why.ToString());
  store::WatchOptions wopts;
  wopts.prev_kv = true;
  wopts.buffer_events = 100000;
  auto delay = std::chrono::milliseconds(50);
  for (int attempt = 0;; ++attempt) {
    {
      std::unique_lock lock(watch_mu_);
      if (closing_cv_.wait_for(lock, attempt == 0 ? std::chrono::milliseconds(0) : delay,
                               [this] { return closing_; }))
        return false;
    }
    delay = std::min<std::chrono::milliseconds>(delay * 2, std::chrono::seconds(2));
    // revision_ is written only by this thread (Run): read without the lock.
    auto w = store_->WatchRange(store::KeyRange::Prefix("/registry/"), revision_, wopts);
    if (!w.ok()) {
      if (w.status().code() == Code::kCompacted) return false;  // History gone: cannot resume.
      continue;
    }
    std::lock_guard lock(watch_mu_);
    if (closing_) {
      (*w)->Cancel();
      return false;
    }
    watch_ = std::move(*w);
    spdlog::info("watch cache: watching the store again from revision {}", revision_);
    return true;
  }
}

void WatchCache::Run() {
  while (true) {
    auto events = watch_->Next(std::chrono::steady_clock::now() + std::chrono::seconds(1));
    if (!events.ok() && events.status().code() != Code::kCancelled &&
        events.status().code() != Code::kCompacted && Rewatch(events.status())) {
      continue;
    }
    if (!events.ok()) {
      if (events.status().code() != Code::kCancelled)
        spdlog::error("watch cache: store watch ended: {}", events.status().ToString());
      std::unique_lock lock(mu_);
      ended_ = events.status();
      for (auto* w : watchers_) {
        std::lock_guard wl(w->mu_);
        End(w, Status(Code::kUnavailable,
                      "the API server's store watch ended: " + events.status().message()));
      }
      advanced_.notify_all();
      return;
    }
    if (events->empty()) continue;
    std::unique_lock lock(mu_);
    for (const auto& e : *events) Apply(e);
    lock.unlock();
    advanced_.notify_all();
  }
}

// REQUIRES: mu_ held exclusively.
void WatchCache::Apply(const store::WatchEvent& e) {
  auto ev = std::make_shared<CacheEvent>();
  ev->revision = e.kv.mod_revision;
  auto it = objects_.find(e.kv.key);
  ObjectPtr prev = it == objects_.end() ? nullptr : it->second;
  if (prev) prev->ReleaseDecoded();  // No longer current: its watchers have it or decode it.
  if (e.type == store::WatchEvent::Type::kPut) {
    bool held = std::any_of(held_prefixes_.begin(), held_prefixes_.end(),
                            [&](const auto& p) { return e.kv.key.starts_with(p.first); });
    auto obj = MakeCached(e.kv.key, e.kv.value, e.kv.mod_revision, held);
    if (!obj.ok()) {
      spdlog::error("watch cache: skipping {}: {}", e.kv.key, obj.status().ToString());
      revision_ = std::max(revision_, e.kv.mod_revision);
      return;
    }
    ev->type = prev ? CacheEvent::Type::kModified : CacheEvent::Type::kAdded;
    ev->object = *obj;
    if (prev) ev->prev = Supersede(prev);
    objects_[e.kv.key] = *obj;
    for (const auto& ix : indexers_) {
      if (e.kv.key.starts_with(ix.prefix)) ix.apply(e.kv.key, *obj);
    }
  } else {
    if (!prev) {
      revision_ = std::max(revision_, e.kv.mod_revision);
      return;
    }
    ev->type = CacheEvent::Type::kDeleted;
    // The deleted object's last state, at the deletion's resourceVersion (as upstream).
    std::string_view last = e.prev_kv ? std::string_view(e.prev_kv->value) : std::string_view();
    auto obj = last.empty() ? Result<ObjectPtr>(prev)
                            : MakeCachedObject(e.kv.key, last, e.kv.mod_revision);
    ev->object = obj.ok() ? *obj : prev;
    ev->prev = Supersede(prev);
    objects_.erase(it);
    for (const auto& ix : indexers_) {
      if (e.kv.key.starts_with(ix.prefix)) ix.apply(e.kv.key, nullptr);
    }
  }
  revision_ = std::max(revision_, e.kv.mod_revision);
  EventPtr shared = ev;
  history_.push_back(shared);
  while (history_.size() > options_.history_events) {
    floor_ = history_.front()->revision;
    history_.pop_front();
  }
  for (auto* w : watchers_) {
    if (!e.kv.key.starts_with(w->prefix_)) continue;
    std::lock_guard wl(w->mu_);
    if (!w->ended_.ok()) continue;
    if (w->queue_.size() >= w->limit_) {
      w->queue_.clear();
      End(w, Status(Code::kResourceExhausted,
                    "the watcher fell too far behind and was closed; re-list and watch again"));
      continue;
    }
    w->queue_.push_back(shared);
    w->cv_.notify_all();
    // Once per batch of waiting events: the reader takes them all.
    if (w->notify_ && w->queue_.size() == 1) w->notify_();
  }
}

ObjectPtr WatchCache::Supersede(const ObjectPtr& replaced) {
  // The event holds what selectors need of the replaced version (a watch
  // tells from it whether the object was in its selection); so does the
  // replaced version's own event from now on. Its JSON (most of a version's
  // memory) stays with those who hold it already, and in the store: a watch
  // that replays the event reads it back (Watch).
  auto kept = std::make_shared<CachedObject>();
  kept->key = replaced->key;
  kept->revision = replaced->revision;
  kept->ns = replaced->ns;
  kept->name = replaced->name;
  kept->labels = replaced->labels;
  kept->fields = replaced->fields;
  // Its event: the one at its revision (a transaction's events share one) that holds it.
  auto it = std::lower_bound(history_.begin(), history_.end(), replaced->revision,
                             [](const EventPtr& e, store::Revision r) { return e->revision < r; });
  for (; it != history_.end() && (*it)->revision == replaced->revision; ++it) {
    if ((*it)->object != replaced) continue;
    auto ev = std::make_shared<CacheEvent>(**it);
    ev->object = kept;
    *it = std::move(ev);
    break;
  }
  return kept;
}

Result<ObjectPtr> WatchCache::ReadBack(const CachedObject& kept) const {
  auto kv = store_->Get(kept.key, kept.revision);
  if ((!kv.ok() && kv.status().code() == Code::kNotFound) ||
      (kv.ok() && kv->mod_revision != kept.revision)) {
    return MakeStatus(Code::kDataLoss, "{} at revision {}: not in the store", kept.key,
                      kept.revision);
  }
  if (!kv.ok()) return kv.status();  // Compacted, among others: the caller says 410.
  return MakeCachedObject(kept.key, kv->value, kept.revision);
}

void WatchCache::End(CacheWatcher* w, Status why) {
  w->ended_ = std::move(why);
  w->cv_.notify_all();
  if (w->notify_) w->notify_();
}

bool WatchCache::WaitFor(store::Revision revision, std::chrono::steady_clock::time_point deadline) {
  std::shared_lock lock(mu_);
  return advanced_.wait_until(lock, deadline, [&] {
    return revision_ >= revision || !ended_.ok();
  }) && revision_ >= revision;
}

store::Revision WatchCache::revision() const {
  std::shared_lock lock(mu_);
  return revision_;
}

WatchCache::Snapshot WatchCache::List(const std::string& prefix,
                                      const std::string& after_key) const {
  Snapshot snap;
  std::shared_lock lock(mu_);
  snap.revision = revision_;
  auto it = after_key.empty() ? objects_.lower_bound(prefix) : objects_.upper_bound(after_key);
  for (; it != objects_.end() && it->first.starts_with(prefix); ++it) {
    snap.objects.push_back(it->second);
  }
  return snap;
}

std::unique_ptr<CacheWatcher> WatchCache::NewWatcher(const std::string& prefix, bool hold_decoded) {
  auto w = std::make_unique<CacheWatcher>();
  w->cache_ = this;
  w->prefix_ = prefix;
  w->hold_decoded_ = hold_decoded;
  if (hold_decoded) ++held_prefixes_[prefix];
  w->limit_ = options_.watcher_buffer;
  return w;
}

Result<std::unique_ptr<CacheWatcher>> WatchCache::Watch(const std::string& prefix,
                                                        store::Revision after, bool hold_decoded) {
  // The replay: the window's events after `after`, in order. The replaced
  // versions among them are read back from the store with the lock released;
  // the events that came meanwhile are taken then, and so on until a round
  // needs no read (each is shorter than the last: it reads only what was
  // replaced during the one before).
  constexpr int kMaxRounds = 16;
  auto too_old = [&](store::Revision oldest) {
    return MakeStatus(Code::kCompacted, "too old resource version: {} ({})", after, oldest);
  };
  std::vector<EventPtr> replay;
  store::Revision through = after;  // Every event up to here is in `replay`.
  for (int round = 0;; ++round) {
    std::unique_lock lock(mu_);
    if (!ended_.ok()) return Status(Code::kUnavailable, "the watch cache has stopped");
    if (through < floor_) return too_old(floor_ + 1);
    size_t start = replay.size();
    // The window is ordered by revision: find the first event after `through`.
    auto first =
        std::upper_bound(history_.begin(), history_.end(), through,
                         [](store::Revision r, const EventPtr& e) { return r < e->revision; });
    for (auto it = first; it != history_.end(); ++it) {
      if ((*it)->object->key.starts_with(prefix)) replay.push_back(*it);
    }
    through = revision_;
    if (std::none_of(replay.begin() + static_cast<std::ptrdiff_t>(start), replay.end(),
                     [](const EventPtr& e) { return e->object->json_in_store(); })) {
      auto w = NewWatcher(prefix, hold_decoded);
      w->queue_.assign(replay.begin(), replay.end());
      watchers_.push_back(w.get());
      return w;
    }
    if (round == kMaxRounds) return too_old(floor_ + 1);  // Replaced faster than read back.
    lock.unlock();
    for (size_t i = start; i < replay.size(); ++i) {
      if (!replay[i]->object->json_in_store()) continue;
      auto object = ReadBack(*replay[i]->object);
      if (!object.ok()) {
        // Compacted in the store: as upstream when the window no longer reaches back.
        if (object.status().code() == Code::kCompacted) return too_old(replay[i]->revision + 1);
        return object.status();
      }
      auto ev = std::make_shared<CacheEvent>(*replay[i]);
      ev->object = std::move(*object);
      replay[i] = std::move(ev);
    }
  }
}

Result<std::unique_ptr<CacheWatcher>> WatchCache::ListAndWatch(const std::string& prefix,
                                                               Snapshot* snapshot,
                                                               bool hold_decoded) {
  std::unique_lock lock(mu_);
  if (!ended_.ok()) return Status(Code::kUnavailable, "the watch cache has stopped");
  snapshot->revision = revision_;
  snapshot->objects.clear();
  for (auto it = objects_.lower_bound(prefix);
       it != objects_.end() && it->first.starts_with(prefix); ++it) {
    snapshot->objects.push_back(it->second);
  }
  auto w = NewWatcher(prefix, hold_decoded);
  watchers_.push_back(w.get());
  return w;
}

void WatchCache::Remove(CacheWatcher* watcher) {
  std::unique_lock lock(mu_);
  if (auto it = held_prefixes_.find(watcher->prefix_);
      watcher->hold_decoded_ && it != held_prefixes_.end() && --it->second == 0) {
    held_prefixes_.erase(it);
  }
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), watcher), watchers_.end());
}

ObjectPtr WatchCache::Get(std::string_view key) const {
  std::shared_lock lock(mu_);
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

int WatchCache::AddIndexer(const std::string& prefix, Indexer apply) {
  std::unique_lock lock(mu_);
  for (auto it = objects_.lower_bound(prefix);
       it != objects_.end() && it->first.starts_with(prefix); ++it) {
    apply(it->first, it->second);
  }
  int id = ++next_indexer_;
  indexers_.push_back({id, prefix, std::move(apply)});
  return id;
}

void WatchCache::RemoveIndexer(int id) {
  std::unique_lock lock(mu_);
  std::erase_if(indexers_, [&](const IndexerEntry& e) { return e.id == id; });
}

size_t WatchCache::watcher_count() const {
  std::shared_lock lock(mu_);
  return watchers_.size();
}

}  // namespace kiso::apiserver
