#include "controller/replicaset_controller.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>

#include "api/object.h"
#include "api/selector.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& ReplicaSets() { return *api::FindResource("apps", "v1", "replicasets"); }
constexpr int kBurst = 500;  // Creates or deletes per reconcile, as upstream.

// Deletion preference (upstream's ActivePods ranking): unscheduled, then
// pending, then not ready, then the newest.
int Rank(const json::value& pod) {
  if (api::GetString(pod, {"spec", "nodeName"}).empty()) return 0;
  if (api::GetString(pod, {"status", "phase"}) == "Pending") return 1;
  if (!IsReadyPod(pod)) return 2;
  return 3;
}

}  // namespace

ReplicaSetController::ReplicaSetController(client::Client* client, client::SharedInformers* shared,
                                           Kind kind)
    : Controller(client,
                 kind == Kind::kReplicaSet ? "replicaset-controller" : "replication-controller",
                 kind == Kind::kReplicaSet ? 4 : 1, shared),
      type_(kind == Kind::kReplicaSet ? ReplicaSets()
                                      : *api::FindResource("", "v1", "replicationcontrollers")),
      kind_(kind == Kind::kReplicaSet ? "ReplicaSet" : "ReplicationController"),
      api_version_(kind == Kind::kReplicaSet ? "apps/v1" : "v1") {
  sets_ = Watch(type_, [this](const json::value*, const json::value& rs, bool deleted) {
    std::string key = KeyOf(rs);
    std::lock_guard lock(mu_);
    if (deleted) {
      expectations_.Forget(key);
      uid_to_key_.erase(std::string(api::GetString(rs, {"metadata", "uid"})));
      return;
    }
    uid_to_key_[std::string(api::GetString(rs, {"metadata", "uid"}))] = key;
    Enqueue(key);
  });
  pods_ = Watch(Pods(), [this](const json::value* old, const json::value& pod, bool deleted) {
    OnPod(old, pod, deleted);
  });
}

std::string ReplicaSetController::OwnerKey(const json::value& pod) {
  std::string uid = ControllerUid(pod, kind_);
  if (uid.empty()) return "";
  auto it = uid_to_key_.find(uid);
  return it == uid_to_key_.end() ? "" : it->second;
}

void ReplicaSetController::OnPod(const json::value* old, const json::value& pod, bool deleted) {
  std::string key;
  {
    std::lock_guard lock(mu_);
    key = OwnerKey(pod);
  }
  if (key.empty()) return;
  // A pod being deleted (gracefully) is no longer active: the delete is seen
  // now, not when its node is done with it (an agent that is down would hold
  // the ReplicaSet up till then).
  if (DeletionObserved(old, pod, deleted)) {
    expectations_.Deleted(key);
  } else if (!old && !deleted) {
    expectations_.Created(key);
  }
  Enqueue(key);
}

