// WatchCache: the API server's in-memory view of every object, fed by one
// store watch (kube-apiserver's cacher). LIST and WATCH are served from here,
// not by re-reading the store: a snapshot is a range scan of an ordered map,
// and a watch replays a bounded window of recent events, then streams. The
// window holds each key's current version whole; of a version replaced since,
// what selectors need, its JSON read back from the store only for a watch that
// replays it (such watches are rare: a watch resumes from where it left off).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "api/object.h"
#include "common/status.h"
#include "store/store.h"

namespace kiso::apiserver {

// An object's field-selector values, by the field names its kind has
// (FieldSelectorFields): a value per name, the names shared by every object of
// the kind, so that each cached version keeps only its values.
class FieldValues {
 public:
  FieldValues() = default;
  FieldValues(const std::vector<std::string>* names, std::vector<std::string> values)
      : names_(names), values_(std::move(values)) {}
  // The field's value, or null when the kind has no such field.
  const std::string* Find(std::string_view field) const {
    for (size_t i = 0; names_ && i < names_->size(); ++i) {
      if ((*names_)[i] == field) return &values_[i];
    }
    return nullptr;
  }

 private:
  const std::vector<std::string>* names_ = nullptr;  // Static: FieldSelectorFields' lists.
  std::vector<std::string> values_;
};

// One object as served: the JSON with metadata.resourceVersion set, and what
// selectors need, extracted once when the object enters the cache.
struct CachedObject {
  std::string key;
  std::string json;              // Empty when json_in_store().
  store::Revision revision = 0;  // mod_revision (the object's resourceVersion).
  std::string ns;
  std::string name;
  api::Labels labels;
  FieldValues fields;  // Field-selector values.
  // A version a newer one has replaced, as the replay window keeps it: what
  // selectors need, without the JSON (every version served has some), which
  // the store still has at `revision` (WatchCache::Watch reads it back for a
  // watch that replays it).
  bool json_in_store() const { return json.empty(); }

  // The object decoded, without metadata.managedFields, for in-process
  // watchers (informers), read-only: the copy the cache holds (see
  // HoldDecoded), shared by all of them, else one decoded from `json` now.
  // Thread-safe.
  std::shared_ptr<const boost::json::value> Decoded() const;
  // Whilst this is the current version of a key that in-process informers
  // follow (WatchCache::Watch's hold_decoded), the cache holds its decoded form (made from the
  // decode that filled the fields above), so that their informers take it rather than decode the
  // JSON again; the informers then hold that same copy. Released when a newer version replaces it:
  // it lives on only where it is kept.
  void HoldDecoded(std::shared_ptr<const boost::json::value> decoded) const;
  void ReleaseDecoded() const;

 private:
  mutable std::shared_ptr<const boost::json::value> held_;  // Under a lock of DecodedLock.
};
using ObjectPtr = std::shared_ptr<const CachedObject>;

struct CacheEvent {
  enum class Type { kAdded, kModified, kDeleted };
  Type type = Type::kAdded;
  store::Revision revision = 0;
  ObjectPtr object;  // kDeleted: the last state, with resourceVersion = the deletion's revision.
  ObjectPtr prev;    // kModified/kDeleted: the state before.
};
using EventPtr = std::shared_ptr<const CacheEvent>;

// Decodes a stored value into a CachedObject for `key` at `revision`.
// Exposed for the handlers that read the store directly (GET).
Result<ObjectPtr> MakeCachedObject(const std::string& key, std::string_view value,
                                   store::Revision revision);

class CacheWatcher {
 public:
  // Waits for events until `deadline`. Empty at the deadline. An error ends the
  // watch: ResourceExhausted when this watcher fell too far behind, Cancelled at shutdown.
  Result<std::vector<EventPtr>> Next(std::chrono::steady_clock::time_point deadline);
  // Ends the watch: a blocked Next returns Cancelled. Thread-safe.
  void Cancel();
  // Calls `ready` whenever events arrive or the watch ends (now too, if some
  // wait already), for a reader that does not block in Next: it then calls
  // Next with a deadline already past. `ready` runs under the cache's locks:
  // it must be quick and must not call the cache or this watcher. Null stops
  // the calls; once SetNotify returns, the previous `ready` is not running.
  void SetNotify(std::function<void()> ready);
  ~CacheWatcher();

