#include "api/quota.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <span>

#include "api/object.h"
#include "api/validation.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

constexpr std::string_view kStorageClassSuffix = ".storageclass.storage.k8s.io/";

// Compute resources whose bare name means its request (upstream's cpu, memory).
bool IsBareComputeName(std::string_view r) {
  return r == "cpu" || r == "memory" || r == "ephemeral-storage";
}

// A quantity field's value in milli-units: strings as quantities, numbers as
// they are (YAML's `cpu: 1`); nullopt otherwise.
std::optional<long double> Milli(const json::value& v) {
  long double milli = 0;
  if (v.is_string()) {
    if (ParseQuantityMilli(v.get_string(), &milli)) return milli;
    return std::nullopt;
  }
  if (v.is_number()) return static_cast<long double>(v.to_number<double>()) * 1000;
  return std::nullopt;
}

// `count/<plural>` for the core group, `count/<plural>.<group>` otherwise.
std::string CountName(const ResourceType& type) {
  return type.group.empty() ? "count/" + type.plural
                            : fmt::format("count/{}.{}", type.plural, type.group);
}

}  // namespace

bool IsSidecar(const json::value& container) {
  const auto* policy = Find(container, {"restartPolicy"});
  return policy && policy->is_string() && policy->get_string() == "Always";
}

ResourceList PodResources(const json::object& pod, std::string_view which) {
  auto of = [&](const json::value& c) {
    ResourceList out;
    const auto* list = Find(c, {"resources", which});
    if (!list || !list->is_object()) return out;
    for (const auto& [name, q] : list->get_object()) {
      if (auto m = Milli(q)) out[std::string(name)] += *m;
    }
    return out;
  };
  auto add = [](ResourceList& to, const ResourceList& from) {
    for (const auto& [name, m] : from) to[name] += m;
  };
  ResourceList sum, init_max, sidecars;
  if (const auto* cs = Find(pod, {"spec", "containers"}); cs && cs->is_array()) {
    for (const auto& c : cs->get_array()) add(sum, of(c));
  }
  if (const auto* cs = Find(pod, {"spec", "initContainers"}); cs && cs->is_array()) {
    for (const auto& c : cs->get_array()) {
      ResourceList need = of(c);
      if (IsSidecar(c)) {
        add(sum, need);  // It keeps running beside the app containers.
        add(sidecars, need);
        need = sidecars;
      } else {
        add(need, sidecars);  // It runs beside the sidecars started before it.
      }
      for (const auto& [name, m] : need) {
        auto& slot = init_max[name];
        slot = std::max(slot, m);
      }
    }
  }
  for (const auto& [name, m] : init_max) {
    auto& slot = sum[name];
    slot = std::max(slot, m);
  }
  // The overhead adds to every request (a pod that requests no memory still
  // needs its runtime's), and to the limits that are set (no limit stays none).
  if (const auto* overhead = Find(pod, {"spec", "overhead"}); overhead && overhead->is_object()) {
    for (const auto& [name, q] : overhead->get_object()) {
      if (auto m = Milli(q); m && (which == "requests" || sum.contains(std::string_view(name))))
        sum[std::string(name)] += *m;
    }
  }
  return sum;
}

namespace {

bool IsTerminal(const json::object& pod) {
  auto phase = GetString(pod, {"status", "phase"});
  return phase == "Succeeded" || phase == "Failed";
}

bool IsBestEffort(const json::object& pod) {
  const auto* spec = pod.if_contains("spec");
  return !spec || !spec->is_object() || PodQosClass(spec->get_object()) == "BestEffort";
}

// One scope (with its operator and values, for a scopeSelector term).
bool ScopeMatches(std::string_view scope, std::string_view op, const json::value* values,
                  const json::object& pod) {
  if (scope == "Terminating") return Find(pod, {"spec", "activeDeadlineSeconds"}) != nullptr;
  if (scope == "NotTerminating") return Find(pod, {"spec", "activeDeadlineSeconds"}) == nullptr;
  if (scope == "BestEffort") return IsBestEffort(pod);
  if (scope == "NotBestEffort") return !IsBestEffort(pod);
  if (scope == "PriorityClass") {
    std::string_view cls = GetString(pod, {"spec", "priorityClassName"});
    bool in = false;
    if (values && values->is_array()) {
      for (const auto& v : values->get_array()) in = in || (v.is_string() && v.get_string() == cls);
    }
    if (op == "In") return in;
    if (op == "NotIn") return !in;
    if (op == "DoesNotExist") return cls.empty();
    return !cls.empty();  // Exists, and the plain scope.
  }
  return false;  // CrossNamespacePodAffinity and scopes kiso does not know select nothing.
}

}  // namespace

