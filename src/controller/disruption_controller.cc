#include "controller/disruption_controller.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>
#include <map>
#include <set>

#include "api/object.h"
#include "api/selector.h"
#include "common/clock.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Budgets() {
  return *api::FindResource("policy", "v1", "poddisruptionbudgets");
}
const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Deployments() { return *api::FindResource("apps", "v1", "deployments"); }
const api::ResourceType& ReplicaSets() { return *api::FindResource("apps", "v1", "replicasets"); }
const api::ResourceType& StatefulSets() { return *api::FindResource("apps", "v1", "statefulsets"); }
const api::ResourceType& ReplicationControllers() {
  return *api::FindResource("", "v1", "replicationcontrollers");
}
constexpr auto kDisruptedTimeout = std::chrono::minutes(2);  // Upstream's DeletionTimeout.

// The controller reference of `obj`: (kind, name), or empty.
std::pair<std::string, std::string> ControllerOf(const json::value& obj) {
  const auto* refs = api::Find(obj, {"metadata", "ownerReferences"});
  if (!refs || !refs->is_array()) return {};
  for (const auto& r : refs->get_array()) {
    const auto* c = api::Find(r, {"controller"});
    if (c && c->is_bool() && c->get_bool())
      return {std::string(api::GetString(r, {"kind"})), std::string(api::GetString(r, {"name"}))};
  }
  return {};
}

}  // namespace

DisruptionController::DisruptionController(client::Client* client, client::SharedInformers* shared)
    : Controller(client, "disruption-controller", 2, shared) {
  budgets_ = Watch(Budgets(), [this](const json::value*, const json::value& pdb, bool deleted) {
    if (!deleted) Enqueue(KeyOf(pdb));
  });
  auto by_namespace = [this](const json::value*, const json::value& obj, bool) {
    EnqueueNamespace(api::GetString(obj, {"metadata", "namespace"}));
  };
  pods_ = Watch(Pods(), by_namespace);
  deployments_ = Watch(Deployments(), by_namespace);
  replicasets_ = Watch(ReplicaSets(), by_namespace);
  statefulsets_ = Watch(StatefulSets(), by_namespace);
  replication_controllers_ = Watch(ReplicationControllers(), by_namespace);
}

void DisruptionController::EnqueueNamespace(std::string_view ns) {
  for (const auto& pdb : budgets_->List()) {
    if (api::GetString(pdb, {"metadata", "namespace"}) == ns) Enqueue(KeyOf(pdb));
  }
}

