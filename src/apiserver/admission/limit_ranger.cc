// LimitRanger admission: the LimitRanges of a pod's namespace give its
// containers their default limits and requests (a Container item's `default`
// and `defaultRequest`), then bound them: per Container and per Pod `min`
// (requests), `max` (limits) and `maxLimitRequestRatio`; a
// PersistentVolumeClaim's storage request by the PersistentVolumeClaim
// items' min and max. A refusal is upstream's 403 with each violation
// ("maximum cpu usage per Container is 1, but limit is 2").
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "api/quota.h"
#include "apiserver/admission/plugins.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

const api::ResourceType& LimitRanges() { return *api::FindResource("", "v1", "limitranges"); }

// Each (name, milli, as written) of a resource list.
std::vector<std::tuple<std::string, long double, const json::value*>> Entries(
    const json::value* list) {
  std::vector<std::tuple<std::string, long double, const json::value*>> out;
  if (!list || !list->is_object()) return out;
  for (const auto& [name, milli] : api::ParseResourceList(list))
    out.emplace_back(name, milli, &list->get_object().at(name));
  return out;
}

// Checks one container's (or the pod's summed) requests and limits against an item.
void CheckBounds(const json::object& item, std::string_view scope, const json::value* requests,
                 const json::value* limits, std::vector<std::string>& errors) {
  api::ResourceList req = api::ParseResourceList(requests);
  api::ResourceList lim = api::ParseResourceList(limits);
  auto text = [](const json::value* list, const std::string& name) -> const json::value* {
    return list && list->is_object() ? list->get_object().if_contains(name) : nullptr;
  };
  for (const auto& [name, min, written] : Entries(item.if_contains("min"))) {
    auto r = req.find(name);
    if (r == req.end()) {
      errors.push_back(fmt::format("minimum {} usage per {} is {}.  No request is specified", name,
                                   scope, api::FormatQuantityLike(min, written)));
    } else if (r->second < min) {
      errors.push_back(fmt::format("minimum {} usage per {} is {}, but request is {}", name, scope,
                                   api::FormatQuantityLike(min, written),
                                   api::FormatQuantityLike(r->second, text(requests, name))));
    }
  }
  for (const auto& [name, max, written] : Entries(item.if_contains("max"))) {
    auto l = lim.find(name);
    if (l == lim.end()) {
      errors.push_back(fmt::format("maximum {} usage per {} is {}.  No limit is specified", name,
                                   scope, api::FormatQuantityLike(max, written)));
    } else if (l->second > max) {
      errors.push_back(fmt::format("maximum {} usage per {} is {}, but limit is {}", name, scope,
                                   api::FormatQuantityLike(max, written),
                                   api::FormatQuantityLike(l->second, text(limits, name))));
    }
  }
  for (const auto& [name, ratio, written] : Entries(item.if_contains("maxLimitRequestRatio"))) {
    auto l = lim.find(name);
    auto r = req.find(name);
    if (l == lim.end() || r == req.end() || r->second <= 0) {
      errors.push_back(fmt::format(
          "{} max limit to request ratio per {} is {}, but no request or limit is specified", name,
          scope, api::FormatQuantityLike(ratio, written)));
      continue;
    }
    long double actual = l->second / r->second;
    if (actual * 1000 > ratio) {
      errors.push_back(fmt::format(
          "{} max limit to request ratio per {} is {}, but provided ratio "
          "is {:f}",
          name, scope, api::FormatQuantityLike(ratio, written), static_cast<double>(actual)));
    }
  }
}

// The pod's containers' requests or limits summed, as a resource list.
json::object PodSum(const json::object& pod, std::string_view which) {
  api::ResourceList sum;
  if (const auto* cs = api::Find(pod, {"spec", "containers"}); cs && cs->is_array()) {
    for (const auto& c : cs->get_array()) {
      for (const auto& [name, milli] : api::ParseResourceList(api::Find(c, {"resources", which})))
        sum[name] += milli;
    }
  }
  json::object out;
  for (const auto& [name, milli] : sum) out[name] = api::FormatQuantity(milli, false);
  return out;
}

