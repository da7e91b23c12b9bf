// DefaultIngressClass admission: an Ingress created without a class (neither
// spec.ingressClassName nor the legacy kubernetes.io/ingress.class
// annotation) gets the IngressClass annotated
// ingressclass.kubernetes.io/is-default-class=true (the newest, when several are).
#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/admission/plugins.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

class DefaultIngressClass : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "DefaultIngressClass"; }

  api::ApiStatus Mutate(const AdmissionRequest& r, json::object& ing) const override {
    const Target& t = *r.target;
    if (t.type->plural != "ingresses" || !t.subresource.empty() || r.operation != "CREATE")
      return std::nullopt;
    if (!api::GetString(ing, {"spec", "ingressClassName"}).empty()) return std::nullopt;
    if (api::Find(ing, {"metadata", "annotations", "kubernetes.io/ingress.class"}))
      return std::nullopt;
    const api::ResourceType* classes =
        api::FindResource("networking.k8s.io", "v1", "ingressclasses");
    std::string chosen, chosen_time;
    for (const auto& c : ListFromCache(*r.ctx, *classes, "")) {
      if (api::GetString(c, {"metadata", "annotations",
                             "ingressclass.kubernetes.io/is-default-class"}) != "true")
        continue;
      std::string created(api::GetString(c, {"metadata", "creationTimestamp"}));
      if (chosen.empty() || created > chosen_time) {
        chosen = api::GetString(c, {"metadata", "name"});
        chosen_time = created;
      }
    }
    if (!chosen.empty()) api::Child(ing, "spec")["ingressClassName"] = chosen;
    return std::nullopt;
  }
};

}  // namespace

std::unique_ptr<AdmissionPlugin> NewDefaultIngressClass() {
  return std::make_unique<DefaultIngressClass>();
}

}  // namespace kiso::apiserver