Status DisruptionController::Reconcile(const std::string& key) {
  const auto split = SplitKey(key);
  const std::string ns(split.first), name(split.second);
  auto found = budgets_->Get(ns, name);
  if (!found || !api::GetString(*found, {"metadata", "deletionTimestamp"}).empty())
    return Status::Ok();
  const json::value& pdb = *found;
  std::vector<json::value> pods;
  if (const auto selector = api::BudgetSelector(pdb)) {
    for (const auto& pod : pods_->Items()) {  // Shared: only the selected ones are copied.
      if (api::GetString(*pod, {"metadata", "namespace"}) == ns &&
          selector->Matches(api::GetLabels(*pod)))
        pods.push_back(*pod);
    }
  }

  // Expected pods: the pods themselves for a numeric minAvailable, else their controllers' scale.
  const auto* min_available = api::Find(pdb, {"spec", "minAvailable"});
  const auto* max_unavailable = api::Find(pdb, {"spec", "maxUnavailable"});
  int64_t expected = static_cast<int64_t>(pods.size());
  std::string sync_failed;
  if (!(min_available && min_available->is_int64())) {
    std::set<std::pair<std::string, std::string>> controllers;
    for (const auto& pod : pods) {
      auto owner = ControllerOf(pod);
      if (owner.first == "ReplicaSet") {  // A Deployment's, if it has one.
        auto rs = replicasets_->Get(ns, owner.second);
        if (rs) {
          auto up = ControllerOf(*rs);
          if (up.first == "Deployment") owner = up;
        }
      }
      if (owner.first != "ReplicaSet" && owner.first != "Deployment" &&
          owner.first != "StatefulSet" && owner.first != "ReplicationController") {
        sync_failed = fmt::format("found no controllers for pod \"{}\"",
                                  api::GetString(pod, {"metadata", "name"}));
        break;
      }
      controllers.insert(owner);
    }
    expected = 0;
    for (const auto& [kind, owner] : controllers) {
      client::Informer* informer = kind == "ReplicaSet"    ? replicasets_
                                   : kind == "Deployment"  ? deployments_
                                   : kind == "StatefulSet" ? statefulsets_
                                                           : replication_controllers_;
      auto controller = informer->Get(ns, owner);
      expected += controller ? api::GetInt(*controller, {"spec", "replicas"}, 1) : 1;
    }
  }
  int64_t desired = 0;
  if (min_available) {
    desired = ScaledIntOrPercent(min_available, expected, true, 0);
  } else if (max_unavailable) {
    desired =
        std::max<int64_t>(expected - ScaledIntOrPercent(max_unavailable, expected, true, 0), 0);
  }

  // Evictions granted lately whose pods are still there count as already gone.
  const auto now = std::chrono::system_clock::now();
  json::object disrupted;
  bool pending = false;
  std::map<std::string, const json::value*> by_name;
  for (const auto& pod : pods)
    by_name[std::string(api::GetString(pod, {"metadata", "name"}))] = &pod;
  if (const auto* d = api::Find(pdb, {"status", "disruptedPods"}); d && d->is_object()) {
    for (const auto& [pod_name, at] : d->get_object()) {
      auto it = by_name.find(std::string(pod_name));
      if (it == by_name.end() ||
          !api::GetString(*it->second, {"metadata", "deletionTimestamp"}).empty())
        continue;  // Gone, or going.
      auto when = ParseTime(at.is_string() ? std::string_view(at.get_string()) : "");
      if (!when || *when + kDisruptedTimeout < now)
        continue;  // Expired: the eviction did not happen.
      disrupted[pod_name] = at;
      pending = true;
    }
  }
  int64_t healthy = 0;
  for (const auto& pod : pods) {
    if (!api::GetString(pod, {"metadata", "deletionTimestamp"}).empty()) continue;
    if (disrupted.contains(api::GetString(pod, {"metadata", "name"}))) continue;
    if (IsReadyPod(pod)) ++healthy;
  }
  const int64_t allowed = sync_failed.empty() ? std::max<int64_t>(healthy - desired, 0) : 0;

  json::value next = pdb;
  auto& status = api::Child(next.as_object(), "status");
  status["observedGeneration"] = api::GetInt(pdb, {"metadata", "generation"}, 1);
  status["expectedPods"] = expected;
  status["desiredHealthy"] = desired;
  status["currentHealthy"] = healthy;
  status["disruptionsAllowed"] = allowed;
  if (disrupted.empty()) {
    status.erase("disruptedPods");
  } else {
    status["disruptedPods"] = disrupted;
  }
  const std::string reason = !sync_failed.empty() ? "SyncFailed"
                             : allowed > 0        ? "SufficientPods"
                                                  : "InsufficientPods";
  json::array conditions;
  const json::value* old_condition = nullptr;
  if (const auto* cs = api::Find(pdb, {"status", "conditions"}); cs && cs->is_array()) {
    for (const auto& c : cs->get_array()) {
      if (api::GetString(c, {"type"}) == "DisruptionAllowed") old_condition = &c;
    }
  }
  const std::string value = allowed > 0 ? "True" : "False";
  if (old_condition && api::GetString(*old_condition, {"status"}) == value &&
      api::GetString(*old_condition, {"reason"}) == reason) {
    conditions.push_back(*old_condition);
  } else {
    conditions.push_back(json::object{{"type", "DisruptionAllowed"},
                                      {"status", value},
                                      {"reason", reason},
                                      {"message", sync_failed},
                                      {"observedGeneration", status["observedGeneration"]},
                                      {"lastTransitionTime", api::NowRfc3339()}});
  }
  status["conditions"] = std::move(conditions);
  if (pending) EnqueueAfter(key, std::chrono::seconds(30));
  if (next == pdb) return Status::Ok();
  auto res = client()->Update(Budgets(), ns, next, "status");
  if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
  return Status::Ok();
}

}  // namespace kiso::controller