class LimitRanger : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "LimitRanger"; }

  api::ApiStatus Mutate(const AdmissionRequest& r, json::object& pod) const override {
    const Target& t = *r.target;
    if (!IsPod(t) || r.operation != "CREATE") return std::nullopt;
    auto ranges = ListFromCache(*r.ctx, LimitRanges(), t.ns);
    if (ranges.empty()) return std::nullopt;
    auto* spec = pod.if_contains("spec");
    if (!spec || !spec->is_object()) return std::nullopt;
    for (const char* list : {"initContainers", "containers"}) {
      auto* cs = spec->get_object().if_contains(list);
      if (!cs || !cs->is_array()) continue;
      for (auto& c : cs->get_array()) {
        if (c.is_object()) Default(ranges, c.get_object());
      }
    }
    return std::nullopt;
  }

  api::ApiStatus Validate(const AdmissionRequest& r, const json::object& obj) const override {
    const Target& t = *r.target;
    bool pod = IsPod(t);
    bool claim = t.type->group.empty() && t.type->plural == "persistentvolumeclaims" &&
                 t.subresource.empty();
    if ((!pod && !claim) || r.operation != "CREATE") return std::nullopt;
    auto ranges = ListFromCache(*r.ctx, LimitRanges(), t.ns);
    if (ranges.empty()) return std::nullopt;
    std::vector<std::string> errors;
    for (const auto& lr : ranges) {
      const auto* items = api::Find(lr, {"spec", "limits"});
      if (!items || !items->is_array()) continue;
      for (const auto& item_v : items->get_array()) {
        if (!item_v.is_object()) continue;
        const auto& item = item_v.get_object();
        std::string_view type = api::GetString(item, {"type"});
        if (pod && type == "Container") {
          for (const char* list : {"initContainers", "containers"}) {
            const auto* cs = api::Find(obj, {"spec", list});
            if (!cs || !cs->is_array()) continue;
            for (const auto& c : cs->get_array()) {
              CheckBounds(item, "Container", api::Find(c, {"resources", "requests"}),
                          api::Find(c, {"resources", "limits"}), errors);
            }
          }
        } else if (pod && type == "Pod") {
          json::value requests = PodSum(obj, "requests"), limits = PodSum(obj, "limits");
          CheckBounds(item, "Pod", &requests, &limits, errors);
        } else if (claim && type == "PersistentVolumeClaim") {
          const auto* requests = api::Find(obj, {"spec", "resources", "requests"});
          const auto* limits = api::Find(obj, {"spec", "resources", "limits"});
          // A claim's bound applies to what it asks for (its request, or its limit).
          CheckBounds(item, "PersistentVolumeClaim", requests, limits ? limits : requests, errors);
        }
      }
    }
    if (errors.empty()) return std::nullopt;
    std::string why =
        errors.size() == 1 ? errors.front() : fmt::format("[{}]", fmt::join(errors, ", "));
    return AdmissionForbidden(t, std::string(api::GetString(obj, {"metadata", "name"})), why);
  }

 private:
  static bool IsPod(const Target& t) {
    return t.type->group.empty() && t.type->plural == "pods" && t.subresource.empty();
  }

  // A container's limits from `default` and requests from `defaultRequest`,
  // where it states none; a limit it states is its request when it states
  // no request (what upstream's defaulting did before admission).
  static void Default(const std::vector<json::object>& ranges, json::object& c) {
    json::value& res = c["resources"];
    if (!res.is_object()) res = json::object();
    auto& resources = res.get_object();
    auto list = [&](const char* which) -> json::object& {
      json::value& v = resources[which];
      if (!v.is_object()) v = json::object();
      return v.get_object();
    };
    if (const auto* limits = resources.if_contains("limits"); limits && limits->is_object()) {
      json::object given = limits->get_object();
      auto& requests = list("requests");
      for (const auto& [name, q] : given) {
        if (!requests.contains(name)) requests[name] = q;
      }
    }
    for (const auto& lr : ranges) {
      const auto* items = api::Find(lr, {"spec", "limits"});
      if (!items || !items->is_array()) continue;
      for (const auto& item : items->get_array()) {
        if (api::GetString(item, {"type"}) != "Container") continue;
        for (auto [from, to] : {std::pair{"default", "limits"}, {"defaultRequest", "requests"}}) {
          const auto* d = api::Find(item, {from});
          if (!d || !d->is_object() || d->get_object().empty()) continue;
          auto& target = list(to);
          for (const auto& [name, q] : d->get_object()) {
            if (!target.contains(name)) target[name] = q;
          }
        }
      }
    }
    for (const char* which : {"limits", "requests"}) {
      if (const auto* v = resources.if_contains(which);
          v && v->is_object() && v->get_object().empty())
        resources.erase(which);
    }
  }
};

}  // namespace

std::unique_ptr<AdmissionPlugin> NewLimitRanger() { return std::make_unique<LimitRanger>(); }

}  // namespace kiso::apiserver
