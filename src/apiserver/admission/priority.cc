// Priority admission: a pod's spec.priority comes from its PriorityClass
// (spec.priorityClassName), or from the class marked globalDefault, or is 0;
// a pod may not set the number itself to anything else. The two system
// classes exist in every cluster (SeedPriorityClasses).
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/admission/plugins.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

const api::ResourceType& PriorityClasses() {
  return *api::FindResource("scheduling.k8s.io", "v1", "priorityclasses");
}

class PriorityAdmission : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "Priority"; }

  api::ApiStatus Mutate(const AdmissionRequest& r, json::object& pod) const override {
    const Target& t = *r.target;
    if (t.type->plural != "pods" || !t.subresource.empty() || r.operation != "CREATE")
      return std::nullopt;
    auto& spec = api::Child(pod, "spec");
    std::string class_name(api::GetString(pod, {"spec", "priorityClassName"}));
    std::optional<json::object> pc;
    if (!class_name.empty()) {
      pc = ReadFromCache(*r.ctx, PriorityClasses(), "", class_name);
      if (!pc) pc = ReadFromStore(*r.ctx, PriorityClasses(), "", class_name);
      if (!pc) {
        return AdmissionForbidden(
            t, std::string(api::GetString(pod, {"metadata", "name"})),
            fmt::format("no PriorityClass with name {} was found", class_name));
      }
    } else {
      // The global default, the oldest when several claim it (as upstream picks one).
      for (auto& c : ListFromCache(*r.ctx, PriorityClasses(), "")) {
        const auto* d = c.if_contains("globalDefault");
        if (!d || !d->is_bool() || !d->get_bool()) continue;
        if (!pc || api::GetString(c, {"metadata", "creationTimestamp"}) <
                       api::GetString(*pc, {"metadata", "creationTimestamp"}))
          pc = std::move(c);
      }
      if (pc) spec["priorityClassName"] = api::GetString(*pc, {"metadata", "name"});
    }
    int64_t priority = 0;
    if (pc) {
      if (const auto* v = pc->if_contains("value"); v && v->is_int64()) priority = v->get_int64();
    }
    if (const auto* given = spec.if_contains("priority"); given && !given->is_null()) {
      if (!given->is_int64() || given->get_int64() != priority) {
        return AdmissionForbidden(
            t, std::string(api::GetString(pod, {"metadata", "name"})),
            fmt::format("the integer value of priority ({}) must not be provided in pod spec; "
                        "priority admission controller computed {} from the given PriorityClass "
                        "name",
                        json::serialize(*given), priority));
      }
    }
    spec["priority"] = priority;
    if (pc) {
      if (const auto* p = pc->if_contains("preemptionPolicy"); p && p->is_string())
        spec["preemptionPolicy"] = *p;
    }
    return std::nullopt;
  }

  // At most one class may be the global default.
  api::ApiStatus Validate(const AdmissionRequest& r, const json::object& obj) const override {
    const Target& t = *r.target;
    if (t.type->plural != "priorityclasses" || r.operation == "DELETE") return std::nullopt;
    const auto* d = obj.if_contains("globalDefault");
    if (!d || !d->is_bool() || !d->get_bool()) return std::nullopt;
    std::string_view self = api::GetString(obj, {"metadata", "name"});
    for (const auto& c : ListFromCache(*r.ctx, PriorityClasses(), "")) {
      const auto* other = c.if_contains("globalDefault");
      std::string_view name = api::GetString(c, {"metadata", "name"});
      if (name != self && other && other->is_bool() && other->get_bool()) {
        return AdmissionForbidden(
            t, std::string(self),
            fmt::format("PriorityClass {} is already marked as default. Only one default can "
                        "exist",
                        name));
      }
    }
    return std::nullopt;
  }
};

}  // namespace

std::unique_ptr<AdmissionPlugin> NewPriorityAdmission() {
  return std::make_unique<PriorityAdmission>();
}

}  // namespace kiso::apiserver
