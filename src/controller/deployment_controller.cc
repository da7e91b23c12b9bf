#include "controller/deployment_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <map>
#include <optional>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Deployments() { return *api::FindResource("apps", "v1", "deployments"); }
const api::ResourceType& ReplicaSets() { return *api::FindResource("apps", "v1", "replicasets"); }
constexpr std::string_view kRevision = "deployment.kubernetes.io/revision";
constexpr std::string_view kHashLabel = "pod-template-hash";

int64_t Revision(const json::value& rs) {
  return ParseWholeNumber(api::GetString(rs, {"metadata", "annotations", kRevision})).value_or(0);
}

// Drops nulls, empty objects and empty lists: upstream compares templates with
// semantic equality, where an absent field, null and an empty map are the same
// (kubectl rollout undo writes "creationTimestamp": null back, for one).
void Normalize(json::value& v) {
  if (auto* o = v.if_object()) {
    for (auto it = o->begin(); it != o->end();) {
      Normalize(it->value());
      const json::value& x = it->value();
      bool empty = x.is_null() || (x.is_object() && x.get_object().empty()) ||
                   (x.is_array() && x.get_array().empty());
      it = empty ? o->erase(it) : std::next(it);
    }
  } else if (auto* a = v.if_array()) {
    for (auto& x : *a) Normalize(x);
  }
}

// The template without the hash label, for comparing a ReplicaSet's with the Deployment's.
json::value Comparable(json::value tmpl) {
  Normalize(tmpl);
  if (auto* labels = tmpl.is_object() ? tmpl.as_object().if_contains("metadata") : nullptr) {
    if (auto* l = labels->is_object() ? labels->as_object().if_contains("labels") : nullptr) {
      if (l->is_object()) l->as_object().erase(kHashLabel);
    }
  }
  return tmpl;
}

json::object Condition(std::string_view type, std::string_view status, std::string_view reason,
                       std::string message, const json::value* previous) {
  std::string now = api::NowRfc3339();
  std::string transition = now;
  if (previous && api::GetString(*previous, {"status"}) == status) {
    transition = api::GetString(*previous, {"lastTransitionTime"});
  }
  return json::object{{"type", type},          {"status", status},
                      {"lastUpdateTime", now}, {"lastTransitionTime", transition},
                      {"reason", reason},      {"message", std::move(message)}};
}

const json::value* FindCondition(const json::value& obj, std::string_view type) {
  const auto* conditions = api::Find(obj, {"status", "conditions"});
  if (!conditions || !conditions->is_array()) return nullptr;
  for (const auto& c : conditions->get_array()) {
    if (api::GetString(c, {"type"}) == type) return &c;
  }
  return nullptr;
}

}  // namespace

std::string DeploymentController::TemplateHash(const json::value& pod_template) {
  std::string text = json::serialize(Comparable(pod_template));
  uint32_t h = 2166136261u;
  for (unsigned char c : text) {
    h ^= c;
    h *= 16777619u;
  }
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string digits = std::to_string(h);
  std::string out;
  for (char c : digits) out += kAlphabet[static_cast<unsigned char>(c) % kAlphabet.size()];
  return out;
}

DeploymentController::DeploymentController(client::Client* client, client::SharedInformers* shared)
    : Controller(client, "deployment-controller", 4, shared) {
  deployments_ =
      Watch(Deployments(), [this](const json::value*, const json::value& d, bool deleted) {
        if (!deleted) Enqueue(KeyOf(d));
      });
  sets_ = Watch(ReplicaSets(), [this](const json::value*, const json::value& rs, bool) {
    for (const auto& key : OwnerKeys(rs, "Deployment")) Enqueue(key);
  });
}

