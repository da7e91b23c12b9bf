// CustomResourcePublisher: the API server's side of CustomResourceDefinitions
// (apiextensions-apiserver's CRD handler). It follows the definitions in the
// watch cache and publishes the kinds of every established one
// (api::PublishCustomResources): from then on discovery lists them, the verbs
// serve them with their schemas, and Tables print their columns.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "apiserver/watch_cache.h"

namespace kiso::apiserver {

class CustomResourcePublisher {
 public:
  // Publishes what the cache holds now, then follows it.
  explicit CustomResourcePublisher(WatchCache* cache);
  // Stops following and withdraws the kinds it published.
  ~CustomResourcePublisher();
  CustomResourcePublisher(const CustomResourcePublisher&) = delete;
  CustomResourcePublisher& operator=(const CustomResourcePublisher&) = delete;

  // Publishes the definitions the cache holds now, if they changed since the
  // last time (cheap when they did not): for a request naming a kind not
  // served yet, so that a client that saw a definition established is served.
  void Refresh();

 private:
  void Run();

  WatchCache* cache_;
  std::mutex mu_;
  std::vector<ObjectPtr> published_;  // guarded by mu_: the definitions last published
  std::unique_ptr<CacheWatcher> watcher_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace kiso::apiserver
