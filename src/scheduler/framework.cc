#include "scheduler/framework.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <random>

#include "api/object.h"
#include "api/validation.h"

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
  if (!node.pods.insert(pod.Key()).second) return;
  node.requested += pod.requests;
  node.nonzero_requested += NonZero(pod.requests);
  for (const auto& p : pod.host_ports) node.used_ports.insert(p);
}

void RemovePod(NodeInfo& node, const PodInfo& pod) {
  if (!node.pods.erase(pod.Key())) return;
  node.requested -= pod.requests;
  node.nonzero_requested -= NonZero(pod.requests);
  for (const auto& p : pod.host_ports) node.used_ports.erase(p);
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

PodInfo ParsePod(const json::value& pod) {
  PodInfo p;
  p.ns = api::GetString(pod, {"metadata", "namespace"});
  p.name = api::GetString(pod, {"metadata", "name"});
  p.uid = api::GetString(pod, {"metadata", "uid"});
  p.node_name = api::GetString(pod, {"spec", "nodeName"});
  p.scheduler_name = api::GetString(pod, {"spec", "schedulerName"});
  if (p.scheduler_name.empty()) p.scheduler_name = "default-scheduler";
  p.deleting = !api::GetString(pod, {"metadata", "deletionTimestamp"}).empty();
  // Requests: the containers' sum, or the largest init container if that is more (upstream's rule).
  Resources sum, init_max;
  if (const auto* cs = api::Find(pod, {"spec", "containers"}); cs && cs->is_array()) {
    for (const auto& c : cs->get_array()) {
      sum += ParseResources(api::Find(c, {"resources", "requests"}));
      if (const auto* ports = api::Find(c, {"ports"}); ports && ports->is_array()) {
        for (const auto& port : ports->get_array()) {
          const auto* hp = api::Find(port, {"hostPort"});
          if (!hp || !hp->is_int64() || hp->get_int64() <= 0) continue;
          std::string protocol(api::GetString(port, {"protocol"}));
          p.host_ports.push_back({protocol.empty() ? "TCP" : protocol,
                                  std::string(api::GetString(port, {"hostIP"})),
                                  static_cast<int>(hp->get_int64())});
        }
      }
    }
  }
  if (const auto* cs = api::Find(pod, {"spec", "initContainers"}); cs && cs->is_array()) {
    for (const auto& c : cs->get_array()) {
      Resources r = ParseResources(api::Find(c, {"resources", "requests"}));
      init_max.milli_cpu = std::max(init_max.milli_cpu, r.milli_cpu);
      init_max.memory = std::max(init_max.memory, r.memory);
      init_max.ephemeral_storage = std::max(init_max.ephemeral_storage, r.ephemeral_storage);
    }
  }
  p.requests.milli_cpu = std::max(sum.milli_cpu, init_max.milli_cpu);
  p.requests.memory = std::max(sum.memory, init_max.memory);
  p.requests.ephemeral_storage = std::max(sum.ephemeral_storage, init_max.ephemeral_storage);
  p.requests.pods = 1;
  p.node_selector = StringMap(api::Find(pod, {"spec", "nodeSelector"}));
  for (const auto& v : api::GetArray(pod, {"spec", "volumes"})) {
    if (auto c = api::GetString(v, {"persistentVolumeClaim", "claimName"}); !c.empty())
      p.claim_names.emplace_back(c);
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

Result<std::string> Framework::Schedule(const PodInfo& pod,
                                        const std::vector<const NodeInfo*>& nodes) const {
  if (nodes.empty()) return Status(Code::kUnavailable, "0/0 nodes are available: no nodes.");
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
  thread_local std::mt19937 rng(std::random_device{}());
  size_t examined = 0;
  for (; examined < n && feasible < enough; ++examined) {
    const NodeInfo& node = *candidates[(next_start + examined) % n];
    bool fits = true;
    for (const auto& f : filters_) {
      FilterResult r = f->Filter(pod, node);
      if (!r.fits) {
        for (const auto& reason : r.reasons) ++reasons[reason];
        fits = false;
        break;
      }
    }
    if (!fits) continue;
    ++feasible;
    int64_t score = 0;
    for (const auto& [plugin, weight] : scores_) score += weight * plugin->Score(pod, node);
    if (score > best_score) {
      best_score = score;
      best = node.name;
      ties = 1;
    } else if (score == best_score && rng() % ++ties == 0) {
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

}  // namespace kiso::scheduler