ResourceList ParseResourceList(const json::value* list) {
  ResourceList out;
  if (!list || !list->is_object()) return out;
  for (const auto& [name, q] : list->get_object()) {
    if (auto m = Milli(q)) out[std::string(name)] = *m;
  }
  return out;
}

ResourceList QuotaUsage(const ResourceType& type, const json::object& obj) {
  ResourceList out;
  if (type.group.empty() && type.plural == "pods") {
    if (IsTerminal(obj)) return out;
    out["pods"] = 1000;
    for (const auto& [name, m] : PodResources(obj, "requests")) {
      out["requests." + name] = m;
      if (IsBareComputeName(name)) out[name] = m;
    }
    for (const auto& [name, m] : PodResources(obj, "limits")) out["limits." + name] = m;
  } else if (type.group.empty() && type.plural == "services") {
    out["services"] = 1000;
    auto kind = GetString(obj, {"spec", "type"});
    if (kind == "LoadBalancer") out["services.loadbalancers"] = 1000;
    if (kind == "NodePort" || kind == "LoadBalancer") {
      long double ports = 0;
      if (const auto* ps = Find(obj, {"spec", "ports"}); ps && ps->is_array())
        ports = static_cast<long double>(ps->get_array().size());
      out["services.nodeports"] = ports * 1000;
    }
  } else if (type.group.empty() && type.plural == "persistentvolumeclaims") {
    out["persistentvolumeclaims"] = 1000;
    long double storage = 0;
    if (const auto* s = Find(obj, {"spec", "resources", "requests", "storage"})) {
      if (auto m = Milli(*s)) storage = *m;
    }
    out["requests.storage"] = storage;
    if (auto cls = GetString(obj, {"spec", "storageClassName"}); !cls.empty()) {
      out[fmt::format("{}{}requests.storage", cls, kStorageClassSuffix)] = storage;
      out[fmt::format("{}{}persistentvolumeclaims", cls, kStorageClassSuffix)] = 1000;
    }
  } else if (type.group.empty() &&
             (type.plural == "configmaps" || type.plural == "secrets" ||
              type.plural == "replicationcontrollers" || type.plural == "resourcequotas")) {
    out[type.plural] = 1000;
  }
  out[CountName(type)] = 1000;
  return out;
}

bool QuotaTracks(const ResourceType& type, std::string_view resource) {
  if (resource == CountName(type)) return true;
  if (!type.group.empty()) return false;
  if (type.plural == "pods") {
    return resource == "pods" || IsBareComputeName(resource) || resource.starts_with("requests.") ||
           resource.starts_with("limits.");
  }
  if (type.plural == "services") return resource.starts_with("services");
  if (type.plural == "persistentvolumeclaims") {
    return resource == "persistentvolumeclaims" || resource == "requests.storage" ||
           resource.find(kStorageClassSuffix) != std::string_view::npos;
  }
  return resource == type.plural;
}

std::vector<const ResourceType*> QuotaKinds(const ResourceList& hard) {
  std::vector<const ResourceType*> out;
  auto add = [&](const ResourceType* type) {
    if (!type || std::find(out.begin(), out.end(), type) != out.end()) return;
    for (const auto& [name, amount] : hard) {
      if (QuotaTracks(*type, name)) {
        out.push_back(type);
        return;
      }
    }
  };
  for (const char* plural : {"pods", "services", "persistentvolumeclaims", "configmaps", "secrets",
                             "replicationcontrollers", "resourcequotas"})
    add(FindResource("", "v1", plural));
  for (const auto& [name, amount] : hard) {
    std::string_view r = name;
    if (!r.starts_with("count/")) continue;
    r.remove_prefix(6);
    size_t dot = r.find('.');
    std::string_view plural = r.substr(0, dot);
    std::string_view group = dot == std::string_view::npos ? "" : r.substr(dot + 1);
    const ResourceType* best = nullptr;  // The group's preferred version of the kind.
    for (const ResourceType* t : AllResources()) {
      if (t->group == group && t->plural == plural &&
          (!best || VersionPreferred(t->version, best->version)))
        best = t;
    }
    add(best);
  }
  return out;
}

