// The scheduler's model and extension points — the seed's f: P → N with
// |f⁻¹(n)| ≤ capacity(n) (07.1.1), shaped like the Kubernetes scheduler
// framework: Filter plugins say whether a pod fits a node (and why not),
// Score plugins rank the nodes that fit. Plugins are registered by name and
// enabled by a Profile.
#pragma once

#include <boost/json/value.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <vector>

#include "api/selector.h"
#include "common/status.h"

namespace kiso::scheduler {

// Resource amounts: cpu in millicores, memory and ephemeral storage in bytes.
struct Resources {
  int64_t milli_cpu = 0;
  int64_t memory = 0;
  int64_t ephemeral_storage = 0;
  int64_t pods = 0;
  Resources& operator+=(const Resources& o);
  Resources& operator-=(const Resources& o);
};

struct Toleration {
  std::string key, op, value, effect;  // op: Equal (default) or Exists.
  bool Tolerates(const struct Taint& taint) const;
};

struct Taint {
  std::string key, value, effect;  // NoSchedule, PreferNoSchedule, NoExecute.
};

struct HostPort {
  std::string protocol;
  std::string ip;
  int port = 0;
  friend bool operator<(const HostPort& a, const HostPort& b) {
    return std::tie(a.protocol, a.ip, a.port) < std::tie(b.protocol, b.ip, b.port);
  }
};

// One node-selector term: requirements ANDed (key, operator In/NotIn/Exists/DoesNotExist/Gt/Lt,
// values). A field requirement (matchFields) names `metadata.name`, the one field upstream
// selects nodes by (how a DaemonSet pod names its node).
struct SelectorRequirement {
  std::string key, op;
  std::vector<std::string> values;
  bool field = false;
};
using SelectorTerm = std::vector<SelectorRequirement>;

// A PersistentVolumeClaim of a pod, as the VolumeBinding filter needs it.
struct ClaimPlacement {
  std::string name;
  bool bound = false;
  std::vector<SelectorTerm> bound_affinity;  // Bound: its volume's node affinity (none: anywhere).
  // Unbound (its class binds WaitForFirstConsumer): the node affinity of each
  // volume that could be bound to it, and whether its class provisions one.
  std::vector<std::vector<SelectorTerm>> candidates;
  bool provisionable = false;
};

// Namespace → its labels (what namespaceSelectors match).
using NamespaceLabels = std::map<std::string, std::map<std::string, std::string, std::less<>>>;

// A pod (anti-)affinity term: pods its selector matches in its namespaces,
// counted per value of the node label topology_key.
struct PodAffinityTerm {
  api::LabelSelector selector;
  std::set<std::string> namespaces;               // None named and no selector: the pod's own.
  std::optional<api::LabelSelector> ns_selector;  // namespaceSelector ({} selects all).
  std::string topology_key;
  int64_t weight = 0;  // Preferred terms: 1–100.
};

// A topologySpreadConstraint.
struct SpreadConstraint {
  int64_t max_skew = 1;
  std::string topology_key;
  bool hard = true;  // DoNotSchedule (else ScheduleAnyway: a score).
  api::LabelSelector selector;
  int64_t min_domains = 1;
  bool honor_node_affinity = true;  // nodeAffinityPolicy Honor (the default).
  bool honor_taints = false;        // nodeTaintsPolicy Honor (Ignore is the default).
};

struct PodInfo {
  std::string ns, name, uid;
  std::map<std::string, std::string, std::less<>> labels;
  std::string node_name;       // spec.nodeName (set when bound).
  std::string scheduler_name;  // spec.schedulerName.
  Resources requests;          // Sum of containers (max with init containers), pods = 1.
  std::map<std::string, std::string> node_selector;
  std::vector<SelectorTerm> required_affinity;  // ORed terms; empty = none.
  std::vector<Toleration> tolerations;
  std::vector<HostPort> host_ports;
  bool deleting = false;
  int64_t priority = 0;                  // spec.priority (from its PriorityClass).
  bool preempts = true;                  // preemptionPolicy is not Never.
  std::vector<std::string> claim_names;  // Its persistentVolumeClaim volumes' claims.
  std::vector<ClaimPlacement> claims;    // Resolved by the scheduler before each attempt.
  // spec.affinity.podAffinity / podAntiAffinity: required and preferred terms.
  std::vector<PodAffinityTerm> affinity, anti_affinity;
  std::vector<PodAffinityTerm> preferred_affinity, preferred_anti_affinity;
  std::vector<SpreadConstraint> spread;
  std::string Key() const { return ns + "/" + name; }
  // Whether `key` is this pod's Key(), without making one (hot loops over placed pods).
  bool HasKey(std::string_view key) const {
    return key.size() == ns.size() + 1 + name.size() && key.starts_with(ns) &&
           key[ns.size()] == '/' && key.ends_with(name);
  }
  // Whether `term` (of a pod in `term_ns`) selects this pod.
  bool MatchedBy(const PodAffinityTerm& term, const std::string& term_ns,
                 const NamespaceLabels* namespaces) const;
};

struct NodeInfo {
  std::string name;
  std::map<std::string, std::string> labels;
  std::vector<Taint> taints;
  bool unschedulable = false;
  Resources allocatable;
  Resources requested;  // Sum over the pods on the node (bound or assumed).
  // The same with upstream's defaults for pods without requests (100m cpu,
  // 200Mi memory): what scoring uses, so such pods still spread.
  Resources nonzero_requested;
  std::set<HostPort> used_ports;
  std::set<std::string> pods;  // Keys of the pods counted in `requested`.
  // The pods themselves, for inter-pod affinity and topology spread.
  std::map<std::string, std::shared_ptr<const PodInfo>> placed;
  int64_t with_anti_affinity = 0;  // Placed pods with required anti-affinity terms.
};

// A node label's values as topology domains: each node's domain, numbered as
// first seen in the node list.
struct TopologyDomains {
  std::vector<int32_t> of;          // By node index: its domain, or -1 without the label.
  std::vector<std::string> values;  // By domain: the label's value.
  // Node `i`'s domain; -1 without the label, or for kNotFound (a node not in the list).
  int32_t Of(size_t i) const { return i < of.size() ? of[i] : -1; }
};

// The nodes one decision sees, with what is worth keeping from one decision to
// the next while they stay the same (upstream's scheduler snapshot): where each
// node is in the list and, per topology key asked for, its domain. Whoever
// changes a node's labels, or the list, makes a new snapshot or calls
// Invalidate(). Not thread-safe: one decision at a time.
class NodeSnapshot {
 public:
  NodeSnapshot() = default;
  explicit NodeSnapshot(std::vector<const NodeInfo*> nodes) : nodes_(std::move(nodes)) {}
  const std::vector<const NodeInfo*>& nodes() const { return nodes_; }
  size_t size() const { return nodes_.size(); }
  // The node's place in nodes(), or kNotFound for a node not in it.
  static constexpr size_t kNotFound = static_cast<size_t>(-1);
  size_t IndexOf(const NodeInfo* node) const;
  // Every node's domain of the label `key`, made at its first use.
  const TopologyDomains& Domains(const std::string& key) const;
  // Forgets what was derived from the nodes' labels (the list is unchanged).
  void Invalidate() { domains_.clear(); }

