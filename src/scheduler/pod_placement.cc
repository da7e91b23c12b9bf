// Where pods go relative to other pods, after kube-scheduler's plugins of the
// same names:
// - InterPodAffinity: a pod's required podAffinity terms need a matching pod
//   in the node's topology domain (the first pod of a group, matching its
//   own terms, may go anywhere the keys exist); required podAntiAffinity terms
//   forbid domains with a matching pod; and a pod already placed forbids its
//   domain to pods its own required anti-affinity matches (symmetry). The
//   score adds the weights of preferred affinity terms satisfied in a node's
//   domains and subtracts those of preferred anti-affinity terms.
// - PodTopologySpread: for each DoNotSchedule constraint, the matching pods
//   of the pod's namespace are counted per domain of the topology key over
//   the eligible nodes (those with the key that the pod's node affinity
//   allows, by nodeAffinityPolicy; untainted for it with nodeTaintsPolicy
//   Honor); a node fits when its domain's count, with the pod, exceeds the
//   smallest count by at most maxSkew (the smallest is 0 while there are
//   fewer domains than minDomains). ScheduleAnyway constraints score:
//   fewer matching pods in a node's domains, a higher score.
// Counts are made once per pod and attempt (PreFilter/PreScore), over every
// node's placed pods; a pod without terms costs nothing.
#include <algorithm>
#include <limits>
#include <optional>
#include <string_view>
#include <vector>

#include "scheduler/framework.h"

namespace kiso::scheduler {

namespace {

// topology value → count, for one term or constraint.
using DomainCounts = std::map<std::string, int64_t, std::less<>>;

const std::string* LabelOf(const NodeInfo& node, const std::string& key) {
  auto it = node.labels.find(key);
  return it == node.labels.end() ? nullptr : &it->second;
}

// Counts per domain of one topology key (the snapshot's domains, by index).
struct DomainTally {
  const TopologyDomains* domains = nullptr;
  std::vector<int64_t> count;  // By domain.
  explicit DomainTally(const TopologyDomains& d) : domains(&d), count(d.values.size(), 0) {}
  // The count of node `i`'s domain; nullopt when the node lacks the key.
  std::optional<int64_t> At(size_t i) const {
    const int32_t d = domains->Of(i);
    if (d < 0) return std::nullopt;
    return count[static_cast<size_t>(d)];
  }
};

struct AffinityState {
  std::vector<DomainTally> affinity;  // Per required affinity term.
  std::vector<DomainTally> anti;      // Per required anti-affinity term.
  bool any_affinity_match = false;    // Some pod matches some affinity term.
  bool matches_own_terms = true;      // The pod matches all its affinity terms.
  // Existing pods' anti-affinity that matches the pod: per topology key, the
  // domains it forbids (count > 0).
  std::vector<DomainTally> forbidden;
};

class InterPodAffinityFilter : public FilterPlugin {
 public:
  std::string_view Name() const override { return "InterPodAffinity"; }

  void PreFilter(const PodInfo& pod, CycleState& state) const override {
    const NodeSnapshot& snapshot = *state.snapshot;
    auto s = std::make_shared<AffinityState>();
    for (const auto& term : pod.affinity)
      s->affinity.emplace_back(snapshot.Domains(term.topology_key));
    for (const auto& term : pod.anti_affinity)
      s->anti.emplace_back(snapshot.Domains(term.topology_key));
    const bool own_terms = !pod.affinity.empty() || !pod.anti_affinity.empty();
    bool symmetric = false;
    const auto& nodes = snapshot.nodes();
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (own_terms || nodes[i]->with_anti_affinity > 0) {
        symmetric = symmetric || nodes[i]->with_anti_affinity > 0;
        Count(pod, i, *nodes[i], state, *s, own_terms);
      }
    }
    if (!own_terms && !symmetric) return;  // Nothing to check: Filter passes every node.
    for (const auto& term : pod.affinity) {
      s->matches_own_terms = s->matches_own_terms && pod.MatchedBy(term, pod.ns, state.namespaces);
    }
    state.Put<AffinityState>(Name(), s);
  }