 private:
  friend class WatchCache;
  class WatchCache* cache_ = nullptr;
  std::string prefix_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> notify_;
  bool hold_decoded_ = false;  // See WatchCache::Watch.
  std::deque<EventPtr> queue_;
  Status ended_;
  size_t limit_ = 0;
};

class WatchCache {
 public:
  struct Options {
    size_t history_events = 50000;  // The replay window.
    size_t watcher_buffer = 20000;  // Events a watcher may lag before it is cut off.
  };
  // Loads every object under /registry/ and starts following the store.
  static Result<std::unique_ptr<WatchCache>> Start(store::Store* store, const Options& options);
  ~WatchCache();

  // Blocks until the cache has applied `revision` or `deadline` passes; false on timeout.
  bool WaitFor(store::Revision revision, std::chrono::steady_clock::time_point deadline);
  store::Revision revision() const;

  struct Snapshot {
    store::Revision revision = 0;
    std::vector<ObjectPtr> objects;  // Ascending by key.
  };
  // Objects whose key starts with `prefix` and is > `after_key` (for continue tokens).
  Snapshot List(const std::string& prefix, const std::string& after_key = "") const;

  // Events on keys under `prefix` with revision > `after`. Expired (as
  // kCompacted, message "too old resource version: N (M)") if the window no longer reaches back,
  // or the store no longer has a replaced version it would replay (see json_in_store()).
  // `hold_decoded`: the watcher is in process and keeps every object under
  // `prefix` decoded (an informer's, taking CachedObject::Decoded()): while it
  // watches, the cache holds the current version of each key there decoded,
  // for it to take.
  Result<std::unique_ptr<CacheWatcher>> Watch(const std::string& prefix, store::Revision after,
                                              bool hold_decoded = false);
  // A snapshot and a watch from exactly its revision, atomically.
  Result<std::unique_ptr<CacheWatcher>> ListAndWatch(const std::string& prefix, Snapshot* snapshot,
                                                     bool hold_decoded = false);

  size_t watcher_count() const;

  // The object at `key`, or null.
  ObjectPtr Get(std::string_view key) const;

  // Keeps an index of the objects under `prefix`: `apply` is called with
  // each of them now, then with every change (the object, or null when it is
  // deleted) on the cache's thread, before the change becomes visible here
  // (revision(), WaitFor): such an index is never behind the cache. `apply`
  // must be quick and must not call the cache. Returns an id for RemoveIndexer.
  using Indexer = std::function<void(const std::string& key, const ObjectPtr& object)>;
  int AddIndexer(const std::string& prefix, Indexer apply);
  void RemoveIndexer(int id);

 private:
  friend class CacheWatcher;
  WatchCache(store::Store* store, Options options) : store_(store), options_(options) {}
  void Run();
  void Apply(const store::WatchEvent& event);
  // REQUIRES: mu_ held exclusively. `replaced` was its key's current version
  // until now: returns what the window keeps of it (json_in_store()), which its
  // own event in the window then holds instead.
  ObjectPtr Supersede(const ObjectPtr& replaced);
  // The version `kept` stands for, with its JSON read back from the store.
  Result<ObjectPtr> ReadBack(const CachedObject& kept) const;
  void Remove(CacheWatcher* watcher);
  std::unique_ptr<CacheWatcher> NewWatcher(const std::string& prefix, bool hold_decoded);
  // REQUIRES: w->mu_ held. Ends the watch with `why` and wakes its reader.
  static void End(CacheWatcher* w, Status why);

  // After the store's watch broke (an etcd member gone): a new one from the
  // last applied revision, tried with back-off until it is made or the cache
  // closes. False when closing.
  bool Rewatch(const Status& why);

  store::Store* store_;
  Options options_;
  std::mutex watch_mu_;  // Guards watch_'s replacement against its Cancel() on close.
  std::condition_variable closing_cv_;
  bool closing_ = false;  // Guarded by watch_mu_.
  std::unique_ptr<store::Watch> watch_;
  std::thread thread_;

  mutable std::shared_mutex mu_;
  std::map<std::string, ObjectPtr, std::less<>> objects_;
  std::deque<EventPtr> history_;
  store::Revision floor_ = 0;     // Every event with revision > floor_ is in history_.
  store::Revision revision_ = 0;  // The last applied revision.
  std::vector<CacheWatcher*> watchers_;
  std::map<std::string, int> held_prefixes_;  // Watchers' with hold_decoded, counted.
  struct IndexerEntry {
    int id;
    std::string prefix;
    Indexer apply;
  };
  std::vector<IndexerEntry> indexers_;
  int next_indexer_ = 0;
  std::condition_variable_any advanced_;
  Status ended_;
};

}  // namespace kiso::apiserver
