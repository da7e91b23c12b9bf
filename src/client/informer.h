// Informer: a local, watch-maintained copy of one resource type (client-go's
// reflector + store): list, then watch from the list's resourceVersion, and
// re-list when the watch ends (410 Expired included). Handlers run on the
// informer's thread after the cache is updated.
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <condition_variable>
#include <functional>
#include <map>
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

  Informer(Client* client, const api::ResourceType* type, Handler handler);
  ~Informer();  // Stops.
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();
  void Stop();
  bool synced() const { return synced_.load(); }
  // Blocks until the first list has been applied, or `deadline`.
  bool WaitForSync(std::chrono::steady_clock::time_point deadline) const;

  std::optional<boost::json::value> Get(const std::string& ns, const std::string& name) const;
  std::vector<boost::json::value> List() const;
  const api::ResourceType& type() const { return *type_; }

 private:
  void Run();
  bool ListOnce(std::string* resource_version);

  Client* client_;
  const api::ResourceType* type_;
  Handler handler_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> synced_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable synced_cv_;
  std::map<std::string, boost::json::value> objects_;  // "ns/name" → object.
  WatchStream* current_ = nullptr;  // The open watch, for Stop to cancel (under mu_).
};

}  // namespace kiso::client