  FilterResult Filter(const PodInfo& /*pod*/, const NodeInfo& node,
                      const CycleState& state) const override {
    const auto* s = state.Get<AffinityState>(Name());
    if (!s) return FilterResult::Fit();
    const size_t i = state.snapshot->IndexOf(&node);
    // In upstream's order: its affinity, its anti-affinity, the placed pods' anti-affinity.
    bool pods_exist = true;
    for (const auto& tally : s->affinity) {
      auto n = tally.At(i);
      if (!n) return FilterResult::Unfit("node(s) didn't match pod affinity rules");
      if (*n <= 0) pods_exist = false;
    }
    // The first of its group: no pod anywhere matches, and it matches its own terms.
    if (!pods_exist && (s->any_affinity_match || !s->matches_own_terms))
      return FilterResult::Unfit("node(s) didn't match pod affinity rules");
    for (const auto& tally : s->anti) {
      if (tally.At(i).value_or(0) > 0)
        return FilterResult::Unfit("node(s) didn't match pod anti-affinity rules");
    }
    for (const auto& tally : s->forbidden) {
      if (tally.At(i).value_or(0) > 0)
        return FilterResult::Unfit("node(s) didn't satisfy existing pods anti-affinity rules");
    }
    return FilterResult::Fit();
  }

 private:
  // The placed pods of node `i` against the pod's terms, and theirs against the pod.
  static void Count(const PodInfo& pod, size_t i, const NodeInfo& node, const CycleState& state,
                    AffinityState& s, bool own_terms) {
    auto add = [i](DomainTally& tally) {
      const int32_t d = tally.domains->of[i];
      if (d >= 0) ++tally.count[static_cast<size_t>(d)];
    };
    for (const auto& [key, placed] : node.placed) {
      if (pod.HasKey(key)) continue;
      // Symmetry: its required anti-affinity against this pod.
      for (const auto& term : placed->anti_affinity) {
        if (!pod.MatchedBy(term, placed->ns, state.namespaces)) continue;
        const TopologyDomains& domains = state.snapshot->Domains(term.topology_key);
        auto it = std::find_if(s.forbidden.begin(), s.forbidden.end(),
                               [&](const DomainTally& t) { return t.domains == &domains; });
        if (it == s.forbidden.end()) it = s.forbidden.emplace(s.forbidden.end(), domains);
        add(*it);
      }
      if (!own_terms) continue;
      for (size_t k = 0; k < pod.affinity.size(); ++k) {
        if (!placed->MatchedBy(pod.affinity[k], pod.ns, state.namespaces)) continue;
        s.any_affinity_match = true;
        add(s.affinity[k]);
      }
      for (size_t k = 0; k < pod.anti_affinity.size(); ++k) {
        if (placed->MatchedBy(pod.anti_affinity[k], pod.ns, state.namespaces)) add(s.anti[k]);
      }
    }
  }
};

// Scores in [min, max] mapped to 0–100 (upstream's normalisation); all equal: 0.
struct NormalizedScores {
  std::map<std::string, std::map<std::string, int64_t, std::less<>>, std::less<>> by_domain;
  int64_t min = 0, max = 0;
  int64_t Raw(const NodeInfo& node) const {
    int64_t raw = 0;
    for (const auto& [key, values] : by_domain) {
      const std::string* v = LabelOf(node, key);
      if (!v) continue;
      if (auto it = values.find(*v); it != values.end()) raw += it->second;
    }
    return raw;
  }
  void Range(const std::vector<const NodeInfo*>& nodes) {
    bool first = true;
    for (const NodeInfo* n : nodes) {
      int64_t r = Raw(*n);
      min = first ? r : std::min(min, r);
      max = first ? r : std::max(max, r);
      first = false;
    }
  }
};

// Score plugins keep their state apart from the filters of the same name.
constexpr std::string_view kAffinityScores = "InterPodAffinity/score";
constexpr std::string_view kSpreadScores = "PodTopologySpread/score";

class InterPodAffinityScore : public ScorePlugin {
 public:
  std::string_view Name() const override { return "InterPodAffinity"; }

