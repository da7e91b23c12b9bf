#include "controller/daemonset_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "api/object.h"
#include "controller/deployment_controller.h"
#include "controller/revision_history.h"
#include "scheduler/framework.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }
const api::ResourceType& DaemonSets() { return *api::FindResource("apps", "v1", "daemonsets"); }
const api::ResourceType& Revisions() {
  return *api::FindResource("apps", "v1", "controllerrevisions");
}
constexpr std::string_view kHashLabel = "controller-revision-hash";
constexpr std::string_view kGenerationLabel = "pod-template-generation";
constexpr int kBurst = 500;  // Creates or deletes per reconcile.

// The node a daemon pod is for: where it is bound, or the one its
// matchFields affinity names while it waits for the scheduler.
std::string NodeOf(const json::value& pod) {
  std::string_view bound = api::GetString(pod, {"spec", "nodeName"});
  if (!bound.empty()) return std::string(bound);
  const auto* terms =
      api::Find(pod, {"spec", "affinity", "nodeAffinity",
                      "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"});
  if (!terms || !terms->is_array()) return "";
  for (const auto& t : terms->get_array()) {
    const auto* fields = api::Find(t, {"matchFields"});
    if (!fields || !fields->is_array()) continue;
    for (const auto& f : fields->get_array()) {
      const auto* values = api::Find(f, {"values"});
      if (api::GetString(f, {"key"}) == "metadata.name" &&
          api::GetString(f, {"operator"}) == "In" && values && values->is_array() &&
          values->get_array().size() == 1 && values->get_array()[0].is_string())
        return std::string(values->get_array()[0].get_string());
    }
  }
  return "";
}

// (maxSurge, maxUnavailable): defaults 0 and 1; both 0 is maxUnavailable 1, as upstream.
// Both percentages rounded up, as upstream's daemon controller does.
std::pair<int64_t, int64_t> RollingLimits(const json::value& ds, int64_t desired) {
  const auto* ru = api::Find(ds, {"spec", "updateStrategy", "rollingUpdate"});
  int64_t surge = ScaledIntOrPercent(ru ? api::Find(*ru, {"maxSurge"}) : nullptr, desired, true, 0);
  int64_t unavailable =
      ScaledIntOrPercent(ru ? api::Find(*ru, {"maxUnavailable"}) : nullptr, desired, true, 1);
  if (surge == 0 && unavailable == 0) unavailable = 1;
  return {surge, unavailable};
}

std::string_view Created(const json::value& pod) {
  return api::GetString(pod, {"metadata", "creationTimestamp"});
}

// The template as a pod with the tolerations every daemon pod has.
json::value DaemonPod(const json::value& daemonset) {
  json::value pod = json::object{{"apiVersion", "v1"}, {"kind", "Pod"}};
  pod.as_object()["metadata"] = PodMetadataFromTemplate(daemonset);
  const auto* spec = api::Find(daemonset, {"spec", "template", "spec"});
  pod.as_object()["spec"] = spec && spec->is_object() ? *spec : json::object();
  json::object& s = pod.as_object()["spec"].as_object();
  json::array tolerations;
  if (const auto* t = s.if_contains("tolerations"); t && t->is_array())
    tolerations = t->get_array();
  std::vector<std::pair<std::string_view, std::string_view>> always = {
      {"node.kubernetes.io/not-ready", "NoExecute"},
      {"node.kubernetes.io/unreachable", "NoExecute"},
      {"node.kubernetes.io/disk-pressure", "NoSchedule"},
      {"node.kubernetes.io/memory-pressure", "NoSchedule"},
      {"node.kubernetes.io/pid-pressure", "NoSchedule"},
      {"node.kubernetes.io/unschedulable", "NoSchedule"}};
  if (const auto* h = s.if_contains("hostNetwork"); h && h->is_bool() && h->get_bool())
    always.emplace_back("node.kubernetes.io/network-unavailable", "NoSchedule");
  for (const auto& wanted : always) {
    const std::string_view key = wanted.first, effect = wanted.second;
    bool have = std::any_of(tolerations.begin(), tolerations.end(), [&](const json::value& t) {
      return api::GetString(t, {"key"}) == key && api::GetString(t, {"effect"}) == effect;
    });
    if (!have) {
      tolerations.push_back(json::object{{"key", key}, {"operator", "Exists"}, {"effect", effect}});
    }
  }
  s["tolerations"] = std::move(tolerations);
  return pod;
}

