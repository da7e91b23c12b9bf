#include "scheduler/scheduler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "api/storage.h"
#include "common/recover.h"
#include "scheduler/volume_binding.h"

namespace kiso::scheduler {

namespace json = boost::json;

namespace {
const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }
const api::ResourceType& Namespaces() { return *api::FindResource("", "v1", "namespaces"); }
const api::ResourceType& Claims() { return *api::FindResource("", "v1", "persistentvolumeclaims"); }
const api::ResourceType& Budgets() {
  return *api::FindResource("policy", "v1", "poddisruptionbudgets");
}
const api::ResourceType& Volumes() { return *api::FindResource("", "v1", "persistentvolumes"); }
const api::ResourceType& Classes() {
  return *api::FindResource("storage.k8s.io", "v1", "storageclasses");
}
// How long a binding waits for its claims' volumes (upstream's bind timeout is 600 s).
constexpr auto kVolumeBindTimeout = std::chrono::seconds(120);
}  // namespace

Result<std::unique_ptr<Scheduler>> Scheduler::Create(client::Client* client,
                                                     const SchedulerOptions& options) {
  Registry registry;
  RegisterBuiltins(registry);
  KISO_ASSIGN_OR_RETURN(auto framework, Framework::Create(registry, options.profile));
  return std::unique_ptr<Scheduler>(new Scheduler(client, options, std::move(framework)));
}

Scheduler::Scheduler(client::Client* client, SchedulerOptions options,
                     std::unique_ptr<Framework> framework)
    : client_(client),
      options_(std::move(options)),
      framework_(std::move(framework)),
      events_(client, options_.name) {
  auto watch = [&](const api::ResourceType& type, client::Informer::Handler handler) {
    if (options_.informers) {
      client::Informer* informer = options_.informers->For(type);
      // Added at Start(), once this object is whole (a shared informer may run already).
      pending_handlers_.emplace_back(informer, std::move(handler));
      return informer;
    }
    owned_informers_.push_back(
        std::make_unique<client::Informer>(client_, &type, std::move(handler)));
    return owned_informers_.back().get();
  };
  pods_informer_ = watch(Pods(), [this](const json::value* old, const json::value& obj,
                                        bool deleted) { OnPod(old, obj, deleted); });
  nodes_informer_ = watch(Nodes(), [this](const json::value* old, const json::value& obj,
                                          bool deleted) { OnNode(old, obj, deleted); });
  // Claims, volumes and classes change what fits where (VolumeBinding).
  auto storage = [this](const json::value*, const json::value&, bool) {
    std::lock_guard lock(mu_);
    if (!unschedulable_.empty()) RequeueUnschedulable();
  };
  claims_informer_ = watch(Claims(), storage);
  // Namespaces' labels, for affinity terms' namespaceSelectors.
  watch(Namespaces(), [this](const json::value*, const json::value& ns, bool deleted) {
    std::string name(api::GetString(ns, {"metadata", "name"}));
    std::lock_guard lock(mu_);
    if (deleted) {
      namespace_labels_.erase(name);
      return;
    }
    auto& labels = namespace_labels_[name];
    labels.clear();
    if (const auto* l = api::Find(ns, {"metadata", "labels"}); l && l->is_object()) {
      for (const auto& [k, v] : l->get_object()) {
        if (v.is_string()) labels.emplace(k, v.get_string());
      }
    }
  });
  volumes_informer_ = watch(Volumes(), storage);
  classes_informer_ = watch(Classes(), storage);
  budgets_informer_ = watch(Budgets(), [](const json::value*, const json::value&, bool) {});
}