  void PreScore(const PodInfo& pod, CycleState& state) const override {
    if (pod.preferred_affinity.empty() && pod.preferred_anti_affinity.empty()) return;
    auto s = std::make_shared<NormalizedScores>();
    for (const NodeInfo* node : state.nodes()) {
      for (const auto& [key, placed] : node->placed) {
        if (pod.HasKey(key)) continue;
        for (const auto* terms : {&pod.preferred_affinity, &pod.preferred_anti_affinity}) {
          const int64_t sign = terms == &pod.preferred_affinity ? 1 : -1;
          for (const auto& term : *terms) {
            const std::string* v = LabelOf(*node, term.topology_key);
            if (v && placed->MatchedBy(term, pod.ns, state.namespaces))
              s->by_domain[term.topology_key][*v] += sign * term.weight;
          }
        }
      }
    }
    s->Range(state.nodes());
    state.Put<NormalizedScores>(kAffinityScores, s);
  }

  int64_t Score(const PodInfo& /*pod*/, const NodeInfo& node,
                const CycleState& state) const override {
    const auto* s = state.Get<NormalizedScores>(kAffinityScores);
    if (!s || s->max == s->min) return 0;
    return 100 * (s->Raw(node) - s->min) / (s->max - s->min);
  }
};

// Whether a node with the constraint's key counts for it: its node affinity
// and taints, as the constraint's policies say.
bool Honours(const PodInfo& pod, const SpreadConstraint& c, const NodeInfo& node) {
  if (c.honor_node_affinity && !MatchesNodeAffinity(pod, node)) return false;
  if (c.honor_taints && FirstUntoleratedTaint(pod, node, true)) return false;
  return true;
}

// Whether the node counts as a domain of the pod's constraint.
bool Eligible(const PodInfo& pod, const SpreadConstraint& c, const NodeInfo& node) {
  return LabelOf(node, c.topology_key) && Honours(pod, c, node);
}

// Matching pods of the pod's namespace on `node`.
int64_t MatchingOn(const PodInfo& pod, const SpreadConstraint& c, const NodeInfo& node) {
  int64_t n = 0;
  for (const auto& [key, placed] : node.placed) {
    if (!pod.HasKey(key) && !placed->deleting && placed->ns == pod.ns &&
        c.selector.Matches(placed->labels))
      ++n;
  }
  return n;
}

// Matching pods of the pod's namespace per domain, over eligible nodes; every
// eligible domain is present (with 0).
DomainCounts CountSpread(const PodInfo& pod, const SpreadConstraint& c,
                         const std::vector<const NodeInfo*>& nodes) {
  DomainCounts counts;
  for (const NodeInfo* node : nodes) {
    if (!Eligible(pod, c, *node)) continue;
    counts[*LabelOf(*node, c.topology_key)] += MatchingOn(pod, c, *node);
  }
  return counts;
}

// The spread filter's verdicts, made in PreFilter: for each hard constraint,
// whether each domain of its key fits, the domains taken from the snapshot
// (kept between decisions), so a Filter call is a look-up by node index.
struct SpreadState {
  struct Verdicts {
    const TopologyDomains* domains;
    std::vector<char> fits;  // By domain.
  };
  std::vector<Verdicts> constraints;
};

class PodTopologySpreadFilter : public FilterPlugin {
 public:
  std::string_view Name() const override { return "PodTopologySpread"; }

