// Informer: a local, watch-maintained copy of one resource type (client-go's
// reflector + store): list, then watch from the list's resourceVersion, and
// re-list when the watch ends (410 Expired included). Handlers run after the
// cache is updated, one at a time, in the order of the events: over a remote
// transport on the informer's own thread, which waits on the watch; in process
// on a pool every in-process informer shares (about a thread per core), woken
// by the watch when it has events, so an informer holds no thread of its own.
// Handlers should be quick (queue a key, update a cache). Objects are kept,
// and handed to handlers, without metadata.managedFields (as upstream's
// controllers' informers trim them).
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "common/worker_pool.h"

namespace kiso::client {

class Informer {
 public:
  // `old` is null for an add; `obj` is the last state for a delete.
  using Handler = std::function<void(const boost::json::value* old, const boost::json::value& obj,
                                     bool deleted)>;

  // `handler` may be empty: handlers can also be added with AddHandler.
  Informer(Client* client, const api::ResourceType* type, Handler handler);
  ~Informer();  // Stops.
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Watches only objects matching `selector` ("spec.nodeName=n1"). Before Start.
  void SetFieldSelector(std::string selector) { field_selector_ = std::move(selector); }
  void Start();  // Idempotent.
  void Stop();
  // Adds a handler; on a started informer it first receives every cached object as
  // an add (as client-go's AddEventHandler). Returns an id for RemoveHandler.
  int AddHandler(Handler handler);
  // Removes a handler; when it returns, the handler is not running and never will.
  void RemoveHandler(int id);
  bool synced() const { return synced_.load(); }
  // Blocks until the first list has been applied, or `deadline`.
  bool WaitForSync(std::chrono::steady_clock::time_point deadline) const;

  // A cached object, shared and never changed: an update replaces the pointer.
  using Object = std::shared_ptr<const boost::json::value>;

  std::optional<boost::json::value> Get(const std::string& ns, const std::string& name) const;
  // Every cached object, shared: what a reader that only looks should take (no
  // copy of the objects themselves).
  std::vector<Object> Items() const;
  // Every cached object, copied: for a caller that changes or keeps them.
  std::vector<boost::json::value> List() const;
  const api::ResourceType& type() const { return *type_; }

 private:
  void Run();  // The informer's thread (a remote transport).
  bool ListOnce(std::string* resource_version);
  // Opens the watch from `resource_version` (and publishes it to Stop); null
  // if it failed or the informer is stopping.
  std::unique_ptr<WatchStream> OpenWatch(const std::string& resource_version);
  void Apply(std::vector<WatchEvent>& events);  // Into the cache, then to the handlers.

  // In process: the informer advances in steps, jobs of the shared pool.
  static WorkerPool& Pool();
  void Schedule();        // A step soon (the watch's `ready`): at most one queued or running.
  void ScheduleLocked();  // REQUIRES: step_mu_ held.
  void ScheduleAt(std::chrono::steady_clock::time_point when);  // A step by `when`.
  void Step();     // The pool's job: Advance until nothing more to do.
  void Advance();  // Lists and opens the watch if needed, then takes what it has.

  Client* client_;
  const api::ResourceType* type_;
  std::string field_selector_;
  void Dispatch(const boost::json::value* old, const boost::json::value& obj, bool deleted);

  std::mutex handlers_mu_;  // Held while handlers run: removal waits for a running one.
  std::map<int, Handler> handlers_;
  int next_handler_ = 0;
  bool started_ = false;
  bool pooled_ = false;  // Steps on Pool() (in process) rather than thread_.
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> synced_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable synced_cv_;
  std::map<std::string, Object> objects_;  // "ns/name" → object.
  WatchStream* current_ = nullptr;         // The open watch, for Stop to cancel (under mu_).

  // Pooled: the open watch (steps only), and the steps' bookkeeping. Lock
  // order: a watch's `ready` → step_mu_ → the pool's; never mu_ under step_mu_.
  std::unique_ptr<WatchStream> watch_;
  std::chrono::steady_clock::time_point retry_at_{};  // No list or watch before (steps only).
  std::mutex step_mu_;
  std::condition_variable step_cv_;  // jobs_ fell to 0.
  bool stepping_ = false;            // A step is queued or running.
  bool again_ = false;               // Scheduled while one runs: it goes round once more.
  int jobs_ = 0;                     // The pool's jobs (queued, timed, running) for this informer.
  uint64_t timer_ = 0;               // The timed job, if any…
  std::chrono::steady_clock::time_point timer_at_{};  // …and its time.
};

}  // namespace kiso::client