std::string Scheduler::ResolveClaims(PodInfo& pod) {
  pod.claims.clear();
  std::vector<json::value> volumes;
  for (const auto& name : pod.claim_names) {
    auto claim = claims_informer_->Get(pod.ns, name);
    if (!claim) return fmt::format("persistentvolumeclaim \"{}\" not found", name);
    if (!api::GetString(*claim, {"metadata", "deletionTimestamp"}).empty())
      return fmt::format("persistentvolumeclaim \"{}\" is being deleted", name);
    ClaimPlacement c;
    c.name = name;
    std::string volume_name(api::GetString(*claim, {"spec", "volumeName"}));
    if (!volume_name.empty()) {
      auto volume = volumes_informer_->Get("", volume_name);
      if (!volume) return fmt::format("persistentvolume \"{}\" not found", volume_name);
      c.bound = true;
      c.bound_affinity = VolumeNodeAffinity(*volume);
      pod.claims.push_back(std::move(c));
      continue;
    }
    std::string class_name = api::ClaimClass(*claim);
    auto cls = class_name.empty() ? std::nullopt : classes_informer_->Get("", class_name);
    if (!cls || api::GetString(*cls, {"volumeBindingMode"}) != "WaitForFirstConsumer")
      return "pod has unbound immediate PersistentVolumeClaims";
    c.provisionable = !api::GetString(*cls, {"provisioner"}).empty() &&
                      api::GetString(*cls, {"provisioner"}) != "kubernetes.io/no-provisioner";
    if (volumes.empty()) volumes = volumes_informer_->List();
    for (const auto& v : volumes) {
      if (VolumeSatisfies(v, *claim, nullptr)) c.candidates.push_back(VolumeNodeAffinity(v));
    }
    pod.claims.push_back(std::move(c));
  }
  return "";
}