 private:
  std::vector<const NodeInfo*> nodes_;
  mutable std::unordered_map<const NodeInfo*, size_t> index_;  // Made at the first IndexOf.
  mutable std::map<std::string, TopologyDomains, std::less<>> domains_;
};

// What plugins compute once per pod and attempt, over all nodes (upstream's
// CycleState): each plugin's own state, by its name.
class CycleState {
 public:
  const NamespaceLabels* namespaces = nullptr;
  const NodeSnapshot* snapshot = nullptr;  // Every node, not only candidates.
  const std::vector<const NodeInfo*>& nodes() const { return snapshot->nodes(); }
  template <typename T>
  void Put(std::string_view key, std::shared_ptr<const T> state) {
    data_.insert_or_assign(
        std::string(key),
        std::pair{std::type_index(typeid(T)), std::shared_ptr<const void>(std::move(state))});
  }
  // Null when nothing of type T is kept under `key`.
  template <typename T>
  const T* Get(std::string_view key) const {
    auto it = data_.find(key);
    if (it == data_.end() || it->second.first != std::type_index(typeid(T))) return nullptr;
    return static_cast<const T*>(it->second.second.get());
  }

 private:
  std::map<std::string, std::pair<std::type_index, std::shared_ptr<const void>>, std::less<>> data_;
};

// A NodeSelector's terms (`{nodeSelectorTerms: [...]}`: a pod's required node
// affinity, a PersistentVolume's nodeAffinity.required); none when absent.
std::vector<SelectorTerm> ParseSelectorTerms(const boost::json::value* selector);
// Whether the node matches one of the terms (an empty term matches nothing).
bool MatchesSelectorTerms(const std::vector<SelectorTerm>& terms, const NodeInfo& node);

// Whether the node has the pod's nodeSelector labels and matches one of its
// required node-affinity terms (the NodeAffinity filter; the DaemonSet
// controller's placement too).
bool MatchesNodeAffinity(const PodInfo& pod, const NodeInfo& node);

// The node's first NoExecute taint the pod does not tolerate, or with
// `no_schedule_too` its first NoSchedule or NoExecute one; null when none
// (the TaintToleration filter; the DaemonSet controller's placement too).
const Taint* FirstUntoleratedTaint(const PodInfo& pod, const NodeInfo& node, bool no_schedule_too);

// The only nodes the pod's required node affinity can match, when each of its
// terms names them (`matchFields metadata.name In [...]`); nullopt otherwise.
std::optional<std::set<std::string>> RequiredNodeNames(const PodInfo& pod);

// A pod's requests for scoring: 100m cpu and 200Mi memory where it asks for none.
Resources NonZero(const Resources& requests);
// Adds or removes a pod's requests and host ports on a node.
void AddPod(NodeInfo& node, const PodInfo& pod);
// The same, the node sharing `pod` rather than keeping a copy.
void AddPod(NodeInfo& node, std::shared_ptr<const PodInfo> pod);
void RemovePod(NodeInfo& node, const PodInfo& pod);

// Parses a pod or node object into the scheduler's model.
PodInfo ParsePod(const boost::json::value& pod);
NodeInfo ParseNode(const boost::json::value& node);

struct FilterResult {
  bool fits = true;
  std::vector<std::string> reasons;  // Upstream's wording: "Insufficient cpu", …
  static FilterResult Fit() { return {}; }
  static FilterResult Unfit(std::string reason) { return {false, {std::move(reason)}}; }
};

class FilterPlugin {
 public:
  virtual ~FilterPlugin() = default;
  virtual std::string_view Name() const = 0;
  // Once per pod and attempt, before any Filter: what the filter needs of the
  // whole cluster (state.nodes), kept in `state` under the plugin's name.
  virtual void PreFilter(const PodInfo& pod, CycleState& state) const {
    (void)pod;
    (void)state;
  }
  virtual FilterResult Filter(const PodInfo& pod, const NodeInfo& node,
                              const CycleState& state) const = 0;
};

class ScorePlugin {
 public:
  virtual ~ScorePlugin() = default;
  virtual std::string_view Name() const = 0;
  // Once per pod and attempt, before any Score.
  virtual void PreScore(const PodInfo& pod, CycleState& state) const {
    (void)pod;
    (void)state;
  }
  // 0 (worst) to 100 (best), for a node that passed every filter.
  virtual int64_t Score(const PodInfo& pod, const NodeInfo& node,
                        const CycleState& state) const = 0;
};

// Plugins by name (upstream's names: NodeResourcesFit, NodeName, NodeAffinity,
// TaintToleration, NodeUnschedulable, NodePorts; NodeResourcesLeastAllocated,
// NodeResourcesBalancedAllocation; VolumeBinding, InterPodAffinity, PodTopologySpread).
// A duplicate name fails loudly.
class Registry {
 public:
  using FilterFactory = std::function<std::unique_ptr<FilterPlugin>()>;
  using ScoreFactory = std::function<std::unique_ptr<ScorePlugin>()>;
  Status RegisterFilter(std::string name, FilterFactory factory);
  Status RegisterScore(std::string name, ScoreFactory factory);
  Result<std::unique_ptr<FilterPlugin>> NewFilter(std::string_view name) const;
  Result<std::unique_ptr<ScorePlugin>> NewScore(std::string_view name) const;