Status DeploymentController::Reconcile(const std::string& key) {
  const auto [ns_part, name_part] = SplitKey(key);
  const std::string& ns = ns_part;
  const std::string& name = name_part;
  auto found = deployments_->Get(ns, name);
  if (!found || !api::GetString(*found, {"metadata", "deletionTimestamp"}).empty())
    return Status::Ok();
  const json::value& d = *found;
  std::string uid(api::GetString(d, {"metadata", "uid"}));
  int64_t replicas = api::GetInt(d, {"spec", "replicas"}, 1);
  const int64_t min_ready =
      api::GetInt(d, {"spec", "minReadySeconds"});  // Its ReplicaSets count with it.
  const json::value* tmpl = api::Find(d, {"spec", "template"});
  if (!tmpl) return Status::Ok();
  std::string hash = TemplateHash(*tmpl);
  json::value want_tmpl = Comparable(*tmpl);

  std::vector<json::value> owned;
  for (auto& rs : sets_->List()) {
    if (api::GetString(rs, {"metadata", "namespace"}) == ns &&
        ControllerUid(rs, "Deployment") == uid)
      owned.push_back(std::move(rs));
  }
  json::value* new_rs = nullptr;
  int64_t max_revision = 0;
  for (auto& rs : owned) {
    max_revision = std::max(max_revision, Revision(rs));
    const auto* t = api::Find(rs, {"spec", "template"});
    if (t && Comparable(*t) == want_tmpl) new_rs = &rs;
  }
  const json::value* paused_v = api::Find(d, {"spec", "paused"});
  bool paused = paused_v && *paused_v == true;
  if (!new_rs && !paused) {
    // A new template: a new ReplicaSet at the next revision.
    json::value rs_tmpl = *tmpl;
    if (!rs_tmpl.is_object()) rs_tmpl = json::object();
    api::Child(api::Child(rs_tmpl.as_object(), "metadata"), "labels")[kHashLabel] = hash;
    const json::value* selector_v = api::Find(d, {"spec", "selector"});
    json::value selector =
        selector_v && selector_v->is_object() ? *selector_v : json::value(json::object());
    api::Child(selector.as_object(), "matchLabels")[kHashLabel] = hash;
    json::object labels;
    if (const auto* l = api::Find(*tmpl, {"metadata", "labels"}); l && l->is_object())
      labels = l->get_object();
    labels[kHashLabel] = hash;
    std::string strategy(api::GetString(d, {"spec", "strategy", "type"}));
    bool recreate = strategy == "Recreate";
    bool first = owned.empty();
    json::value rs = json::object{
        {"apiVersion", "apps/v1"},
        {"kind", "ReplicaSet"},
        {"metadata",
         json::object{
             {"name", name + "-" + hash},
             {"namespace", ns},
             {"labels", labels},
             {"annotations", json::object{{kRevision, std::to_string(max_revision + 1)},
                                          {"deployment.kubernetes.io/desired-replicas",
                                           std::to_string(replicas)}}},
             {"ownerReferences", json::array{json::object{{"apiVersion", "apps/v1"},
                                                          {"kind", "Deployment"},
                                                          {"name", name},
                                                          {"uid", uid},
                                                          {"controller", true},
                                                          {"blockOwnerDeletion", true}}}}}},
        {"spec", json::object{{"replicas", first && !recreate ? replicas : 0},
                              {"minReadySeconds", min_ready},
                              {"selector", selector},
                              {"template", rs_tmpl}}}};
    auto created = client()->Create(ReplicaSets(), ns, rs);
    if (!created.ok() && created.status().code() != Code::kAlreadyExists) return created.status();
    return Status::Ok();  // The ReplicaSet's event requeues us with it in the cache.
  }
  if (new_rs && Revision(*new_rs) < max_revision) {
    // Rolled back to an old template (rollout undo): it becomes the newest revision.
    json::value patch = json::object{
        {"metadata", json::object{{"annotations",
                                   json::object{{kRevision, std::to_string(max_revision + 1)}}}}}};
    auto res = client()->Patch(ReplicaSets(), ns,
                               std::string(api::GetString(*new_rs, {"metadata", "name"})),
                               client::PatchType::kMerge, patch);
    return res.ok() ? Status::Ok() : res.status();
  }

  if (new_rs) {
    // The Deployment carries its current revision too (kubectl rollout undo replaces
    // metadata.annotations and expects them to exist).
    std::string revision = std::to_string(Revision(*new_rs));
    if (api::GetString(d, {"metadata", "annotations", kRevision}) != revision) {
      json::value patch = json::object{
          {"metadata", json::object{{"annotations", json::object{{kRevision, revision}}}}}};
      auto res = client()->Patch(Deployments(), ns, name, client::PatchType::kMerge, patch);
      if (!res.ok()) return res.status();
    }
  }

  std::vector<json::value*> old_sets;
  for (auto& rs : owned) {
    if (&rs != new_rs) old_sets.push_back(&rs);
  }
  std::sort(old_sets.begin(), old_sets.end(),
            [](const json::value* a, const json::value* b) { return Revision(*a) < Revision(*b); });
  auto spec_replicas = [](const json::value& rs) { return api::GetInt(rs, {"spec", "replicas"}); };
  auto scale = [&](const json::value& rs, int64_t to) -> Status {
    if (spec_replicas(rs) == to && api::GetInt(rs, {"spec", "minReadySeconds"}) == min_ready)
      return Status::Ok();
    json::value patch = json::object{
        {"metadata",
         json::object{{"annotations", json::object{{"deployment.kubernetes.io/desired-replicas",
                                                    std::to_string(replicas)}}}}},
        {"spec", json::object{{"replicas", to}, {"minReadySeconds", min_ready}}}};
    auto res =
        client()->Patch(ReplicaSets(), ns, std::string(api::GetString(rs, {"metadata", "name"})),
                        client::PatchType::kMerge, patch);
    return res.ok() ? Status::Ok() : res.status();
  };

  if (!paused && new_rs) {
    std::string strategy(api::GetString(d, {"spec", "strategy", "type"}));
    if (strategy == "Recreate") {
      bool old_running = false;
      for (auto* rs : old_sets) {
        KISO_RETURN_IF_ERROR(scale(*rs, 0));
        old_running |= api::GetInt(*rs, {"status", "replicas"}) > 0 || spec_replicas(*rs) > 0;
      }
      if (!old_running) KISO_RETURN_IF_ERROR(scale(*new_rs, replicas));
    } else {
      const auto* ru = api::Find(d, {"spec", "strategy", "rollingUpdate"});
      int64_t surge =
          ScaledIntOrPercent(ru ? api::Find(*ru, {"maxSurge"}) : nullptr, replicas, true, 1);
      int64_t unavailable =
          ScaledIntOrPercent(ru ? api::Find(*ru, {"maxUnavailable"}) : nullptr, replicas, false, 0);
      if (surge == 0 && unavailable == 0) unavailable = 1;
      int64_t total_spec = spec_replicas(*new_rs);
      for (auto* rs : old_sets) total_spec += spec_replicas(*rs);
      // Scale up the new ReplicaSet within replicas + maxSurge.
      int64_t new_target = spec_replicas(*new_rs);
      if (new_target < replicas) {
        int64_t room = replicas + surge - total_spec;
        if (room > 0) new_target = std::min(replicas, new_target + room);
      } else if (new_target > replicas) {
        new_target = replicas;
      }
      KISO_RETURN_IF_ERROR(scale(*new_rs, new_target));
      // Scale old ones down while at least replicas − maxUnavailable stay available
      // (upstream reconcileOldReplicaSets). The bound counts specs, not statuses: a
      // status not yet updated after the last scale-down must not allow another.
      int64_t min_available = replicas - unavailable;
      int64_t all_spec = new_target;
      for (auto* rs : old_sets) all_spec += spec_replicas(*rs);
      int64_t new_unavailable = new_target - api::GetInt(*new_rs, {"status", "availableReplicas"});
      int64_t max_scaled_down = all_spec - min_available - new_unavailable;
      if (max_scaled_down > 0) {
        // First old pods that are not available: removing them costs no availability.
        std::map<const json::value*, int64_t> target;
        int64_t cleaned = 0;
        for (auto* rs : old_sets) {
          int64_t have = spec_replicas(*rs);
          int64_t unhealthy =
              std::max<int64_t>(0, have - api::GetInt(*rs, {"status", "availableReplicas"}));
          int64_t cut = std::min(unhealthy, max_scaled_down - cleaned);
          target[rs] = have - cut;
          cleaned += cut;
        }
        // Then available ones, down to the minimum available.
        int64_t available = api::GetInt(*new_rs, {"status", "availableReplicas"});
        for (auto* rs : old_sets) {
          available += std::min(target[rs], api::GetInt(*rs, {"status", "availableReplicas"}));
        }
        int64_t budget = std::min(available - min_available, max_scaled_down - cleaned);
        for (auto* rs : old_sets) {
          int64_t cut = std::max<int64_t>(0, std::min(target[rs], budget));
          target[rs] -= cut;
          budget -= cut;
          KISO_RETURN_IF_ERROR(scale(*rs, target[rs]));
        }
      }
    }
  } else if (paused && new_rs && spec_replicas(*new_rs) != replicas && old_sets.empty()) {
    KISO_RETURN_IF_ERROR(scale(*new_rs, replicas));  // Scaling still applies while paused.
  }

  // Old ReplicaSets beyond revisionHistoryLimit, scaled to zero, are removed.
  int64_t history = api::GetInt(d, {"spec", "revisionHistoryLimit"}, 10);
  std::vector<json::value*> idle;
  for (auto* rs : old_sets) {
    if (spec_replicas(*rs) == 0 && api::GetInt(*rs, {"status", "replicas"}) == 0)
      idle.push_back(rs);
  }
  for (size_t i = 0; i + static_cast<size_t>(history) < idle.size(); ++i) {
    client::DeleteOptions options;
    options.propagation_policy = "Background";
    (void)client()->Delete(ReplicaSets(), ns,
                           std::string(api::GetString(*idle[i], {"metadata", "name"})), options);
  }

  // Status.
  int64_t total = 0, ready = 0, available = 0, updated = 0;
  for (const auto& rs : owned) {
    total += api::GetInt(rs, {"status", "replicas"});
    ready += api::GetInt(rs, {"status", "readyReplicas"});
    available += api::GetInt(rs, {"status", "availableReplicas"});
  }
  if (new_rs) updated = api::GetInt(*new_rs, {"status", "replicas"});
  const auto* ru = api::Find(d, {"spec", "strategy", "rollingUpdate"});
  int64_t max_unavailable =
      ScaledIntOrPercent(ru ? api::Find(*ru, {"maxUnavailable"}) : nullptr, replicas, false, 0);
  if (api::GetString(d, {"spec", "strategy", "type"}) == "Recreate") max_unavailable = replicas;
  bool is_available = available >= replicas - max_unavailable;
  bool complete = new_rs && updated == replicas && total == replicas && available == replicas &&
                  api::GetInt(*new_rs, {"status", "observedGeneration"}) >=
                      api::GetInt(*new_rs, {"metadata", "generation"});
  std::string rs_name = new_rs ? std::string(api::GetString(*new_rs, {"metadata", "name"})) : "";
  json::array conditions;
  conditions.push_back(
      Condition("Available", is_available ? "True" : "False",
                is_available ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                is_available ? "Deployment has minimum availability."
                             : "Deployment does not have minimum availability.",
                FindCondition(d, "Available")));
  if (paused) {
    conditions.push_back(Condition("Progressing", "Unknown", "DeploymentPaused",
                                   "Deployment is paused", FindCondition(d, "Progressing")));
  } else {
    conditions.push_back(
        Condition("Progressing", "True", complete ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
                  complete ? fmt::format("ReplicaSet \"{}\" has successfully progressed.", rs_name)
                           : fmt::format("ReplicaSet \"{}\" is progressing.", rs_name),
                  FindCondition(d, "Progressing")));
  }
  json::object status{{"observedGeneration", api::GetInt(d, {"metadata", "generation"})},
                      {"replicas", total},
                      {"updatedReplicas", updated},
                      {"readyReplicas", ready},
                      {"availableReplicas", available},
                      {"unavailableReplicas", std::max<int64_t>(0, replicas - available)}};
  // Write only when something but timestamps changed.
  const json::value* current = api::Find(d, {"status"});
  bool same = current && current->is_object();
  for (const auto& [k, v] : status) {
    const auto* have = same ? current->get_object().if_contains(k) : nullptr;
    same = same && ((have && *have == v) || (!have && v == 0));
  }
  for (const auto& c : conditions) {
    const auto* have = FindCondition(d, api::GetString(c, {"type"}));
    same = same && have && api::GetString(*have, {"status"}) == api::GetString(c, {"status"}) &&
           api::GetString(*have, {"reason"}) == api::GetString(c, {"reason"}) &&
           api::GetString(*have, {"message"}) == api::GetString(c, {"message"});
  }
  if (same) return Status::Ok();
  json::value next = d;
  status["conditions"] = std::move(conditions);
  next.as_object()["status"] = std::move(status);
  auto res = client()->Update(Deployments(), ns, next, "status");
  if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
  return Status::Ok();
}

}  // namespace kiso::controller