bool Scheduler::BindVolumes(const PodInfo& pod, const std::string& node) {
  std::vector<std::string> waiting;
  for (const auto& c : pod.claims) {
    if (c.bound) continue;
    auto claim = claims_informer_->Get(pod.ns, c.name);
    if (claim && !api::GetString(*claim, {"spec", "volumeName"}).empty()) continue;
    if (!claim ||
        api::GetString(*claim, {"metadata", "annotations", api::kSelectedNodeAnnotation}) != node) {
      json::value patch = json::object{
          {"metadata",
           json::object{{"annotations", json::object{{api::kSelectedNodeAnnotation, node}}}}}};
      auto res = client_->Patch(Claims(), pod.ns, c.name, client::PatchType::kMerge, patch);
      if (!res.ok()) {
        spdlog::warn("scheduler: {}: annotate claim {}: {}", pod.Key(), c.name,
                     res.status().ToString());
        return false;
      }
    }
    waiting.push_back(c.name);
  }
  // PreBind: the pod is bound once its claims are (provisioned on the node, or
  // bound to a volume it can use).
  auto deadline = std::chrono::steady_clock::now() + kVolumeBindTimeout;
  for (const auto& name : waiting) {
    for (;;) {
      auto claim = claims_informer_->Get(pod.ns, name);
      if (claim && api::GetString(*claim, {"status", "phase"}) == "Bound") break;
      if (stop_ || !claim || std::chrono::steady_clock::now() > deadline) {
        spdlog::warn("scheduler: {}: claim {} not bound on {} in time", pod.Key(), name, node);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Polling with a deadline.
    }
  }
  return true;
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  for (auto& [informer, handler] : pending_handlers_)
    handlers_.emplace_back(informer, informer->AddHandler(std::move(handler)));
  pending_handlers_.clear();
  if (options_.informers) options_.informers->Start();
  for (auto& informer : owned_informers_) informer->Start();
  binders_ = std::make_unique<WorkerPool>(options_.binders);
  loop_ = std::thread([this] { Loop(); });
}

void Scheduler::Stop() {
  if (stop_.exchange(true)) return;
  {
    std::lock_guard lock(mu_);
    cv_.notify_all();
  }
  if (loop_.joinable()) loop_.join();
  binders_.reset();  // Binds under way finish; those queued see stop_ and return.
  for (auto& [informer, id] : handlers_) informer->RemoveHandler(id);
  handlers_.clear();
  for (auto& informer : owned_informers_) informer->Stop();
}

void Scheduler::Account(std::shared_ptr<const PodInfo> pod, const std::string& node_name) {
  std::string key = pod->Key();
  auto placed = placed_.find(key);
  if (placed != placed_.end()) {
    if (placed->second.node == node_name) return;
    Unaccount(key);
  }
  placed_[key] = {node_name, pod};
  auto it = nodes_.find(node_name);
  if (it != nodes_.end()) AddPod(it->second, std::move(pod));  // Else once the node appears.
}

bool Scheduler::Unaccount(const std::string& key, const std::string& only_node) {
  auto placed = placed_.find(key);
  if (placed == placed_.end()) return false;
  if (!only_node.empty() && placed->second.node != only_node) return false;
  auto it = nodes_.find(placed->second.node);
  if (it != nodes_.end()) RemovePod(it->second, *placed->second.pod);
  placed_.erase(placed);
  return true;
}

void Scheduler::RequeueUnschedulable() {
  for (const auto& key : unschedulable_) {
    if (queued_.insert(key).second) active_.push_back(key);
  }
  unschedulable_.clear();
  cv_.notify_all();
}

void Scheduler::OnPod(const json::value* old, const json::value& obj, bool deleted) {
  PodInfo pod = ParsePod(obj);
  std::string key = pod.Key();
  std::lock_guard lock(mu_);
  if (deleted) {
    pending_.erase(key);
    unschedulable_.erase(key);
    waiting_for_pods_.erase(key);
    nominated_.erase(key);
    reported_.erase(key);
    if (Unaccount(key)) RequeueUnschedulable();  // Freed capacity may fit a waiting pod.
    return;
  }
  if (!pod.node_name.empty()) {
    pending_.erase(key);
    unschedulable_.erase(key);
    nominated_.erase(key);
    reported_.erase(key);
    bool known = placed_.contains(key);
    const std::string node = pod.node_name;
    Account(std::make_shared<const PodInfo>(std::move(pod)), node);
    // A pod placed by someone else may be what a pod's affinity waits for.
    if (!known && !waiting_for_pods_.empty()) {
      for (const auto& k : waiting_for_pods_) {
        if (unschedulable_.erase(k) && queued_.insert(k).second) active_.push_back(k);
      }
      waiting_for_pods_.clear();
      cv_.notify_one();
    }
    return;
  }
  if (pod.scheduler_name != options_.name || pod.deleting) return;
  if (placed_.contains(key)) return;  // Assumed: its binding is in flight.
  // A real change of the spec, not a status update (our own, say), tries it again.
  const json::value* spec = api::Find(obj, {"spec"});
  const json::value* old_spec = old ? api::Find(*old, {"spec"}) : nullptr;
  const bool changed = !old || !spec || !old_spec || *spec != *old_spec;
  pending_[key] = std::move(pod);
  if (unschedulable_.contains(key) && !changed) return;  // Our own status update, say.
  unschedulable_.erase(key);
  if (queued_.insert(key).second) {
    active_.push_back(key);
    cv_.notify_one();
  }
}

void Scheduler::OnNode(const json::value* old, const json::value& obj, bool deleted) {
  (void)old;
  NodeInfo parsed = ParseNode(obj);
  std::lock_guard lock(mu_);
  if (deleted) {
    nodes_.erase(parsed.name);
    snapshot_ = NodeSnapshot();
    return;
  }
  auto it = nodes_.find(parsed.name);
  if (it == nodes_.end()) {
    // A new node: count the pods already placed on it.
    auto& node = nodes_[parsed.name];
    snapshot_ = NodeSnapshot();
    node = std::move(parsed);
    for (const auto& [key, where] : placed_) {
      if (where.node == node.name) AddPod(node, where.pod);  // Shared.
    }
  } else {
    NodeInfo& node = it->second;
    if (node.labels != parsed.labels) snapshot_.Invalidate();
    node.labels = std::move(parsed.labels);
    node.taints = std::move(parsed.taints);
    node.unschedulable = parsed.unschedulable;
    node.allocatable = parsed.allocatable;
  }
  RequeueUnschedulable();
}

void Scheduler::Loop() {
  // Decisions need the nodes and the pods already placed.
  while (!stop_ && !nodes_informer_->WaitForSync(std::chrono::steady_clock::now() +
                                                 std::chrono::milliseconds(200))) {
  }
  while (!stop_ && !pods_informer_->WaitForSync(std::chrono::steady_clock::now() +
                                                std::chrono::milliseconds(200))) {
  }
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait(lock, [&] { return stop_ || !active_.empty(); });
    if (stop_) break;
    std::string key = std::move(active_.front());
    active_.pop_front();
    queued_.erase(key);
    auto it = pending_.find(key);
    if (it == pending_.end()) continue;
    PodInfo pod = it->second;
    std::string volume_error = pod.claim_names.empty() ? "" : ResolveClaims(pod);
    if (!volume_error.empty()) {
      unschedulable_.insert(key);
      std::string message =
          fmt::format("0/{} nodes are available: {}.", nodes_.size(), volume_error);
      if (reported_[key] != message) {
        reported_[key] = message;
        QueueBind({std::make_shared<const PodInfo>(pod), "", message});
      }
      continue;
    }
    if (snapshot_.size() != nodes_.size()) {
      std::vector<const NodeInfo*> list;
      list.reserve(nodes_.size());
      for (const auto& [name, node] : nodes_) list.push_back(&node);
      snapshot_ = NodeSnapshot(std::move(list));
    }
    // A plugin that throws on an odd pod or node must not end the scheduler:
    // the pod is unschedulable, said as such, and retried with the others.
    Result<std::string> chosen = Status(Code::kInternal, "not scheduled");
    // Room made by preemption is kept for the pod it was made for: pods
    // nominated to a node count there for pods of no higher priority.
    std::vector<std::pair<NodeInfo*, const PodInfo*>> reserved;
    for (const auto& [other, node_name] : nominated_) {
      auto p = pending_.find(other);
      auto n = nodes_.find(node_name);
      if (other == key || p == pending_.end() || n == nodes_.end() ||
          p->second.priority < pod.priority)
        continue;
      AddPod(n->second, p->second);
      reserved.emplace_back(&n->second, &p->second);
    }
    try {
      chosen = framework_->Schedule(pod, snapshot_, &namespace_labels_);
    } catch (...) {
      ReportRecovered("scheduler: " + key, CurrentExceptionMessage());
      chosen = MakeStatus(Code::kInternal, "scheduling failed: {}", CurrentExceptionMessage());
    }
    for (auto [node, reserved_pod] : reserved) RemovePod(*node, *reserved_pod);
    if (chosen.ok()) {
      pending_.erase(key);
      nominated_.erase(key);
      auto shared = std::make_shared<const PodInfo>(std::move(pod));
      Account(shared, *chosen);  // Assume: the next decision sees this pod on the node.
      QueueBind({std::move(shared), *chosen, ""});
    } else {
      unschedulable_.insert(key);
      if (!pod.affinity.empty()) waiting_for_pods_.insert(key);
      // PostFilter: make room by preempting pods of lower priority.
      std::optional<Preemption> preemption;
      if (pod.preempts && !PreemptionUnderWay(key)) {
        try {
          std::vector<DisruptionBudget> budgets;
          for (const auto& pdb : budgets_informer_->List()) {
            auto selector = api::BudgetSelector(pdb);
            if (!selector) continue;
            budgets.push_back({std::string(api::GetString(pdb, {"metadata", "namespace"})),
                               std::move(*selector),
                               api::GetInt(pdb, {"status", "disruptionsAllowed"}, 0)});
          }
          preemption = framework_->Preempt(pod, snapshot_.nodes(), &namespace_labels_, &budgets);
        } catch (...) {
          ReportRecovered("scheduler: preemption for " + key, CurrentExceptionMessage());
        }
      }
      if (preemption) {
        nominated_[key] = preemption->node;
        QueueBind({std::make_shared<const PodInfo>(pod), "", chosen.status().message(),
                   std::move(preemption)});
        reported_[key] = chosen.status().message();
      } else if (reported_[key] != chosen.status().message()) {
        reported_[key] = chosen.status().message();
        QueueBind({std::make_shared<const PodInfo>(pod), "", chosen.status().message()});
      }
    }
  }
}

