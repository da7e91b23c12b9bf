#include "controller/statefulset_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <map>
#include <set>

#include "api/object.h"
#include "common/clock.h"
#include "controller/deployment_controller.h"
#include "controller/revision_history.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Sets() { return *api::FindResource("apps", "v1", "statefulsets"); }
const api::ResourceType& Claims() { return *api::FindResource("", "v1", "persistentvolumeclaims"); }
const api::ResourceType& Revisions() {
  return *api::FindResource("apps", "v1", "controllerrevisions");
}
constexpr std::string_view kRevisionLabel = "controller-revision-hash";
constexpr std::string_view kPodNameLabel = "statefulset.kubernetes.io/pod-name";
constexpr std::string_view kPodIndexLabel = "apps.kubernetes.io/pod-index";

bool Terminating(const json::value& pod) {
  return !api::GetString(pod, {"metadata", "deletionTimestamp"}).empty();
}

// Running, ready and not on its way out: what lets OrderedReady go on.
bool Healthy(const json::value& pod) {
  return !Terminating(pod) && api::GetString(pod, {"status", "phase"}) == "Running" &&
         IsReadyPod(pod);
}

// The ordinal in "<set>-<ordinal>", or nullopt for a name of another shape.
std::optional<int64_t> OrdinalOf(std::string_view pod_name, std::string_view set_name) {
  if (pod_name.size() <= set_name.size() + 1 || !pod_name.starts_with(set_name) ||
      pod_name[set_name.size()] != '-')
    return std::nullopt;
  auto n = ParseWholeNumber(pod_name.substr(set_name.size() + 1));
  if (!n || *n < 0 || std::to_string(*n) != pod_name.substr(set_name.size() + 1))
    return std::nullopt;
  return n;
}

}  // namespace

StatefulSetController::StatefulSetController(client::Client* client,
                                             client::SharedInformers* shared)
    : Controller(client, "statefulset-controller", 2, shared) {
  sets_ = Watch(Sets(), [this](const json::value*, const json::value& set, bool deleted) {
    if (deleted) {
      expectations_.Forget(KeyOf(set));
    } else {
      Enqueue(KeyOf(set));
    }
  });
  pods_ = Watch(Pods(), [this](const json::value* old, const json::value& pod, bool deleted) {
    for (const auto& key : OwnerKeys(pod, "StatefulSet")) {
      if (deleted) {
        expectations_.Deleted(key);
      } else if (!old) {
        expectations_.Created(key);
      }
      Enqueue(key);
    }
  });
  revisions_ = Watch(Revisions(), [this](const json::value*, const json::value& r, bool) {
    for (const auto& key : OwnerKeys(r, "StatefulSet")) Enqueue(key);
  });
  claims_ = Watch(Claims(), [](const json::value*, const json::value&, bool) {});
}

