#include "api/ingress_class.h"

#include "api/object.h"

namespace kiso::api {

bool IngressBelongsTo(const boost::json::value& ingress,
                      const std::vector<boost::json::value>& classes, std::string_view controller) {
  std::string_view named = GetString(ingress, {"spec", "ingressClassName"});
  if (named.empty())
    named = GetString(ingress, {"metadata", "annotations", "kubernetes.io/ingress.class"});
  for (const auto& c : classes) {
    if (GetString(c, {"spec", "controller"}) != controller) continue;
    if (named.empty() ? GetString(c, {"metadata", "annotations",
                                      "ingressclass.kubernetes.io/is-default-class"}) == "true"
                      : GetString(c, {"metadata", "name"}) == named)
      return true;
  }
  return false;
}

}  // namespace kiso::api