 private:
  std::map<std::string, FilterFactory, std::less<>> filters_;
  std::map<std::string, ScoreFactory, std::less<>> scores_;
};

// Registers kiso's built-in plugins.
void RegisterBuiltins(Registry& registry);
// InterPodAffinity and PodTopologySpread (pod_placement.cc), filter and score.
void RegisterPodPlacement(Registry& registry);

// Which plugins run, and each score plugin's weight.
struct Profile {
  std::vector<std::string> filters = {"NodeUnschedulable", "NodeName",         "TaintToleration",
                                      "NodeAffinity",      "NodePorts",        "NodeResourcesFit",
                                      "VolumeBinding",     "InterPodAffinity", "PodTopologySpread"};
  std::vector<std::pair<std::string, int64_t>> scores = {{"NodeResourcesLeastAllocated", 1},
                                                         {"NodeResourcesBalancedAllocation", 1},
                                                         {"InterPodAffinity", 2},
                                                         {"PodTopologySpread", 2}};
};

// What preempting lower-priority pods would make room for a pod: the node
// and the pods to evict there (upstream's DefaultPreemption).
struct Preemption {
  std::string node;
  std::vector<std::shared_ptr<const PodInfo>> victims;
  int violations = 0;  // Victims whose eviction a PodDisruptionBudget does not allow.
};

// A PodDisruptionBudget as preemption weighs it: the pods it selects in its
// namespace and how many of them may go now (status.disruptionsAllowed).
struct DisruptionBudget {
  std::string ns;
  api::LabelSelector selector;
  int64_t allowed = 0;
};

// The framework: filters then scores. Thread-compatible (const after Create).
class Framework {
 public:
  static Result<std::unique_ptr<Framework>> Create(const Registry& registry,
                                                   const Profile& profile);
  // The best node for `pod` among `nodes`, or Unavailable with upstream's
  // message: "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {…}."
  // `namespaces` (optional) answers namespaceSelectors of affinity terms.
  Result<std::string> Schedule(const PodInfo& pod, const std::vector<const NodeInfo*>& nodes,
                               const NamespaceLabels* namespaces = nullptr) const;
  // The same over a snapshot kept between decisions (the scheduler's).
  Result<std::string> Schedule(const PodInfo& pod, const NodeSnapshot& snapshot,
                               const NamespaceLabels* namespaces = nullptr) const;
  // For a pod that fits nowhere: the node where evicting pods of lower
  // priority lets it fit, as upstream's DefaultPreemption picks it: on each
  // node the pods whose eviction a budget forbids are reprieved first, then
  // the others, most important first, while the pod still fits; of the
  // nodes, the one with fewest budget violations, then the lowest highest
  // victim priority, then the fewest victims. Budgets are a preference, not a
  // bar. nullopt when no eviction helps or the pod may not preempt.
  std::optional<Preemption> Preempt(const PodInfo& pod, const std::vector<const NodeInfo*>& nodes,
                                    const NamespaceLabels* namespaces = nullptr,
                                    const std::vector<DisruptionBudget>* budgets = nullptr) const;

 private:
  bool Fits(const PodInfo& pod, const NodeInfo& node, const CycleState& state) const;
  std::vector<std::unique_ptr<FilterPlugin>> filters_;
  std::vector<std::pair<std::unique_ptr<ScorePlugin>, int64_t>> scores_;
};

}  // namespace kiso::scheduler