Status StatefulSetController::Reconcile(const std::string& key) {
  const auto split = SplitKey(key);
  const std::string ns(split.first), name(split.second);
  auto found = sets_->Get(ns, name);
  if (!found || Terminating(*found)) return Status::Ok();
  if (!expectations_.Satisfied(key)) return Status::Ok();  // Our own writes' events requeue us.
  const json::value& set = *found;
  const std::string uid(api::GetString(set, {"metadata", "uid"}));
  const int64_t generation = api::GetInt(set, {"metadata", "generation"}, 1);
  const auto* tmpl = api::Find(set, {"spec", "template"});
  if (!tmpl) return Status::Ok();

  // The revisions: the current template's, and the one the pods were at.
  std::vector<Revision> history = OwnedRevisions(revisions_->List(), set);
  KISO_ASSIGN_OR_RETURN(Revision update,
                        EnsureRevision(client(), set, "StatefulSet",
                                       DeploymentController::TemplateHash(*tmpl), history));
  Revision current = update;
  const std::string_view current_name = api::GetString(set, {"status", "currentRevision"});
  for (const auto& r : history) {
    if (r.name == current_name && RevisionTemplate(r) != nullptr) current = r;
  }

  const int64_t replicas = api::GetInt(set, {"spec", "replicas"}, 1);
  const int64_t start = api::GetInt(set, {"spec", "ordinals", "start"}, 0);
  const bool parallel = api::GetString(set, {"spec", "podManagementPolicy"}) == "Parallel";
  const bool rolling = api::GetString(set, {"spec", "updateStrategy", "type"}) != "OnDelete";
  const int64_t partition =
      rolling ? api::GetInt(set, {"spec", "updateStrategy", "rollingUpdate", "partition"}, 0) : 0;
  const std::string service(api::GetString(set, {"spec", "serviceName"}));

  // Its pods by ordinal; those outside [start, start + replicas) are condemned.
  std::map<int64_t, json::value> pods;
  std::vector<json::value> condemned;
  for (const auto& shared : pods_->Items()) {  // Shared: only the set's own pods are copied.
    const json::value& pod = *shared;
    if (api::GetString(pod, {"metadata", "namespace"}) != ns ||
        ControllerUid(pod, "StatefulSet") != uid)
      continue;
    auto ordinal = OrdinalOf(api::GetString(pod, {"metadata", "name"}), name);
    if (!ordinal) continue;
    if (*ordinal >= start && *ordinal < start + replicas) {
      pods[*ordinal] = pod;
    } else {
      condemned.push_back(pod);
    }
  }
  auto revision_of = [](const json::value& pod) {
    return std::string(api::GetString(pod, {"metadata", "labels", kRevisionLabel}));
  };

  const auto& templates = api::GetArray(set, {"spec", "volumeClaimTemplates"});
  const bool delete_with_set = api::GetString(set, {"spec", "persistentVolumeClaimRetentionPolicy",
                                                    "whenDeleted"}) == "Delete";
  const bool delete_when_scaled =
      api::GetString(set, {"spec", "persistentVolumeClaimRetentionPolicy", "whenScaled"}) ==
      "Delete";
  // The owners a pod's claim should have under the retention policy: the set,
  // and (for an ordinal scaled away) the pod itself.
  auto claim_owners = [&](const json::value* pod) {
    json::array owners;
    if (delete_with_set) {
      owners.push_back(json::object{
          {"apiVersion", "apps/v1"}, {"kind", "StatefulSet"}, {"name", name}, {"uid", uid}});
    }
    if (pod && delete_when_scaled) {
      owners.push_back(json::object{{"apiVersion", "v1"},
                                    {"kind", "Pod"},
                                    {"name", api::GetString(*pod, {"metadata", "name"})},
                                    {"uid", api::GetString(*pod, {"metadata", "uid"})}});
    }
    return owners;
  };
  // Makes the claims of pod <set>-<ordinal> that do not exist; false while one
  // is still being deleted (the pod waits for it to go).
  auto ensure_claims = [&](const std::string& pod_name, Status* failed) {
    bool ready = true;
    for (const auto& t : templates) {
      std::string claim_name =
          fmt::format("{}-{}", api::GetString(t, {"metadata", "name"}), pod_name);
      if (auto have = claims_->Get(ns, claim_name)) {
        if (Terminating(*have)) ready = false;
        continue;
      }
      json::value claim = json::object{{"apiVersion", "v1"}, {"kind", "PersistentVolumeClaim"}};
      auto& meta = api::Child(claim.as_object(), "metadata");
      meta["name"] = claim_name;
      meta["namespace"] = ns;
      auto& labels = api::Child(meta, "labels");
      if (const auto* l = api::Find(t, {"metadata", "labels"}); l && l->is_object())
        labels = l->get_object();
      if (const auto* l = api::Find(set, {"spec", "selector", "matchLabels"}); l && l->is_object())
        for (const auto& [k, v] : l->get_object()) labels[k] = v;
      if (const auto* a = api::Find(t, {"metadata", "annotations"}); a && a->is_object())
        meta["annotations"] = *a;
      if (auto owners = claim_owners(nullptr); !owners.empty()) meta["ownerReferences"] = owners;
      if (const auto* spec = api::Find(t, {"spec"})) claim.as_object()["spec"] = *spec;
      auto made = client()->Create(Claims(), ns, claim);
      if (made.ok()) {
        RecordEvent(set, "Normal", "SuccessfulCreate",
                    fmt::format("create Claim {} Pod {} in StatefulSet {} success", claim_name,
                                pod_name, name));
      } else if (made.status().code() != Code::kAlreadyExists) {
        RecordEvent(set, "Warning", "FailedCreate",
                    fmt::format("create Claim {} for Pod {} in StatefulSet {} failed error: {}",
                                claim_name, pod_name, name, made.status().message()));
        *failed = made.status();
        ready = false;
      }
    }
    return ready;
  };

  // The pod of an ordinal: below the partition at the revision the pods were at.
  auto make_pod = [&](int64_t ordinal) {
    const Revision& r = rolling && ordinal < start + partition ? current : update;
    const json::value owner_template = json::object{
        {"spec", json::object{{"template", r.name == update.name ? *tmpl : *RevisionTemplate(r)}}}};
    json::value pod = json::object{{"apiVersion", "v1"}, {"kind", "Pod"}};
    auto& meta = api::Child(pod.as_object(), "metadata");
    meta = PodMetadataFromTemplate(owner_template);
    const std::string pod_name = fmt::format("{}-{}", name, ordinal);
    meta["name"] = pod_name;
    meta["namespace"] = ns;
    auto& labels = api::Child(meta, "labels");
    labels[kPodNameLabel] = pod_name;
    labels[kPodIndexLabel] = std::to_string(ordinal);
    labels[kRevisionLabel] = r.name;
    meta["ownerReferences"] = json::array{json::object{{"apiVersion", "apps/v1"},
                                                       {"kind", "StatefulSet"},
                                                       {"name", name},
                                                       {"uid", uid},
                                                       {"controller", true},
                                                       {"blockOwnerDeletion", true}}};
    const auto* spec = api::Find(owner_template, {"spec", "template", "spec"});
    json::object pod_spec = spec && spec->is_object() ? spec->get_object() : json::object();
    pod_spec["hostname"] = pod_name;
    if (!service.empty()) pod_spec["subdomain"] = service;
    // Its claims, as volumes named for their templates.
    json::value* volumes = pod_spec.if_contains("volumes");
    if (!volumes || !volumes->is_array()) volumes = &(pod_spec["volumes"] = json::array());
    auto& list = volumes->as_array();
    for (const auto& t : templates) {
      std::string_view volume = api::GetString(t, {"metadata", "name"});
      list.erase(std::remove_if(
                     list.begin(), list.end(),
                     [&](const json::value& v) { return api::GetString(v, {"name"}) == volume; }),
                 list.end());
      list.push_back(
          json::object{{"name", volume},
                       {"persistentVolumeClaim",
                        json::object{{"claimName", fmt::format("{}-{}", volume, pod_name)}}}});
    }
    if (list.empty()) pod_spec.erase("volumes");
    pod.as_object()["spec"] = std::move(pod_spec);
    return pod;
  };

  std::vector<json::value> creates;
  std::vector<std::string> deletes;
  // In ordinal order: missing pods made, failed ones replaced; OrderedReady
  // goes no further than the first pod that is not healthy.
  bool blocked = false;
  for (int64_t ordinal = start; ordinal < start + replicas; ++ordinal) {
    auto it = pods.find(ordinal);
    if (it == pods.end()) {
      if (!blocked) creates.push_back(make_pod(ordinal));
      blocked = blocked || !parallel;
      continue;
    }
    const json::value& pod = it->second;
    if (api::GetString(pod, {"status", "phase"}) == "Failed" && !Terminating(pod)) {
      if (!blocked) deletes.emplace_back(api::GetString(pod, {"metadata", "name"}));
      blocked = blocked || !parallel;
      continue;
    }
    if (!Healthy(pod)) blocked = blocked || !parallel;
  }
  // Scale down: the highest ordinal first, one at a time while the rest are
  // healthy (OrderedReady); all at once (Parallel).
  std::sort(condemned.begin(), condemned.end(), [&](const json::value& a, const json::value& b) {
    return *OrdinalOf(api::GetString(a, {"metadata", "name"}), name) >
           *OrdinalOf(api::GetString(b, {"metadata", "name"}), name);
  });
  const bool condemned_terminating = std::any_of(condemned.begin(), condemned.end(), Terminating);
  for (const auto& pod : condemned) {
    if (Terminating(pod)) continue;
    if (!parallel && (blocked || condemned_terminating || !creates.empty())) break;
    deletes.emplace_back(api::GetString(pod, {"metadata", "name"}));
    if (!parallel) break;
  }
  // Rolling update: from the highest ordinal down to the partition, one pod
  // at a time, once everything else is healthy.
  if (rolling && creates.empty() && deletes.empty() && condemned.empty() && !blocked) {
    for (int64_t ordinal = start + replicas - 1; ordinal >= start + partition; --ordinal) {
      auto it = pods.find(ordinal);
      if (it == pods.end() || revision_of(it->second) == update.name) continue;
      if (!Terminating(it->second))
        deletes.emplace_back(api::GetString(it->second, {"metadata", "name"}));
      break;
    }
  }

  Status result = Status::Ok();
  // Claims first: a pod is created only once its claims exist.
  bool claims_pending = false;
  creates.erase(std::remove_if(creates.begin(), creates.end(),
                               [&](const json::value& pod) {
                                 bool ready = ensure_claims(
                                     std::string(api::GetString(pod, {"metadata", "name"})),
                                     &result);
                                 claims_pending = claims_pending || !ready;
                                 return !ready;
                               }),
                creates.end());
  if (claims_pending) EnqueueAfter(key, std::chrono::seconds(1));
  // The retention policy on the claims of the pods there are: owned by the set
  // (whenDeleted), by a condemned pod (whenScaled).
  auto retain = [&](const json::value& pod, bool condemned_pod) {
    for (const auto& t : templates) {
      std::string claim_name = fmt::format("{}-{}", api::GetString(t, {"metadata", "name"}),
                                           api::GetString(pod, {"metadata", "name"}));
      auto claim = claims_->Get(ns, claim_name);
      if (!claim || Terminating(*claim)) continue;
      json::array want = claim_owners(condemned_pod ? &pod : nullptr);
      const auto* have = api::Find(*claim, {"metadata", "ownerReferences"});
      // Only the references this policy manages (the set's, the pod's) are compared.
      json::array kept;
      json::array managed;
      for (const auto& r : have && have->is_array() ? have->get_array() : json::array()) {
        bool ours =
            (api::GetString(r, {"kind"}) == "StatefulSet" && api::GetString(r, {"uid"}) == uid) ||
            (api::GetString(r, {"kind"}) == "Pod" &&
             api::GetString(r, {"uid"}) == api::GetString(pod, {"metadata", "uid"}));
        (ours ? managed : kept).push_back(r);
      }
      auto same = [](const json::array& a, const json::array& b) {
        if (a.size() != b.size()) return false;
        for (const auto& x : a) {
          if (std::none_of(b.begin(), b.end(), [&](const json::value& y) {
                return api::GetString(x, {"uid"}) == api::GetString(y, {"uid"});
              }))
            return false;
        }
        return true;
      };
      if (same(managed, want)) continue;
      for (auto& w : want) kept.push_back(std::move(w));
      Status s = UpdateFresh(Claims(), *claim, [&](json::value& c) {
        auto& meta = c.as_object()["metadata"].as_object();
        if (kept.empty()) {
          meta.erase("ownerReferences");
        } else {
          meta["ownerReferences"] = kept;
        }
      });
      if (!s.ok() && result.ok()) result = s;
    }
  };
  if (!templates.empty()) {
    for (const auto& [ordinal, pod] : pods) retain(pod, false);
    for (const auto& pod : condemned) retain(pod, true);
  }
  expectations_.Expect(key, static_cast<int>(creates.size()), static_cast<int>(deletes.size()));
  for (const auto& pod_name : deletes) {
    Status s = client()->Delete(Pods(), ns, pod_name);
    if (!s.ok()) {
      expectations_.Deleted(key);  // Will never be seen.
      if (s.code() != Code::kNotFound) result = s;
    } else {
      RecordEvent(set, "Normal", "SuccessfulDelete",
                  fmt::format("delete Pod {} in StatefulSet {} successful", pod_name, name));
    }
  }
  for (const auto& pod : creates) {
    auto made = client()->Create(Pods(), ns, pod);
    const std::string pod_name(api::GetString(pod, {"metadata", "name"}));
    if (!made.ok()) {
      expectations_.Created(key);  // Will never be seen.
      if (made.status().code() != Code::kAlreadyExists) {
        RecordEvent(set, "Warning", "FailedCreate",
                    fmt::format("create Pod {} in StatefulSet {} failed error: {}", pod_name, name,
                                made.status().message()));
        result = made.status();
      }
    } else {
      RecordEvent(set, "Normal", "SuccessfulCreate",
                  fmt::format("create Pod {} in StatefulSet {} successful", pod_name, name));
    }
  }

  // Status, from the pods as they were at the start of this pass.
  const auto now = std::chrono::system_clock::now();
  const int64_t min_ready = api::GetInt(set, {"spec", "minReadySeconds"}, 0);
  int64_t count = 0, ready = 0, available = 0, at_current = 0, at_update = 0;
  bool waiting_for_available = false;
  std::set<std::string> keep{current.name, update.name};
  auto tally = [&](const json::value& pod) {
    if (Terminating(pod)) return;
    ++count;
    if (Healthy(pod)) ++ready;
    if (Healthy(pod) && IsAvailablePod(pod, min_ready, now)) {
      ++available;
    } else if (Healthy(pod)) {
      waiting_for_available = true;
    }
    const std::string r = revision_of(pod);
    keep.insert(r);
    if (r == current.name) ++at_current;
    if (r == update.name) ++at_update;
  };
  for (const auto& [ordinal, pod] : pods) tally(pod);
  for (const auto& pod : condemned) tally(pod);
  std::string current_revision = current.name;
  if (rolling && at_update == replicas && ready == replicas && count == replicas) {
    current_revision = update.name;  // The rollout is complete.
    at_current = at_update;
  }
  json::object status{{"observedGeneration", generation},
                      {"replicas", count},
                      {"readyReplicas", ready},
                      {"availableReplicas", available},
                      {"currentReplicas", at_current},
                      {"updatedReplicas", at_update},
                      {"currentRevision", current_revision},
                      {"updateRevision", update.name},
                      {"collisionCount", 0}};
  if (Status written = WriteStatusFields(Sets(), set, status); !written.ok()) return written;
  if (waiting_for_available) EnqueueAfter(key, std::chrono::seconds(1));
  if (Status s = TruncateHistory(client(), ns, history, keep,
                                 api::GetInt(set, {"spec", "revisionHistoryLimit"}, 10));
      !s.ok() && result.ok())
    result = s;
  return result;
}

}  // namespace kiso::controller