  void PreFilter(const PodInfo& pod, CycleState& state) const override {
    if (std::none_of(pod.spread.begin(), pod.spread.end(),
                     [](const SpreadConstraint& c) { return c.hard; }))
      return;
    const auto& nodes = state.nodes();
    auto s = std::make_shared<SpreadState>();
    for (const auto& c : pod.spread) {
      if (!c.hard) continue;
      const TopologyDomains& domains = state.snapshot->Domains(c.topology_key);
      std::vector<int64_t> count(domains.values.size(), 0);
      std::vector<char> eligible(domains.values.size(), 0);
      for (size_t i = 0; i < nodes.size(); ++i) {
        const int32_t d = domains.of[i];
        if (d < 0 || !Honours(pod, c, *nodes[i])) continue;
        eligible[d] = 1;
        count[d] += MatchingOn(pod, c, *nodes[i]);
      }
      // The least crowded eligible domain (0 while there are fewer than minDomains).
      int64_t min = std::numeric_limits<int64_t>::max();
      int64_t found = 0;
      for (size_t d = 0; d < count.size(); ++d) {
        if (!eligible[d]) {
          count[d] = 0;  // Only ineligible nodes have it: never counted (as upstream).
          continue;
        }
        ++found;
        min = std::min(min, count[d]);
      }
      if (found == 0 || found < c.min_domains) min = 0;
      const int64_t allowed = c.max_skew + min - (c.selector.Matches(pod.labels) ? 1 : 0);
      SpreadState::Verdicts v{&domains, std::vector<char>(count.size())};
      for (size_t d = 0; d < count.size(); ++d) v.fits[d] = count[d] <= allowed ? 1 : 0;
      s->constraints.push_back(std::move(v));
    }
    state.Put<SpreadState>(Name(), s);
  }

  FilterResult Filter(const PodInfo& /*pod*/, const NodeInfo& node,
                      const CycleState& state) const override {
    const auto* s = state.Get<SpreadState>(Name());
    if (!s) return FilterResult::Fit();
    const size_t i = state.snapshot->IndexOf(&node);
    bool fits = true;
    for (const auto& v : s->constraints) {
      const int32_t d = v.domains->Of(i);
      if (d < 0) {
        return FilterResult::Unfit(
            "node(s) didn't match pod topology spread constraints (missing required label)");
      }
      fits = fits && v.fits[static_cast<size_t>(d)] != 0;
    }
    if (fits) return FilterResult::Fit();
    return FilterResult::Unfit("node(s) didn't match pod topology spread constraints");
  }
};

class PodTopologySpreadScore : public ScorePlugin {
 public:
  std::string_view Name() const override { return "PodTopologySpread"; }

  void PreScore(const PodInfo& pod, CycleState& state) const override {
    auto s = std::make_shared<NormalizedScores>();
    bool any = false;
    for (const auto& c : pod.spread) {
      if (c.hard) continue;
      any = true;
      for (const auto& [domain, n] : CountSpread(pod, c, state.nodes()))
        s->by_domain[c.topology_key][domain] += n;
    }
    if (!any) return;
    s->Range(state.nodes());
    state.Put<NormalizedScores>(kSpreadScores, s);
  }

  // Fewer matching pods in the node's domains: a higher score.
  int64_t Score(const PodInfo& /*pod*/, const NodeInfo& node,
                const CycleState& state) const override {
    const auto* s = state.Get<NormalizedScores>(kSpreadScores);
    if (!s) return 0;
    if (s->max == s->min) return 100;
    return 100 * (s->max - s->Raw(node)) / (s->max - s->min);
  }
};

template <typename T>
std::function<std::unique_ptr<T>()> Make() {
  return [] { return std::make_unique<T>(); };
}

}  // namespace

void RegisterPodPlacement(Registry& registry) {
  (void)registry.RegisterFilter("InterPodAffinity", Make<InterPodAffinityFilter>());
  (void)registry.RegisterScore("InterPodAffinity", Make<InterPodAffinityScore>());
  (void)registry.RegisterFilter("PodTopologySpread", Make<PodTopologySpreadFilter>());
  (void)registry.RegisterScore("PodTopologySpread", Make<PodTopologySpreadScore>());
}

}  // namespace kiso::scheduler
