// RuntimeClass admission (upstream's plugin of that name): a pod naming a
// RuntimeClass (spec.runtimeClassName) gets the class's overhead as its
// spec.overhead and the class's scheduling constraints merged into its own
// (nodeSelector, which may not conflict, and tolerations), so that the
// scheduler places it on a node that runs the class's handler and counts
// what the handler costs beside the containers. A class that does not exist
// refuses the pod, as does an overhead the pod sets itself that is not its
// class's.
//
// The seed's decision function (07.8.5), kiso's own: a namespace labelled
// `kiso.dev/isolation: container | sandbox | vm` gives its pods that name no
// RuntimeClass the paradigm's class (none: the node's default runtime; `wasm`;
// `vm`). A pod run by a RuntimeClass, named or given, is annotated
// `kiso.dev/isolation` with its paradigm and why (kubectl describe shows it).
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "api/quota.h"
#include "apiserver/admission/plugins.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

const api::ResourceType& RuntimeClasses() {
  return *api::FindResource("node.k8s.io", "v1", "runtimeclasses");
}

constexpr std::string_view kIsolation = "kiso.dev/isolation";

// The paradigm a handler's pods run in.
std::string_view ParadigmOf(std::string_view handler) {
  if (handler == "wasm") return "sandbox";
  if (handler == "vm") return "vm";
  return "container";
}

bool IsPodCreate(const AdmissionRequest& r) {
  const Target& t = *r.target;
  return t.type->plural == "pods" && t.subresource.empty() && r.operation == "CREATE";
}

class RuntimeClassAdmission : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "RuntimeClass"; }

  api::ApiStatus Mutate(const AdmissionRequest& r, json::object& pod) const override {
    if (!IsPodCreate(r)) return std::nullopt;
    std::string why;
    if (auto status = Decide(r, pod, &why); status) return status;
    std::optional<json::object> rc;
    if (auto status = Lookup(r, pod, rc); status) return status;
    if (!rc) return std::nullopt;
    auto& spec = api::Child(pod, "spec");
    if (why.empty()) {
      why = fmt::format("RuntimeClass {} named by the pod",
                        api::GetString(spec, {"runtimeClassName"}));
    }
    api::Child(api::Child(pod, "metadata"), "annotations")[kIsolation] =
        fmt::format("{} ({})", ParadigmOf(api::GetString(*rc, {"handler"})), why);
    // The class's overhead where the pod has none (one of its own is Validate's to judge).
    if (const auto* fixed = api::Find(*rc, {"overhead", "podFixed"}); fixed && fixed->is_object()) {
      const auto* own = spec.if_contains("overhead");
      if (!own || own->is_null()) spec["overhead"] = *fixed;
    }
    if (const auto* selector = api::Find(*rc, {"scheduling", "nodeSelector"});
        selector && selector->is_object() && !selector->get_object().empty()) {
      auto& own = api::Child(spec, "nodeSelector");
      for (const auto& [key, value] : selector->get_object()) {
        if (const auto* have = own.if_contains(key); have && *have != value) {
          return Refuse(r, pod,
                        fmt::format("conflict: runtimeClass.scheduling.nodeSelector[{}] = {}; "
                                    "pod.spec.nodeSelector[{}] = {}",
                                    std::string_view(key), api::GetString(value, {}),
                                    std::string_view(key), api::GetString(*have, {})));
        }
        own[key] = value;
      }
    }
    if (const auto* tolerations = api::Find(*rc, {"scheduling", "tolerations"});
        tolerations && tolerations->is_array() && !tolerations->get_array().empty()) {
      auto& own = spec["tolerations"];
      if (!own.is_array()) own = json::array();
      for (const auto& t : tolerations->get_array()) {
        bool have = false;
        for (const auto& o : own.get_array()) have = have || o == t;
        if (!have) own.get_array().push_back(t);
      }
    }
    return std::nullopt;
  }

  // A pod that sets an overhead its class does not define (or names no class).
  api::ApiStatus Validate(const AdmissionRequest& r, const json::object& pod) const override {
    if (!IsPodCreate(r)) return std::nullopt;
    const auto* own = api::Find(pod, {"spec", "overhead"});
    if (!own || own->is_null()) return std::nullopt;
    std::optional<json::object> rc;
    if (auto status = Lookup(r, pod, rc); status) return status;
    const auto* fixed = rc ? api::Find(*rc, {"overhead", "podFixed"}) : nullptr;
    if (!fixed || !fixed->is_object()) {
      return Refuse(r, pod,
                    "pod rejected: Pod Overhead set without corresponding RuntimeClass defined "
                    "Overhead");
    }
    if (api::ParseResourceList(own) != api::ParseResourceList(fixed)) {
      return Refuse(r, pod,
                    "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead");
    }
    return std::nullopt;
  }

 private:
  // The decision function: a pod naming no RuntimeClass in a namespace
  // labelled kiso.dev/isolation gets its paradigm's class; `why` says so.
  static api::ApiStatus Decide(const AdmissionRequest& r, json::object& pod, std::string* why) {
    auto& spec = api::Child(pod, "spec");
    if (!api::GetString(spec, {"runtimeClassName"}).empty()) return std::nullopt;
    const api::ResourceType& namespaces = *api::FindResource("", "v1", "namespaces");
    auto ns = ReadFromCache(*r.ctx, namespaces, "", r.target->ns);
    if (!ns) ns = ReadFromStore(*r.ctx, namespaces, "", r.target->ns);
    std::string_view paradigm = ns ? api::GetString(*ns, {"metadata", "labels", kIsolation}) : "";
    if (paradigm.empty()) return std::nullopt;
    std::string label =
        fmt::format("namespace {}'s label {}={}", r.target->ns, kIsolation, paradigm);
    if (paradigm == "container") {
      api::Child(api::Child(pod, "metadata"), "annotations")[kIsolation] =
          fmt::format("container (the node's default runtime, from {})", label);
      return std::nullopt;
    }
    if (paradigm != "sandbox" && paradigm != "vm") {
      return Refuse(
          r, pod,
          fmt::format("pod rejected: {}: the isolation must be container, sandbox or vm", label));
    }
    std::string_view cls = paradigm == "sandbox" ? "wasm" : "vm";
    spec["runtimeClassName"] = cls;
    *why = fmt::format("RuntimeClass {}, from {}", cls, label);
    return std::nullopt;
  }

  // The pod's RuntimeClass in `rc` (none when it names none); a refusal when
  // it names one that does not exist.
  static api::ApiStatus Lookup(const AdmissionRequest& r, const json::object& pod,
                               std::optional<json::object>& rc) {
    const auto* name = api::Find(pod, {"spec", "runtimeClassName"});
    if (!name || !name->is_string() || name->get_string().empty()) return std::nullopt;
    std::string class_name(name->get_string());
    rc = ReadFromCache(*r.ctx, RuntimeClasses(), "", class_name);
    if (!rc) rc = ReadFromStore(*r.ctx, RuntimeClasses(), "", class_name);
    if (!rc)
      return Refuse(r, pod, fmt::format("pod rejected: RuntimeClass {:?} not found", class_name));
    return std::nullopt;
  }

  static api::ApiStatus Refuse(const AdmissionRequest& r, const json::object& pod,
                               const std::string& why) {
    return AdmissionForbidden(*r.target, std::string(api::GetString(pod, {"metadata", "name"})),
                              why);
  }
};

}  // namespace

std::unique_ptr<AdmissionPlugin> NewRuntimeClassAdmission() {
  return std::make_unique<RuntimeClassAdmission>();
}

}  // namespace kiso::apiserver
