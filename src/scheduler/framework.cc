#include "scheduler/framework.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

#include "api/object.h"
#include "api/quota.h"
#include "api/validation.h"
#include "common/random.h"

namespace kiso::scheduler {

namespace json = boost::json;

Resources& Resources::operator+=(const Resources& o) {
  milli_cpu += o.milli_cpu;
  memory += o.memory;
  ephemeral_storage += o.ephemeral_storage;
  pods += o.pods;
  return *this;
}

Resources& Resources::operator-=(const Resources& o) {
  milli_cpu -= o.milli_cpu;
  memory -= o.memory;
  ephemeral_storage -= o.ephemeral_storage;
  pods -= o.pods;
  return *this;
}

Resources NonZero(const Resources& requests) {
  Resources r = requests;
  if (r.milli_cpu == 0) r.milli_cpu = 100;
  if (r.memory == 0) r.memory = 200LL * 1024 * 1024;
  return r;
}

void AddPod(NodeInfo& node, const PodInfo& pod) {
  if (node.pods.contains(pod.Key())) return;
  AddPod(node, std::make_shared<const PodInfo>(pod));
}

void AddPod(NodeInfo& node, std::shared_ptr<const PodInfo> shared) {
  const PodInfo& pod = *shared;
  if (!node.pods.insert(pod.Key()).second) return;
  node.placed.emplace(pod.Key(), std::move(shared));
  if (!pod.anti_affinity.empty()) ++node.with_anti_affinity;
  node.requested += pod.requests;
  node.nonzero_requested += NonZero(pod.requests);
  for (const auto& p : pod.host_ports) node.used_ports.insert(p);
}

void RemovePod(NodeInfo& node, const PodInfo& pod) {
  if (!node.pods.erase(pod.Key())) return;
  if (auto it = node.placed.find(pod.Key()); it != node.placed.end()) {
    if (!it->second->anti_affinity.empty()) --node.with_anti_affinity;
    node.placed.erase(it);
  }
  node.requested -= pod.requests;
  node.nonzero_requested -= NonZero(pod.requests);
  for (const auto& p : pod.host_ports) node.used_ports.erase(p);
}

bool PodInfo::MatchedBy(const PodAffinityTerm& term, const std::string& term_ns,
                        const NamespaceLabels* namespaces) const {
  bool in_namespace = false;
  if (term.namespaces.empty() && !term.ns_selector) {
    in_namespace = ns == term_ns;
  } else {
    in_namespace = term.namespaces.contains(ns);
    if (!in_namespace && term.ns_selector) {
      if (term.ns_selector->empty()) {
        in_namespace = true;
      } else if (namespaces) {
        auto it = namespaces->find(ns);
        in_namespace = it != namespaces->end() && term.ns_selector->Matches(it->second);
      }
    }
  }
  return in_namespace && term.selector.Matches(labels);
}

bool Toleration::Tolerates(const Taint& taint) const {
  if (!effect.empty() && effect != taint.effect) return false;
  if (key.empty()) return op == "Exists";  // An empty key with Exists tolerates everything.
  if (key != taint.key) return false;
  return op == "Exists" || value == taint.value;
}

namespace {

int64_t Quantity(const json::value* v, bool milli) {
  if (!v) return 0;
  long double m = 0;
  if (v->is_string()) {
    if (!api::ParseQuantityMilli(v->get_string(), &m)) return 0;
  } else if (v->is_number()) {
    m = static_cast<long double>(v->to_number<double>()) * 1000;
  }
  return api::SaturatedInt64(milli ? std::ceil(m) : std::ceil(m / 1000));
}

Resources ParseResources(const json::value* list) {
  Resources r;
  if (!list || !list->is_object()) return r;
  const auto& o = list->get_object();
  r.milli_cpu = Quantity(o.if_contains("cpu"), true);
  r.memory = Quantity(o.if_contains("memory"), false);
  r.ephemeral_storage = Quantity(o.if_contains("ephemeral-storage"), false);
  r.pods = Quantity(o.if_contains("pods"), false);
  return r;
}

std::map<std::string, std::string> StringMap(const json::value* v) {
  std::map<std::string, std::string> out;
  if (!v || !v->is_object()) return out;
  for (const auto& [k, val] : v->get_object()) {
    if (val.is_string()) out.emplace(std::string(k), std::string(val.get_string()));
  }
  return out;
}

}  // namespace

std::vector<SelectorTerm> ParseSelectorTerms(const json::value* selector) {
  std::vector<SelectorTerm> out;
  const auto* terms = selector ? api::Find(*selector, {"nodeSelectorTerms"}) : nullptr;
  if (!terms || !terms->is_array()) return out;
  for (const auto& t : terms->get_array()) {
    SelectorTerm term;
    for (const char* kind : {"matchExpressions", "matchFields"}) {
      const auto* exprs = api::Find(t, {kind});
      if (!exprs || !exprs->is_array()) continue;
      for (const auto& e : exprs->get_array()) {
        SelectorRequirement r{std::string(api::GetString(e, {"key"})),
                              std::string(api::GetString(e, {"operator"})),
                              {},
                              std::string_view(kind) == "matchFields"};
        if (const auto* vs = api::Find(e, {"values"}); vs && vs->is_array()) {
          for (const auto& v : vs->get_array()) {
            if (v.is_string()) r.values.emplace_back(v.get_string());
          }
        }
        term.push_back(std::move(r));
      }
    }
    out.push_back(std::move(term));
  }
  return out;
}

namespace {

// A labelSelector with matchLabelKeys (In the pod's own values) and
// mismatchLabelKeys (NotIn) added; nullopt for a null selector, which selects nothing.
std::optional<api::LabelSelector> TermSelector(const json::value& term,
                                               const api::Labels& pod_labels) {
  const auto* sel = api::Find(term, {"labelSelector"});
  if (!sel || !sel->is_object()) return std::nullopt;
  json::object selector = sel->get_object();
  for (const char* keys : {"matchLabelKeys", "mismatchLabelKeys"}) {
    for (const auto& k : api::GetArray(term, {keys})) {
      if (!k.is_string()) continue;
      auto it = pod_labels.find(k.get_string());
      if (it == pod_labels.end()) continue;
      auto* exprs = selector.if_contains("matchExpressions");
      if (!exprs || !exprs->is_array()) exprs = &(selector["matchExpressions"] = json::array());
      exprs->as_array().push_back(
          json::object{{"key", k},
                       {"operator", std::string_view(keys) == "matchLabelKeys" ? "In" : "NotIn"},
                       {"values", json::array{json::string(it->second)}}});
    }
  }
  auto parsed = api::LabelSelector::FromObject(selector);
  if (!parsed.ok()) return std::nullopt;  // Validation refuses these; select nothing.
  return std::move(*parsed);
}

// The terms of `list`: PodAffinityTerms, or WeightedPodAffinityTerms (`weighted`).
std::vector<PodAffinityTerm> ParseAffinityTerms(const json::value* list, bool weighted,
                                                const api::Labels& pod_labels) {
  std::vector<PodAffinityTerm> out;
  if (!list || !list->is_array()) return out;
  for (const auto& item : list->get_array()) {
    const json::value* t = weighted ? api::Find(item, {"podAffinityTerm"}) : &item;
    if (!t) continue;
    auto selector = TermSelector(*t, pod_labels);
    if (!selector) continue;  // Selects no pod: no constraint, no score.
    PodAffinityTerm term;
    term.selector = std::move(*selector);
    for (const auto& n : api::GetArray(*t, {"namespaces"})) {
      if (n.is_string()) term.namespaces.emplace(n.get_string());
    }
    if (const auto* ns = api::Find(*t, {"namespaceSelector"}); ns && ns->is_object()) {
      auto parsed = api::LabelSelector::FromObject(*ns);
      if (parsed.ok()) term.ns_selector = std::move(*parsed);
    }
    term.topology_key = api::GetString(*t, {"topologyKey"});
    term.weight = weighted ? api::GetInt(item, {"weight"}, 0) : 0;
    out.push_back(std::move(term));
  }
  return out;
}

}  // namespace

PodInfo ParsePod(const json::value& pod) {
  PodInfo p;
  p.ns = api::GetString(pod, {"metadata", "namespace"});
  p.name = api::GetString(pod, {"metadata", "name"});
  p.uid = api::GetString(pod, {"metadata", "uid"});
  p.node_name = api::GetString(pod, {"spec", "nodeName"});
  p.scheduler_name = api::GetString(pod, {"spec", "schedulerName"});
  if (p.scheduler_name.empty()) p.scheduler_name = "default-scheduler";
  p.deleting = !api::GetString(pod, {"metadata", "deletionTimestamp"}).empty();
  p.priority = api::GetInt(pod, {"spec", "priority"}, 0);
  p.preempts = api::GetString(pod, {"spec", "preemptionPolicy"}) != "Never";
  // Requests as upstream counts them (sidecars, init containers, overhead).
  if (pod.is_object()) {
    auto requests = api::PodResources(pod.get_object(), "requests");
    auto get = [&](std::string_view name, bool milli) -> int64_t {
      auto it = requests.find(name);
      if (it == requests.end()) return 0;
      return api::SaturatedInt64(milli ? std::ceil(it->second) : std::ceil(it->second / 1000));
    };
    p.requests.milli_cpu = get("cpu", true);
    p.requests.memory = get("memory", false);
    p.requests.ephemeral_storage = get("ephemeral-storage", false);
  }
  for (const auto& c : api::GetArray(pod, {"spec", "containers"})) {
    for (const auto& port : api::GetArray(c, {"ports"})) {
      const auto* hp = api::Find(port, {"hostPort"});
      if (!hp || !hp->is_int64() || hp->get_int64() <= 0) continue;
      std::string protocol(api::GetString(port, {"protocol"}));
      p.host_ports.push_back({protocol.empty() ? "TCP" : protocol,
                              std::string(api::GetString(port, {"hostIP"})),
                              static_cast<int>(hp->get_int64())});
    }
  }
  p.requests.pods = 1;
  p.node_selector = StringMap(api::Find(pod, {"spec", "nodeSelector"}));
  for (const auto& v : api::GetArray(pod, {"spec", "volumes"})) {
    if (auto c = api::GetString(v, {"persistentVolumeClaim", "claimName"}); !c.empty())
      p.claim_names.emplace_back(c);
  }
  if (const auto* labels = api::Find(pod, {"metadata", "labels"}); labels && labels->is_object()) {
    for (const auto& [k, v] : labels->get_object()) {
      if (v.is_string()) p.labels.emplace(k, v.get_string());
    }
  }
  if (const auto* a = api::Find(pod, {"spec", "affinity"}); a && a->is_object()) {
    constexpr std::string_view kRequired = "requiredDuringSchedulingIgnoredDuringExecution";
    constexpr std::string_view kPreferred = "preferredDuringSchedulingIgnoredDuringExecution";
    p.affinity = ParseAffinityTerms(api::Find(*a, {"podAffinity", kRequired}), false, p.labels);
    p.anti_affinity =
        ParseAffinityTerms(api::Find(*a, {"podAntiAffinity", kRequired}), false, p.labels);
    p.preferred_affinity =
        ParseAffinityTerms(api::Find(*a, {"podAffinity", kPreferred}), true, p.labels);
    p.preferred_anti_affinity =
        ParseAffinityTerms(api::Find(*a, {"podAntiAffinity", kPreferred}), true, p.labels);
  }
  for (const auto& c : api::GetArray(pod, {"spec", "topologySpreadConstraints"})) {
    auto selector = TermSelector(c, p.labels);
    if (!selector) continue;  // Selects no pod: every domain counts 0.
    SpreadConstraint s;
    s.selector = std::move(*selector);
    s.max_skew = api::GetInt(c, {"maxSkew"}, 1);
    s.topology_key = api::GetString(c, {"topologyKey"});
    s.hard = api::GetString(c, {"whenUnsatisfiable"}) != "ScheduleAnyway";
    s.min_domains = api::GetInt(c, {"minDomains"}, 1);
    s.honor_node_affinity = api::GetString(c, {"nodeAffinityPolicy"}) != "Ignore";
    s.honor_taints = api::GetString(c, {"nodeTaintsPolicy"}) == "Honor";
    p.spread.push_back(std::move(s));
  }
  p.required_affinity = ParseSelectorTerms(api::Find(
      pod, {"spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"}));
  if (const auto* ts = api::Find(pod, {"spec", "tolerations"}); ts && ts->is_array()) {
    for (const auto& t : ts->get_array()) {
      Toleration tol{
          std::string(api::GetString(t, {"key"})), std::string(api::GetString(t, {"operator"})),
          std::string(api::GetString(t, {"value"})), std::string(api::GetString(t, {"effect"}))};
      if (tol.op.empty()) tol.op = "Equal";
      p.tolerations.push_back(std::move(tol));
    }
  }
  return p;
}

NodeInfo ParseNode(const json::value& node) {
  NodeInfo n;
  n.name = api::GetString(node, {"metadata", "name"});
  n.labels = StringMap(api::Find(node, {"metadata", "labels"}));
  const auto* u = api::Find(node, {"spec", "unschedulable"});
  n.unschedulable = u && u->is_bool() && u->get_bool();
  if (const auto* ts = api::Find(node, {"spec", "taints"}); ts && ts->is_array()) {
    for (const auto& t : ts->get_array()) {
      n.taints.push_back({std::string(api::GetString(t, {"key"})),
                          std::string(api::GetString(t, {"value"})),
                          std::string(api::GetString(t, {"effect"}))});
    }
  }
  const auto* alloc = api::Find(node, {"status", "allocatable"});
  if (!alloc) alloc = api::Find(node, {"status", "capacity"});
  n.allocatable = ParseResources(alloc);
  return n;
}

// ---- Registry and framework ----

Status Registry::RegisterFilter(std::string name, FilterFactory factory) {
  if (filters_.contains(name))
    return MakeStatus(Code::kAlreadyExists, "filter plugin {:?} registered twice", name);
  filters_.emplace(std::move(name), std::move(factory));
  return Status::Ok();
}

Status Registry::RegisterScore(std::string name, ScoreFactory factory) {
  if (scores_.contains(name))
    return MakeStatus(Code::kAlreadyExists, "score plugin {:?} registered twice", name);
  scores_.emplace(std::move(name), std::move(factory));
  return Status::Ok();
}

Result<std::unique_ptr<FilterPlugin>> Registry::NewFilter(std::string_view name) const {
  auto it = filters_.find(name);
  if (it == filters_.end()) return MakeStatus(Code::kNotFound, "no filter plugin {:?}", name);
  return it->second();
}

Result<std::unique_ptr<ScorePlugin>> Registry::NewScore(std::string_view name) const {
  auto it = scores_.find(name);
  if (it == scores_.end()) return MakeStatus(Code::kNotFound, "no score plugin {:?}", name);
  return it->second();
}

Result<std::unique_ptr<Framework>> Framework::Create(const Registry& registry,
                                                     const Profile& profile) {
  auto f = std::unique_ptr<Framework>(new Framework());
  for (const auto& name : profile.filters) {
    KISO_ASSIGN_OR_RETURN(auto plugin, registry.NewFilter(name));
    f->filters_.push_back(std::move(plugin));
  }
  for (const auto& [name, weight] : profile.scores) {
    KISO_ASSIGN_OR_RETURN(auto plugin, registry.NewScore(name));
    f->scores_.emplace_back(std::move(plugin), weight);
  }
  return f;
}

std::optional<std::set<std::string>> RequiredNodeNames(const PodInfo& pod) {
  if (pod.required_affinity.empty()) return std::nullopt;
  std::set<std::string> names;
  for (const auto& term : pod.required_affinity) {
    bool named = false;
    for (const auto& r : term) {
      if (r.field && r.key == "metadata.name" && r.op == "In") {
        names.insert(r.values.begin(), r.values.end());
        named = true;
        break;
      }
    }
    if (!named) return std::nullopt;  // This term may match any node.
  }
  return names;
}

size_t NodeSnapshot::IndexOf(const NodeInfo* node) const {
  if (index_.empty() && !nodes_.empty()) {
    index_.reserve(nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) index_.emplace(nodes_[i], i);
  }
  auto it = index_.find(node);
  return it == index_.end() ? kNotFound : it->second;
}

const TopologyDomains& NodeSnapshot::Domains(const std::string& key) const {
  auto it = domains_.find(key);
  if (it != domains_.end()) return it->second;
  TopologyDomains& d = domains_[key];
  d.of.assign(nodes_.size(), -1);
  std::map<std::string_view, int32_t> by_value;  // Into the nodes' labels.
  for (size_t i = 0; i < nodes_.size(); ++i) {
    auto label = nodes_[i]->labels.find(key);
    if (label == nodes_[i]->labels.end()) continue;
    auto [at, added] = by_value.try_emplace(label->second, static_cast<int32_t>(d.values.size()));
    if (added) d.values.push_back(label->second);
    d.of[i] = at->second;
  }
  return d;
}

Result<std::string> Framework::Schedule(const PodInfo& pod,
                                        const std::vector<const NodeInfo*>& nodes,
                                        const NamespaceLabels* namespaces) const {
  return Schedule(pod, NodeSnapshot(nodes), namespaces);
}

Result<std::string> Framework::Schedule(const PodInfo& pod, const NodeSnapshot& snapshot,
                                        const NamespaceLabels* namespaces) const {
  const std::vector<const NodeInfo*>& nodes = snapshot.nodes();
  if (nodes.empty()) return Status(Code::kUnavailable, "0/0 nodes are available: no nodes.");
  CycleState state;
  state.namespaces = namespaces;
  state.snapshot = &snapshot;
  for (const auto& f : filters_) f->PreFilter(pod, state);
  // A pod whose every affinity term names its nodes (a DaemonSet's pod) is tried on those only,
  // as upstream's NodeAffinity PreFilter narrows the nodes: the others fail that filter anyway.
  std::vector<const NodeInfo*> named;
  size_t skipped = 0;
  if (auto names = RequiredNodeNames(pod)) {
    for (const NodeInfo* node : nodes) {
      if (names->count(node->name)) named.push_back(node);
    }
    skipped = nodes.size() - named.size();
  }
  const std::vector<const NodeInfo*>& candidates = skipped > 0 ? named : nodes;
  // Like upstream's percentageOfNodesToScore: in a big cluster, stop after enough feasible nodes,
  // starting where the previous pod stopped so that every node gets its turn.
  size_t n = candidates.size();
  size_t percent = n < 125 ? 100 : std::max<size_t>(5, 50 - n / 125);
  size_t enough = std::max<size_t>(100, n * percent / 100);
  thread_local size_t next_start = 0;  // Into the full list.
  std::map<std::string, int> reasons;
  std::string best;
  int64_t best_score = -1;
  size_t feasible = 0;
  size_t ties = 0;
  size_t examined = 0;
  bool prescored = false;
  for (; examined < n && feasible < enough; ++examined) {
    const NodeInfo& node = *candidates[(next_start + examined) % n];
    bool fits = true;
    for (const auto& f : filters_) {
      FilterResult r = f->Filter(pod, node, state);
      if (!r.fits) {
        for (const auto& reason : r.reasons) ++reasons[reason];
        fits = false;
        break;
      }
    }
    if (!fits) continue;
    if (!prescored) {
      for (const auto& [plugin, weight] : scores_) plugin->PreScore(pod, state);
      prescored = true;
    }
    ++feasible;
    int64_t score = 0;
    for (const auto& [plugin, weight] : scores_) score += weight * plugin->Score(pod, node, state);
    if (score > best_score) {
      best_score = score;
      best = node.name;
      ties = 1;
    } else if (score == best_score && RandomBelow(++ties) == 0) {
      best = node.name;  // Reservoir sampling among equal scores, as upstream selectHost.
    }
  }
  if (skipped == 0) next_start = (next_start + examined) % n;  // The rotation is the full list's.
  if (!best.empty()) return best;
  if (skipped > 0)
    reasons["node(s) didn't match Pod's node affinity/selector"] += static_cast<int>(skipped);
  std::vector<std::string> parts;
  parts.reserve(reasons.size());
  for (const auto& [reason, count] : reasons) parts.push_back(fmt::format("{} {}", count, reason));
  std::sort(parts.begin(), parts.end());
  return Status(Code::kUnavailable,
                fmt::format("0/{} nodes are available: {}.", nodes.size(), fmt::join(parts, ", ")));
}

bool Framework::Fits(const PodInfo& pod, const NodeInfo& node, const CycleState& state) const {
  return std::all_of(filters_.begin(), filters_.end(),
                     [&](const auto& f) { return f->Filter(pod, node, state).fits; });
}

std::optional<Preemption> Framework::Preempt(const PodInfo& pod,
                                             const std::vector<const NodeInfo*>& nodes,
                                             const NamespaceLabels* namespaces,
                                             const std::vector<DisruptionBudget>* budgets) const {
  if (!pod.preempts) return std::nullopt;
  std::optional<Preemption> best;
  int64_t best_top = 0;
  for (const NodeInfo* node : nodes) {
    std::vector<std::shared_ptr<const PodInfo>> lower;
    for (const auto& [key, placed] : node->placed) {
      if (placed->priority < pod.priority && !placed->deleting) lower.push_back(placed);
    }
    if (lower.empty()) continue;
    // The node without every lower-priority pod: if the pod does not fit even
    // then, evicting cannot help here.
    NodeInfo trial = *node;
    for (const auto& v : lower) RemovePod(trial, *v);
    std::vector<const NodeInfo*> view;
    view.reserve(nodes.size());
    for (const NodeInfo* n : nodes) view.push_back(n == node ? &trial : n);
    const NodeSnapshot snapshot(std::move(view));
    CycleState state;
    state.namespaces = namespaces;
    state.snapshot = &snapshot;
    for (const auto& f : filters_) f->PreFilter(pod, state);
    if (!Fits(pod, trial, state)) continue;
    // The most important pods first; those a budget protects (its allowance
    // spent in that order) before the others.
    std::sort(lower.begin(), lower.end(), [](const auto& a, const auto& b) {
      return a->priority != b->priority ? a->priority > b->priority : a->Key() < b->Key();
    });
    std::vector<std::shared_ptr<const PodInfo>> protected_pods, others;
    std::vector<int64_t> allowed;
    if (budgets) {
      for (const auto& b : *budgets) allowed.push_back(b.allowed);
    }
    for (const auto& v : lower) {
      bool violates = false;
      std::vector<size_t> matched;
      for (size_t i = 0; budgets && i < budgets->size(); ++i) {
        const auto& b = (*budgets)[i];
        if (b.ns != v->ns || !b.selector.Matches(v->labels)) continue;
        matched.push_back(i);
        if (allowed[i] <= 0) violates = true;
      }
      if (!violates) {
        for (size_t i : matched) --allowed[i];
      }
      (violates ? protected_pods : others).push_back(v);
    }
    // Reprieve: back on the node while the pod still fits.
    std::vector<std::shared_ptr<const PodInfo>> victims;
    int violations = 0;
    auto reprieve = [&](const std::vector<std::shared_ptr<const PodInfo>>& candidates,
                        bool protect) {
      for (const auto& v : candidates) {
        AddPod(trial, *v);
        CycleState again;
        again.namespaces = namespaces;
        again.snapshot = &snapshot;
        for (const auto& f : filters_) f->PreFilter(pod, again);
        if (!Fits(pod, trial, again)) {
          RemovePod(trial, *v);
          victims.push_back(v);
          if (protect) ++violations;
        }
      }
    };
    reprieve(protected_pods, true);
    reprieve(others, false);
    if (victims.empty()) continue;  // It fits as it is: not a matter of preemption.
    int64_t top = INT64_MIN;
    for (const auto& v : victims) top = std::max(top, v->priority);
    if (!best || violations < best->violations ||
        (violations == best->violations &&
         (top < best_top || (top == best_top && victims.size() < best->victims.size())))) {
      best = Preemption{node->name, std::move(victims), violations};
      best_top = top;
    }
  }
  return best;
}

}  // namespace kiso::scheduler