struct Placement {
  bool should_run = false;    // A pod belongs there.
  bool may_continue = false;  // A pod already there may stay (untolerated NoSchedule only).
};

// Where a daemon pod (parsed once per reconcile, not per node) belongs.
Placement Place(const scheduler::PodInfo& p, const json::value& node) {
  scheduler::NodeInfo n = scheduler::ParseNode(node);
  if (!scheduler::MatchesNodeAffinity(p, n)) return {};
  return {scheduler::FirstUntoleratedTaint(p, n, true) == nullptr,
          scheduler::FirstUntoleratedTaint(p, n, false) == nullptr};
}

}  // namespace

DaemonSetController::DaemonSetController(client::Client* client, client::SharedInformers* shared)
    : Controller(client, "daemonset-controller", 2, shared) {
  sets_ = Watch(DaemonSets(), [this](const json::value*, const json::value& ds, bool deleted) {
    std::string key = KeyOf(ds);
    std::string uid(api::GetString(ds, {"metadata", "uid"}));
    std::lock_guard lock(mu_);
    if (deleted) {
      expectations_.Forget(key);
      uid_to_key_.erase(uid);
      return;
    }
    uid_to_key_[uid] = key;
    Enqueue(key);
  });
  pods_ = Watch(Pods(), [this](const json::value* old, const json::value& pod, bool deleted) {
    OnPod(old, pod, deleted);
  });
  revisions_ = Watch(Revisions(), [this](const json::value*, const json::value& r, bool) {
    for (const auto& key : OwnerKeys(r, "DaemonSet")) Enqueue(key);
  });
  // A node's arrival, departure, labels or taints may change where daemon pods belong.
  nodes_ = Watch(Nodes(), [this](const json::value* old, const json::value& node, bool deleted) {
    if (old && !deleted) {
      const auto* ol = api::Find(*old, {"metadata", "labels"});
      const auto* nl = api::Find(node, {"metadata", "labels"});
      const auto* os = api::Find(*old, {"spec"});
      const auto* ns = api::Find(node, {"spec"});
      bool same_labels = (!ol && !nl) || (ol && nl && *ol == *nl);
      bool same_spec = (!os && !ns) || (os && ns && *os == *ns);
      if (same_labels && same_spec) return;  // A heartbeat: status only.
    }
    EnqueueAll();
  });
}

void DaemonSetController::EnqueueAll() {
  std::lock_guard lock(mu_);
  for (const auto& [uid, key] : uid_to_key_) Enqueue(key);
}

void DaemonSetController::OnPod(const json::value* old, const json::value& pod, bool deleted) {
  std::string key;
  {
    std::lock_guard lock(mu_);
    auto it = uid_to_key_.find(ControllerUid(pod, "DaemonSet"));
    if (it == uid_to_key_.end()) return;
    key = it->second;
  }
  if (DeletionObserved(old, pod, deleted)) {
    expectations_.Deleted(key);
  } else if (!old && !deleted) {
    expectations_.Created(key);
  }
  Enqueue(key);
}