void Scheduler::QueueBind(BindTask task) {
  {
    std::lock_guard lock(binds_mu_);
    binds_.push_back(std::move(task));
  }
  binders_->Run([this] { BindNext(); });
}

void Scheduler::BindNext() {
  BindTask task;
  {
    std::lock_guard lock(binds_mu_);
    if (stop_ || binds_.empty()) return;
    task = std::move(binds_.front());
    binds_.pop_front();
  }
  if (task.node.empty()) {
    ReportUnschedulable(*task.pod, task.unschedulable_message);
    if (task.preemption) Preempt(*task.pod, *task.preemption);
  } else {
    Bind(*task.pod, task.node);
  }
}

void Scheduler::Bind(const PodInfo& pod, const std::string& node) {
  if (!pod.claims.empty() && !BindVolumes(pod, node)) {
    std::lock_guard lock(mu_);
    Unaccount(pod.Key(), node);
    pending_[pod.Key()] = pod;
    unschedulable_.insert(pod.Key());  // Tried again when claims or volumes change.
    return;
  }
  json::value binding = json::object{
      {"apiVersion", "v1"},
      {"kind", "Binding"},
      {"metadata", json::object{{"name", pod.name}, {"namespace", pod.ns}, {"uid", pod.uid}}},
      {"target", json::object{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
  auto res = client_->CreateSubresource(Pods(), pod.ns, pod.name, "binding", binding);
  if (res.ok()) {
    bound_.fetch_add(1);
    return;
  }
  // Not bound: forget the assumption. A conflict means it is bound or going away
  // already (the informer will tell); anything else is retried.
  std::lock_guard lock(mu_);
  Unaccount(pod.Key(), node);
  if (res.status().code() != Code::kConflict && res.status().code() != Code::kNotFound) {
    spdlog::warn("scheduler: bind {} to {}: {}", pod.Key(), node, res.status().ToString());
    pending_[pod.Key()] = pod;
    if (queued_.insert(pod.Key()).second) active_.push_back(pod.Key());
    cv_.notify_one();
  }
}

bool Scheduler::PreemptionUnderWay(const std::string& key) {
  auto it = nominated_.find(key);
  if (it == nominated_.end()) return false;
  auto node = nodes_.find(it->second);
  if (node != nodes_.end()) {
    for (const auto& [k, placed] : node->second.placed) {
      if (placed->deleting) return true;
    }
  }
  nominated_.erase(it);
  return false;
}

void Scheduler::Preempt(const PodInfo& pod, const Preemption& preemption) {
  for (const auto& victim : preemption.victims) {
    std::string message = fmt::format("Preempted by pod {} on node {}", pod.uid, preemption.node);
    json::value condition = json::object{
        {"status", json::object{{"conditions", json::array{json::object{
                                                   {"type", "DisruptionTarget"},
                                                   {"status", "True"},
                                                   {"reason", "PreemptionByScheduler"},
                                                   {"message", fmt::format("{}: preempting to "
                                                                           "accommodate a higher "
                                                                           "priority pod",
                                                                           options_.name)},
                                                   {"lastTransitionTime", api::NowRfc3339()}}}}}}};
    auto patched = client_->Patch(Pods(), victim->ns, victim->name, client::PatchType::kStrategic,
                                  condition, "status");
    if (patched.ok()) events_.Record(*patched, "Normal", "Preempted", message);
    client::DeleteOptions options;
    options.precondition_uid = victim->uid;
    Status s = client_->Delete(Pods(), victim->ns, victim->name, options);
    if (!s.ok() && s.code() != Code::kNotFound)
      spdlog::warn("scheduler: preempt {}/{}: {}", victim->ns, victim->name, s.ToString());
  }
  json::value nominated =
      json::object{{"status", json::object{{"nominatedNodeName", preemption.node}}}};
  (void)client_->Patch(Pods(), pod.ns, pod.name, client::PatchType::kMerge, nominated, "status");
}

void Scheduler::ReportUnschedulable(const PodInfo& pod, const std::string& message) {
  json::value patch = json::object{
      {"status", json::object{{"conditions", json::array{json::object{
                                                 {"type", "PodScheduled"},
                                                 {"status", "False"},
                                                 {"reason", "Unschedulable"},
                                                 {"message", message},
                                                 {"lastProbeTime", nullptr},
                                                 {"lastTransitionTime", api::NowRfc3339()}}}}}}};
  auto res =
      client_->Patch(Pods(), pod.ns, pod.name, client::PatchType::kStrategic, patch, "status");
  if (!res.ok()) return;  // Gone or bound meanwhile.
  events_.Record(*res, "Warning", "FailedScheduling", message);
}

}  // namespace kiso::scheduler
