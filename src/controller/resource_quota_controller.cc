#include "controller/resource_quota_controller.h"

#include <boost/json.hpp>

#include "api/object.h"
#include "api/quota.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Quotas() { return *api::FindResource("", "v1", "resourcequotas"); }

constexpr auto kUnwatchedResync = std::chrono::seconds(30);

}  // namespace

ResourceQuotaController::ResourceQuotaController(client::Client* client,
                                                 client::SharedInformers* shared)
    : Controller(client, "resourcequota-controller", 1, shared) {
  quotas_ = Watch(Quotas(), [this](const json::value*, const json::value& quota, bool deleted) {
    if (!deleted) Enqueue(KeyOf(quota));
  });
  for (const char* plural : {"pods", "services", "persistentvolumeclaims", "configmaps", "secrets",
                             "replicationcontrollers"}) {
    const api::ResourceType* type = api::FindResource("", "v1", plural);
    if (!type) continue;  // Not served (yet): nothing of it to count.
    // What an object uses changes when it comes (charged by admission, but
    // a quota made a moment before may not have been seen), when it goes,
    // and when it changes (a pod finishing, a Service changing type).
    watched_.insert(type);
    Watch(*type,
          [this](const json::value*, const json::value& obj, bool) { EnqueueNamespace(obj); });
  }
  watched_.insert(&Quotas());
}

void ResourceQuotaController::EnqueueNamespace(const json::value& obj) {
  std::string_view ns = api::GetString(obj, {"metadata", "namespace"});
  for (const auto& quota : quotas_->List()) {
    if (api::GetString(quota, {"metadata", "namespace"}) == ns) Enqueue(KeyOf(quota));
  }
}

Status ResourceQuotaController::Reconcile(const std::string& key) {
  const auto [ns, name] = SplitKey(key);
  auto quota = quotas_->Get(ns, name);
  if (!quota) return Status::Ok();
  const json::value* hard_v = api::Find(*quota, {"spec", "hard"});
  api::ResourceList hard = api::ParseResourceList(hard_v);
  api::ResourceList used;
  for (const auto& [resource, amount] : hard) used[resource] = 0;
  bool unwatched = false;
  for (const api::ResourceType* type : api::QuotaKinds(hard)) {
    unwatched = unwatched || !watched_.contains(type);
    // A consistent list, at or past the revision of the quota read above:
    // every object a create charged to that quota is in it. (The informers'
    // caches may trail one another; counting from them could give back a
    // charge whose object they have not shown yet, and let a create through.)
    auto list = client()->List(*type, ns);
    if (!list.ok()) return list.status();
    const auto* items = list->as_object().if_contains("items");
    if (!items || !items->is_array()) continue;
    for (const auto& obj : items->get_array()) {
      if (!obj.is_object() || !api::QuotaMatches(quota->as_object(), *type, obj.get_object()))
        continue;
      for (const auto& [resource, milli] : api::QuotaUsage(*type, obj.get_object())) {
        if (auto it = used.find(resource); it != used.end()) it->second += milli;
      }
    }
  }
  if (unwatched) EnqueueAfter(key, kUnwatchedResync);
  json::object status;
  status["hard"] = hard_v && hard_v->is_object() ? *hard_v : json::object();
  json::object used_out;
  for (const auto& [resource, milli] : used) {
    used_out[resource] = api::FormatQuantityLike(milli, api::Find(*hard_v, {resource}));
  }
  status["used"] = std::move(used_out);
  const json::value* current = api::Find(*quota, {"status"});
  if (current && *current == json::value(status)) return Status::Ok();
  json::value next = *quota;
  next.as_object()["status"] = std::move(status);
  auto res = client()->Update(Quotas(), ns, next, "status");
  if (res.ok() || res.status().code() == Code::kNotFound) return Status::Ok();
  return res.status();
}

}  // namespace kiso::controller
