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
  if (const auto* claims = api::Find(set, {"spec", "volumeClaimTemplates"});
      claims && claims->is_array() && !claims->get_array().empty()) {
    RecordEvent(set, "Warning", "FailedCreate",
                "volumeClaimTemplates need PersistentVolumeClaims, which kiso does not serve yet");
    return WriteStatusFields(Sets(), set, json::object{{"observedGeneration", generation}});
  }
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
  for (auto& pod : pods_->List()) {
    if (api::GetString(pod, {"metadata", "namespace"}) != ns ||
        ControllerUid(pod, "StatefulSet") != uid)
      continue;
    auto ordinal = OrdinalOf(api::GetString(pod, {"metadata", "name"}), name);
    if (!ordinal) continue;
    if (*ordinal >= start && *ordinal < start + replicas) {
      pods[*ordinal] = std::move(pod);
    } else {
      condemned.push_back(std::move(pod));
    }
  }
  auto revision_of = [](const json::value& pod) {
    return std::string(api::GetString(pod, {"metadata", "labels", kRevisionLabel}));
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