Status ReplicaSetController::Reconcile(const std::string& key) {
  auto [ns, name] = SplitKey(key);
  auto rs = sets_->Get(ns, name);
  if (!rs || !api::GetString(*rs, {"metadata", "deletionTimestamp"}).empty()) return Status::Ok();
  std::string uid(api::GetString(*rs, {"metadata", "uid"}));
  // Wait to see our own writes; their events requeue us.
  if (!expectations_.Satisfied(key)) return Status::Ok();
  std::vector<client::Informer::Object> active;  // The informer's pods, shared: never copied.
  int fully_labeled = 0, ready = 0, available = 0;
  const auto now = std::chrono::system_clock::now();
  const int64_t min_ready = api::GetInt(*rs, {"spec", "minReadySeconds"});
  std::optional<std::chrono::system_clock::duration> next_available;
  // A ReplicationController's selector is the label map itself.
  auto selector_labels = kind_ == "ReplicaSet" ? api::Find(*rs, {"spec", "selector", "matchLabels"})
                                               : api::Find(*rs, {"spec", "selector"});
  for (auto& shared : pods_->Items()) {
    const json::value& pod = *shared;
    if (api::GetString(pod, {"metadata", "namespace"}) != ns || ControllerUid(pod, kind_) != uid)
      continue;
    if (!IsActivePod(pod)) continue;
    if (IsReadyPod(pod)) ++ready;
    std::chrono::system_clock::duration wait{};
    if (IsAvailablePod(pod, min_ready, now, &wait)) {
      ++available;
    } else if (IsReadyPod(pod) && (!next_available || wait < *next_available)) {
      next_available = wait;
    }
    bool labeled = true;
    if (selector_labels && selector_labels->is_object()) {
      auto labels = api::GetLabels(pod);
      for (const auto& [k, v] : selector_labels->get_object()) {
        auto it = labels.find(std::string(k));
        labeled = labeled && it != labels.end() && v.is_string() && it->second == v.get_string();
      }
    }
    if (labeled) ++fully_labeled;
    active.push_back(std::move(shared));
  }
  const auto* want_v = api::Find(*rs, {"spec", "replicas"});
  int64_t want = want_v && want_v->is_int64() ? want_v->get_int64() : 1;
  int64_t diff = want - static_cast<int64_t>(active.size());
  Status result = Status::Ok();
  if (diff > 0) {
    int n = static_cast<int>(std::min<int64_t>(diff, kBurst));
    expectations_.Expect(key, n, 0);
    json::value pod = json::object{{"apiVersion", "v1"}, {"kind", "Pod"}};
    auto& meta = api::Child(pod.as_object(), "metadata");
    meta = PodMetadataFromTemplate(*rs);
    meta["generateName"] = name + "-";
    meta["namespace"] = ns;
    meta["ownerReferences"] = json::array{json::object{{"apiVersion", api_version_},
                                                       {"kind", kind_},
                                                       {"name", name},
                                                       {"uid", uid},
                                                       {"controller", true},
                                                       {"blockOwnerDeletion", true}}};
    if (const auto* spec = api::Find(*rs, {"spec", "template", "spec"}))
      pod.as_object()["spec"] = *spec;
    for (int i = 0; i < n; ++i) {
      auto created = client()->Create(Pods(), ns, pod);
      if (!created.ok()) {
        expectations_.Created(key);  // Will never be seen.
        result = created.status();
      }
    }
  } else if (diff < 0) {
    std::stable_sort(active.begin(), active.end(), [](const auto& a, const auto& b) {
      int ra = Rank(*a), rb = Rank(*b);
      if (ra != rb) return ra < rb;
      return api::GetString(*a, {"metadata", "creationTimestamp"}) >
             api::GetString(*b, {"metadata", "creationTimestamp"});
    });
    int n = static_cast<int>(std::min<int64_t>(-diff, kBurst));
    expectations_.Expect(key, 0, n);
    for (int i = 0; i < n; ++i) {
      Status s = client()->Delete(
          Pods(), ns,
          std::string(api::GetString(*active[static_cast<size_t>(i)], {"metadata", "name"})));
      if (!s.ok() && s.code() != Code::kNotFound) {
        expectations_.Deleted(key);  // Will never be seen.
        result = s;
      }
    }
  }
  // Status: observed counts of active pods; available ones ready for minReadySeconds.
  const auto* gen = api::Find(*rs, {"metadata", "generation"});
  json::object status{{"replicas", static_cast<int64_t>(active.size())},
                      {"fullyLabeledReplicas", fully_labeled},
                      {"readyReplicas", ready},
                      {"availableReplicas", available},
                      {"observedGeneration", gen ? *gen : json::value(0)}};
  if (Status written = WriteStatusFields(type_, *rs, status); !written.ok()) return written;
  if (next_available) {  // Counted as available then.
    EnqueueAfter(key,
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(*next_available) +
                     std::chrono::milliseconds(100));
  }
  return result;
}

}  // namespace kiso::controller