bool QuotaMatches(const json::object& quota, const ResourceType& type, const json::object& obj) {
  const auto* scopes = Find(quota, {"spec", "scopes"});
  const auto* selector = Find(quota, {"spec", "scopeSelector", "matchExpressions"});
  bool scoped = (scopes && scopes->is_array() && !scopes->get_array().empty()) ||
                (selector && selector->is_array() && !selector->get_array().empty());
  if (!scoped) return true;
  if (!type.group.empty() || type.plural != "pods") return false;
  if (scopes && scopes->is_array()) {
    for (const auto& s : scopes->get_array()) {
      if (!s.is_string() || !ScopeMatches(s.get_string(), "Exists", nullptr, obj)) return false;
    }
  }
  if (selector && selector->is_array()) {
    for (const auto& term : selector->get_array()) {
      if (!ScopeMatches(GetString(term, {"scopeName"}), GetString(term, {"operator"}),
                        Find(term, {"values"}), obj))
        return false;
    }
  }
  return true;
}

std::vector<std::string> QuotaMissingResources(const json::object& quota, const json::object& pod) {
  std::vector<std::string> out;
  const auto* hard = Find(quota, {"spec", "hard"});
  if (!hard || !hard->is_object()) return out;
  for (const auto& [key, q] : hard->get_object()) {
    std::string_view r = key;
    std::string which = "requests", name(r);
    if (r.starts_with("requests.")) {
      name = r.substr(9);
    } else if (r.starts_with("limits.")) {
      which = "limits";
      name = r.substr(7);
    } else if (!IsBareComputeName(r)) {
      continue;
    }
    if (!IsBareComputeName(name)) continue;  // Extended resources are not required.
    std::vector<std::string> lacking;
    for (const char* list : {"initContainers", "containers"}) {
      const auto* cs = Find(pod, {"spec", list});
      if (!cs || !cs->is_array()) continue;
      for (const auto& c : cs->get_array()) {
        const auto* res = Find(c, {"resources", which, name});
        if (!res) lacking.emplace_back(GetString(c, {"name"}));
      }
    }
    if (!lacking.empty()) out.push_back(fmt::format("{} for: {}", r, fmt::join(lacking, ",")));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsBinaryQuantity(std::string_view text) { return text.size() >= 2 && text.back() == 'i'; }

std::string FormatQuantityLike(long double milli, const json::value* as_written) {
  return FormatQuantity(
      milli, as_written && as_written->is_string() && IsBinaryQuantity(as_written->get_string()));
}

std::string FormatQuantity(long double milli, bool binary) {
  long double rounded = std::round(milli);
  if (std::fmod(rounded, 1000.0L) != 0) return fmt::format("{}m", SaturatedInt64(rounded));
  long double whole = rounded / 1000;
  if (whole == 0) return "0";
  static constexpr std::pair<std::string_view, long double> kBinary[] = {
      {"Ei", 1152921504606846976.0L}, {"Pi", 1125899906842624.0L}, {"Ti", 1099511627776.0L},
      {"Gi", 1073741824.0L},          {"Mi", 1048576.0L},          {"Ki", 1024.0L}};
  static constexpr std::pair<std::string_view, long double> kDecimal[] = {
      {"E", 1e18L}, {"P", 1e15L}, {"T", 1e12L}, {"G", 1e9L}, {"M", 1e6L}, {"k", 1e3L}};
  for (const auto& [suffix, factor] : binary ? std::span(kBinary) : std::span(kDecimal)) {
    if (std::fmod(whole, factor) == 0)
      return fmt::format("{}{}", SaturatedInt64(whole / factor), suffix);
  }
  return fmt::format("{}", SaturatedInt64(whole));
}

}  // namespace kiso::api
