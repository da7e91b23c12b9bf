#include "apiserver/schema/custom_resources.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/custom_resource.h"
#include "api/object.h"

namespace kiso::apiserver {

namespace {

const std::string& Prefix() {
  static const auto& p = *new std::string(
      api::FindResource("apiextensions.k8s.io", "v1", "customresourcedefinitions")->StorePrefix());
  return p;
}

}  // namespace

CustomResourcePublisher::CustomResourcePublisher(WatchCache* cache) : cache_(cache) {
  WatchCache::Snapshot snapshot;
  auto watcher = cache_->ListAndWatch(Prefix(), &snapshot);
  if (watcher.ok()) watcher_ = std::move(*watcher);
  Refresh();
  if (watcher_) thread_ = std::thread([this] { Run(); });
}

CustomResourcePublisher::~CustomResourcePublisher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (watcher_) watcher_->Cancel();
  }
  if (thread_.joinable()) thread_.join();
  api::PublishCustomResources({});
}

void CustomResourcePublisher::Run() {
  while (!stopping_) {
    auto events = watcher_->Next(std::chrono::steady_clock::now() + std::chrono::seconds(5));
    if (!events.ok()) {
      if (stopping_ || events.status().code() == Code::kCancelled) return;
      // Fell behind: follow again from now.
      WatchCache::Snapshot snapshot;
      auto again = cache_->ListAndWatch(Prefix(), &snapshot);
      if (!again.ok()) return;
      std::lock_guard lock(mu_);
      if (stopping_) return;
      watcher_ = std::move(*again);
    }
    Refresh();
  }
}

void CustomResourcePublisher::Refresh() {
  auto snapshot = cache_->List(Prefix());
  std::lock_guard lock(mu_);
  if (snapshot.objects == published_) return;
  std::vector<api::ResourceType> types;
  for (const auto& obj : snapshot.objects) {
    auto crd = api::ParseJson(obj->json);
    if (!crd.ok() || !api::CrdCondition(*crd, "Established")) continue;
    auto more = api::CustomResourceTypes(*crd);
    for (auto& t : more) {
      // A kind a built-in type or an earlier definition serves is not taken over.
      if (api::FindResource(t.group, t.version, t.plural) &&
          !api::FindResource(t.group, t.version, t.plural)->custom) {
        spdlog::warn("custom resource {}: {}/{} is built in", obj->name, t.GroupVersion(),
                     t.plural);
        continue;
      }
      bool taken = false;
      for (const auto& other : types)
        taken |= other.group == t.group && other.plural == t.plural && other.version == t.version;
      if (!taken) types.push_back(std::move(t));
    }
  }
  api::PublishCustomResources(std::move(types));
  published_ = std::move(snapshot.objects);
}

}  // namespace kiso::apiserver