Status DaemonSetController::Reconcile(const std::string& key) {
  const auto split = SplitKey(key);  // Named, not bound: lambdas below use them.
  const std::string ns(split.first), name(split.second);
  auto ds = sets_->Get(ns, name);
  if (!ds || !api::GetString(*ds, {"metadata", "deletionTimestamp"}).empty()) return Status::Ok();
  if (!expectations_.Satisfied(key)) return Status::Ok();  // Our own writes' events requeue us.
  const std::string uid(api::GetString(*ds, {"metadata", "uid"}));
  const auto* tmpl = api::Find(*ds, {"spec", "template"});
  if (!tmpl) return Status::Ok();
  const std::string hash = DeploymentController::TemplateHash(*tmpl);
  std::vector<Revision> history = OwnedRevisions(revisions_->List(), *ds);
  KISO_ASSIGN_OR_RETURN(Revision revision,
                        EnsureRevision(client(), *ds, "DaemonSet", hash, history));
  const auto* gen_v = api::Find(*ds, {"metadata", "generation"});
  const int64_t generation = gen_v && gen_v->is_int64() ? gen_v->get_int64() : 1;
  const json::value daemon = DaemonPod(*ds);

  // Its live pods by the node they are for; failed ones go (and are made anew).
  // (The informer's objects, shared: read, never copied.)
  using Pod = client::Informer::Object;
  std::map<std::string, std::vector<Pod>> by_node;
  std::vector<Pod> doomed;
  for (auto& pod : pods_->Items()) {
    if (api::GetString(*pod, {"metadata", "namespace"}) != ns ||
        ControllerUid(*pod, "DaemonSet") != uid ||
        !api::GetString(*pod, {"metadata", "deletionTimestamp"}).empty())
      continue;
    std::string_view phase = api::GetString(*pod, {"status", "phase"});
    if (phase == "Failed") {
      doomed.push_back(std::move(pod));
      continue;
    }
    if (phase == "Succeeded") continue;
    by_node[NodeOf(*pod)].push_back(std::move(pod));
  }

  const bool rolling = api::GetString(*ds, {"spec", "updateStrategy", "type"}) != "OnDelete";
  const scheduler::PodInfo parsed = scheduler::ParsePod(daemon);
  std::vector<std::pair<std::string, Placement>> placements;
  int64_t desired = 0;
  for (const auto& node : nodes_->Items()) {
    placements.emplace_back(api::GetString(*node, {"metadata", "name"}), Place(parsed, *node));
    desired += placements.back().second.should_run ? 1 : 0;
  }
  const auto [max_surge, max_unavailable] = RollingLimits(*ds, desired);

  int64_t current = 0, misscheduled = 0, ready = 0, available = 0, updated = 0, surging = 0;
  const auto now = std::chrono::system_clock::now();
  const int64_t min_ready = api::GetInt(*ds, {"spec", "minReadySeconds"});
  bool waiting_for_available = false;
  // Available: ready for minReadySeconds (what the rolling update and status count).
  auto is_available = [&](const json::value& pod) {
    if (IsAvailablePod(pod, min_ready, now)) return true;
    waiting_for_available = waiting_for_available || IsReadyPod(pod);
    return false;
  };
  std::vector<std::string> create_on;
  // Nodes whose only pod is of an older template, by its availability.
  std::vector<std::pair<std::string, Pod>> old_available, old_unavailable;
  std::set<std::string> nodes;
  for (const auto& [node_name, where] : placements) {
    nodes.insert(node_name);
    auto it = by_node.find(node_name);
    std::vector<Pod> here;
    if (it != by_node.end()) here = std::move(it->second);  // Known nodes are skipped below.
    if (!here.empty() && !where.should_run) ++misscheduled;
    if (!where.may_continue) {
      for (auto& p : here) doomed.push_back(std::move(p));
      continue;
    }
    // The oldest pod of the current template and the oldest of older ones
    // stay; any other is a duplicate.
    std::sort(here.begin(), here.end(),
              [](const Pod& a, const Pod& b) { return Created(*a) < Created(*b); });
    Pod fresh, stale;
    for (auto& p : here) {
      auto& slot = api::GetString(*p, {"metadata", "labels", kHashLabel}) == hash ? fresh : stale;
      if (slot) {
        doomed.push_back(std::move(p));
      } else {
        slot = std::move(p);
      }
    }
    if (!where.should_run) {  // May stay, but one is enough.
      if (fresh && stale) doomed.push_back(std::move(stale));
      continue;
    }
    if (!fresh && !stale) {
      create_on.push_back(node_name);
      continue;
    }
    ++current;
    if ((fresh && IsReadyPod(*fresh)) || (stale && IsReadyPod(*stale))) ++ready;
    const bool fresh_available = fresh && is_available(*fresh);
    const bool stale_available = stale && is_available(*stale);
    if (fresh_available || stale_available) ++available;
    if (fresh) ++updated;
    if (fresh && stale) {  // A surge on this node: the old pod goes once the new one is available.
      if (fresh_available || !rolling) {
        doomed.push_back(std::move(stale));
      } else {
        ++surging;
      }
    } else if (stale) {
      (stale_available ? old_available : old_unavailable).emplace_back(node_name, std::move(stale));
    }
  }
  for (auto& [node_name, pods] : by_node) {  // Nodes that are gone, or no node at all.
    if (nodes.count(node_name)) continue;
    for (auto& p : pods) doomed.push_back(std::move(p));
  }

  if (rolling) {
    // Old pods that are not available anyway go at once (their node gets a
    // new one). Available ones: with maxSurge, a new pod starts beside the
    // old one on at most maxSurge nodes at a time; else old ones go while
    // fewer than maxUnavailable nodes lack an available pod.
    for (auto& [node_name, p] : old_unavailable) doomed.push_back(std::move(p));
    std::sort(old_available.begin(), old_available.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    if (max_surge > 0) {
      int64_t budget = max_surge - surging;
      for (auto& [node_name, p] : old_available) {
        if (budget-- <= 0) break;
        create_on.push_back(node_name);
      }
    } else {
      int64_t budget = max_unavailable - (desired - available);
      for (auto& [node_name, p] : old_available) {
        if (budget-- <= 0) break;
        doomed.push_back(std::move(p));
      }
    }
  }

  Status result = Status::Ok();
  const int creates = static_cast<int>(std::min<size_t>(create_on.size(), kBurst));
  const int deletes = static_cast<int>(std::min<size_t>(doomed.size(), kBurst));
  expectations_.Expect(key, creates, deletes);
  // Deletes first: a node's old pod is gone before the next node's new one starts (with
  // maxSurge, never more doubled nodes than allowed).
  for (int i = 0; i < deletes; ++i) {
    Status s = client()->Delete(
        Pods(), ns,
        std::string(api::GetString(*doomed[static_cast<size_t>(i)], {"metadata", "name"})));
    if (!s.ok()) {
      expectations_.Deleted(key);  // Will never be seen.
      if (s.code() != Code::kNotFound) result = s;
    }
  }

  std::mutex result_mu;
  auto create = [&](int i) {
    json::value pod = daemon;
    auto& meta = api::Child(pod.as_object(), "metadata");
    meta["generateName"] = name + "-";
    meta["namespace"] = ns;
    auto& labels = api::Child(meta, "labels");
    labels[kHashLabel] = hash;
    labels[kGenerationLabel] = std::to_string(generation);
    meta["ownerReferences"] = json::array{json::object{{"apiVersion", "apps/v1"},
                                                       {"kind", "DaemonSet"},
                                                       {"name", name},
                                                       {"uid", uid},
                                                       {"controller", true},
                                                       {"blockOwnerDeletion", true}}};
    // For this node only (the template's own node affinity held for it already).
    auto& affinity = api::Child(api::Child(pod.as_object(), "spec"), "affinity");
    auto& node_affinity = api::Child(affinity, "nodeAffinity");
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = json::object{
        {"nodeSelectorTerms",
         json::array{json::object{
             {"matchFields",
              json::array{json::object{
                  {"key", "metadata.name"},
                  {"operator", "In"},
                  {"values", json::array{json::value(create_on[static_cast<size_t>(i)])}}}}}}}}};
    auto made = client()->Create(Pods(), ns, pod);
    if (!made.ok()) {
      expectations_.Created(key);  // Will never be seen.
      std::lock_guard lock(result_mu);
      result = made.status();
    }
  };
  // Many at once (a new DaemonSet on a big cluster) go out on a few threads, as upstream's
  // batches of creates do: one at a time, each waits for the store's commit.
  const int threads = std::min(creates / 16, 8);
  if (threads <= 1) {
    for (int i = 0; i < creates; ++i) create(i);
  } else {
    std::atomic<int> next{0};
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(threads));
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (int i = next++; i < creates; i = next++) create(i);
      });
    }
    for (auto& t : pool) t.join();
  }
  json::object status{{"desiredNumberScheduled", desired},
                      {"currentNumberScheduled", current},
                      {"numberMisscheduled", misscheduled},
                      {"numberReady", ready},
                      {"numberAvailable", available},
                      {"updatedNumberScheduled", updated},
                      {"numberUnavailable", std::max<int64_t>(desired - available, 0)},
                      {"observedGeneration", generation}};
  if (waiting_for_available) EnqueueAfter(key, std::chrono::seconds(1));
  if (Status written = WriteStatusFields(DaemonSets(), *ds, status); !written.ok()) return written;
  // History: the revisions its pods are at stay, and revisionHistoryLimit more.
  std::set<std::string> keep{revision.name};
  for (const auto& pod : pods_->Items()) {
    if (ControllerUid(*pod, "DaemonSet") == uid) {
      keep.insert(RevisionName(name, api::GetString(*pod, {"metadata", "labels", kHashLabel})));
    }
  }
  if (Status s = TruncateHistory(client(), ns, history, keep,
                                 api::GetInt(*ds, {"spec", "revisionHistoryLimit"}, 10));
      !s.ok() && result.ok())
    result = s;
  return result;
}

}  // namespace kiso::controller
