// kiso's built-in scheduler plugins, after upstream's plugins of the same names.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "scheduler/framework.h"

namespace kiso::scheduler {

namespace {

// NodeResourcesFit: requests (cpu, memory, ephemeral-storage, pod count) within allocatable.
class ResourcesFit : public FilterPlugin {
 public:
  std::string_view Name() const override { return "NodeResourcesFit"; }
  FilterResult Filter(const PodInfo& pod, const NodeInfo& node,
                      const CycleState& /*state*/) const override {
    FilterResult r;
    const Resources& a = node.allocatable;
    const Resources& used = node.requested;
    if (used.pods + 1 > a.pods) r.reasons.emplace_back("Too many pods");
    if (pod.requests.milli_cpu > 0 && used.milli_cpu + pod.requests.milli_cpu > a.milli_cpu)
      r.reasons.emplace_back("Insufficient cpu");
    if (pod.requests.memory > 0 && used.memory + pod.requests.memory > a.memory)
      r.reasons.emplace_back("Insufficient memory");
    if (pod.requests.ephemeral_storage > 0 &&
        used.ephemeral_storage + pod.requests.ephemeral_storage > a.ephemeral_storage)
      r.reasons.emplace_back("Insufficient ephemeral-storage");
    r.fits = r.reasons.empty();
    return r;
  }
};

class NodeNameFilter : public FilterPlugin {
 public:
  std::string_view Name() const override { return "NodeName"; }
  FilterResult Filter(const PodInfo& pod, const NodeInfo& node,
                      const CycleState& /*state*/) const override {
    if (pod.node_name.empty() || pod.node_name == node.name) return FilterResult::Fit();
    return FilterResult::Unfit("node(s) didn't match the requested node name");
  }
};

// VolumeBinding: a bound claim's volume must be usable on the node; an unbound
// one (WaitForFirstConsumer) needs a volume that is, or a class that provisions.
class VolumeBindingFilter : public FilterPlugin {
 public:
  std::string_view Name() const override { return "VolumeBinding"; }
  FilterResult Filter(const PodInfo& pod, const NodeInfo& node,
                      const CycleState& /*state*/) const override {
    for (const auto& c : pod.claims) {
      if (c.bound) {
        if (!c.bound_affinity.empty() && !MatchesSelectorTerms(c.bound_affinity, node))
          return FilterResult::Unfit("node(s) had volume node affinity conflict");
        continue;
      }
      if (c.provisionable) continue;
      bool any = std::any_of(c.candidates.begin(), c.candidates.end(), [&](const auto& terms) {
        return terms.empty() || MatchesSelectorTerms(terms, node);
      });
      if (!any)
        return FilterResult::Unfit("node(s) didn't find available persistent volumes to bind");
    }
    return FilterResult::Fit();
  }
};

bool Matches(const SelectorRequirement& r, const std::map<std::string, std::string>& labels) {
  auto it = labels.find(r.key);
  bool has = it != labels.end();
  auto in = [&] {
    return has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
  };
  if (r.op == "In") return in();
  if (r.op == "NotIn") return !in();
  if (r.op == "Exists") return has;
  if (r.op == "DoesNotExist") return !has;
  if ((r.op == "Gt" || r.op == "Lt") && has && r.values.size() == 1) {
    // Both sides must be integers (upstream: a label that is not one never matches).
    auto parse = [](const std::string& s, int64_t* out) {
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
      return ec == std::errc() && end == s.data() + s.size();
    };
    int64_t have = 0, want = 0;
    if (!parse(it->second, &have) || !parse(r.values[0], &want)) return false;
    return r.op == "Gt" ? have > want : have < want;
  }
  return false;
}

// NodeAffinity: spec.nodeSelector and required node affinity (terms ORed, requirements ANDed).
class NodeAffinityFilter : public FilterPlugin {
 public:
  std::string_view Name() const override { return "NodeAffinity"; }
  FilterResult Filter(const PodInfo& pod, const NodeInfo& node,
                      const CycleState& /*state*/) const override {
    if (MatchesNodeAffinity(pod, node)) return FilterResult::Fit();
    return FilterResult::Unfit("node(s) didn't match Pod's node affinity/selector");
  }
};

// TaintToleration: every NoSchedule/NoExecute taint must be tolerated.
class TaintTolerationFilter : public FilterPlugin {
 public:
  std::string_view Name() const override { return "TaintToleration"; }
  FilterResult Filter(const PodInfo& pod, const NodeInfo& node,
                      const CycleState& /*state*/) const override {
    const Taint* taint = FirstUntoleratedTaint(pod, node, true);
    if (!taint) return FilterResult::Fit();
    return FilterResult::Unfit(
        fmt::format("node(s) had untolerated taint {{{}: {}}}", taint->key, taint->value));
  }
};

// NodeUnschedulable: cordoned nodes, unless the pod tolerates the unschedulable taint.
class NodeUnschedulableFilter : public FilterPlugin {
 public:
  std::string_view Name() const override { return "NodeUnschedulable"; }
  FilterResult Filter(const PodInfo& pod, const NodeInfo& node,
                      const CycleState& /*state*/) const override {
    if (!node.unschedulable) return FilterResult::Fit();
    Taint t{"node.kubernetes.io/unschedulable", "", "NoSchedule"};
    for (const auto& tol : pod.tolerations) {
      if (tol.Tolerates(t)) return FilterResult::Fit();
    }
    return FilterResult::Unfit("node(s) were unschedulable");
  }
};

// NodePorts: a host port (protocol, IP) may be used once per node; 0.0.0.0 conflicts with every IP.
class NodePortsFilter : public FilterPlugin {
 public:
  std::string_view Name() const override { return "NodePorts"; }
  FilterResult Filter(const PodInfo& pod, const NodeInfo& node,
                      const CycleState& /*state*/) const override {
    for (const auto& want : pod.host_ports) {
      for (const auto& used : node.used_ports) {
        if (used.port != want.port || used.protocol != want.protocol) continue;
        bool any =
            used.ip.empty() || used.ip == "0.0.0.0" || want.ip.empty() || want.ip == "0.0.0.0";
        if (any || used.ip == want.ip)
          return FilterResult::Unfit("node(s) didn't have free ports for the requested pod ports");
      }
    }
    return FilterResult::Fit();
  }
};

// Fractions of cpu and memory in use once the pod is placed (upstream counts a
// pod without requests as 100m cpu and 200Mi memory when scoring).
std::pair<double, double> Fractions(const PodInfo& pod, const NodeInfo& node) {
  int64_t cpu = pod.requests.milli_cpu > 0 ? pod.requests.milli_cpu : 100;
  int64_t mem = pod.requests.memory > 0 ? pod.requests.memory : 200LL * 1024 * 1024;
  double fc = node.allocatable.milli_cpu > 0 ? static_cast<double>(node.requested.milli_cpu + cpu) /
                                                   static_cast<double>(node.allocatable.milli_cpu)
                                             : 1;
  double fm = node.allocatable.memory > 0 ? static_cast<double>(node.requested.memory + mem) /
                                                static_cast<double>(node.allocatable.memory)
                                          : 1;
  return {std::min(fc, 1.0), std::min(fm, 1.0)};
}

class LeastAllocated : public ScorePlugin {
 public:
  std::string_view Name() const override { return "NodeResourcesLeastAllocated"; }
  int64_t Score(const PodInfo& pod, const NodeInfo& node,
                const CycleState& /*state*/) const override {
    auto [fc, fm] = Fractions(pod, node);
    return static_cast<int64_t>(((1 - fc) + (1 - fm)) / 2 * 100);
  }
};

class BalancedAllocation : public ScorePlugin {
 public:
  std::string_view Name() const override { return "NodeResourcesBalancedAllocation"; }
  int64_t Score(const PodInfo& pod, const NodeInfo& node,
                const CycleState& /*state*/) const override {
    auto [fc, fm] = Fractions(pod, node);
    double std_dev = std::abs(fc - fm) / 2;  // Standard deviation of two values.
    return static_cast<int64_t>((1 - std_dev) * 100);
  }
};

template <typename T>
std::function<std::unique_ptr<FilterPlugin>()> F() {
  return [] { return std::make_unique<T>(); };
}
template <typename T>
std::function<std::unique_ptr<ScorePlugin>()> S() {
  return [] { return std::make_unique<T>(); };
}

}  // namespace

const Taint* FirstUntoleratedTaint(const PodInfo& pod, const NodeInfo& node, bool no_schedule_too) {
  for (const auto& taint : node.taints) {
    if (taint.effect != "NoExecute" && !(no_schedule_too && taint.effect == "NoSchedule")) continue;
    bool tolerated = std::any_of(pod.tolerations.begin(), pod.tolerations.end(),
                                 [&](const Toleration& t) { return t.Tolerates(taint); });
    if (!tolerated) return &taint;
  }
  return nullptr;
}

bool MatchesNodeAffinity(const PodInfo& pod, const NodeInfo& node) {
  for (const auto& [k, v] : pod.node_selector) {
    auto it = node.labels.find(k);
    if (it == node.labels.end() || it->second != v) return false;
  }
  return pod.required_affinity.empty() || MatchesSelectorTerms(pod.required_affinity, node);
}

bool MatchesSelectorTerms(const std::vector<SelectorTerm>& terms, const NodeInfo& node) {
  for (const auto& term : terms) {
    if (term.empty()) continue;  // An empty term matches nothing.
    bool all = std::all_of(term.begin(), term.end(), [&](const SelectorRequirement& r) {
      if (!r.field) return Matches(r, node.labels);
      // metadata.name, the one field there is (In or NotIn).
      bool in = r.key == "metadata.name" &&
                std::find(r.values.begin(), r.values.end(), node.name) != r.values.end();
      return r.op == "In" ? in : r.op == "NotIn" && !in;
    });
    if (all) return true;
  }
  return false;
}

void RegisterBuiltins(Registry& registry) {
  // Names are unique here, so registration cannot fail.
  (void)registry.RegisterFilter("NodeResourcesFit", F<ResourcesFit>());
  (void)registry.RegisterFilter("NodeName", F<NodeNameFilter>());
  (void)registry.RegisterFilter("NodeAffinity", F<NodeAffinityFilter>());
  (void)registry.RegisterFilter("TaintToleration", F<TaintTolerationFilter>());
  (void)registry.RegisterFilter("NodeUnschedulable", F<NodeUnschedulableFilter>());
  (void)registry.RegisterFilter("NodePorts", F<NodePortsFilter>());
  (void)registry.RegisterFilter("VolumeBinding", F<VolumeBindingFilter>());
  RegisterPodPlacement(registry);
  (void)registry.RegisterScore("NodeResourcesLeastAllocated", S<LeastAllocated>());
  (void)registry.RegisterScore("NodeResourcesBalancedAllocation", S<BalancedAllocation>());
}

}  // namespace kiso::scheduler
