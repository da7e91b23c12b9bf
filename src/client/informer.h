// Informer: a local, watch-maintained copy of one resource type (client-go's
// reflector + store): list, then watch from the list's resourceVersion, and
// re-list when the watch ends (410 Expired included). Handlers run on the
// informer's thread after the cache is updated. Objects are kept, and handed
// to handlers, without metadata.managedFields (as upstream's controllers'
// informers trim them).
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
  void Run();
  bool ListOnce(std::string* resource_version);

  Client* client_;
  const api::ResourceType* type_;
  std::string field_selector_;
  void Dispatch(const boost::json::value* old, const boost::json::value& obj, bool deleted);

  std::mutex handlers_mu_;  // Held while handlers run: removal waits for a running one.
  std::map<int, Handler> handlers_;
  int next_handler_ = 0;
  bool started_ = false;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> synced_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable synced_cv_;
  std::map<std::string, Object> objects_;  // "ns/name" → object.
  WatchStream* current_ = nullptr;         // The open watch, for Stop to cancel (under mu_).
};

}  // namespace kiso::client
