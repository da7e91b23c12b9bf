// Which controller an Ingress belongs to (networking.k8s.io/v1): the class it
// names in spec.ingressClassName, else in the legacy kubernetes.io/ingress.class
// annotation; an Ingress naming none belongs to the controller of the default
// IngressClass (annotated ingressclass.kubernetes.io/is-default-class=true).
#pragma once

#include <boost/json/value.hpp>
#include <string_view>
#include <vector>

namespace kiso::api {

// The `spec.controller` of kiso's built-in ingress controller's classes.
inline constexpr std::string_view kKisoIngressController = "kiso.dev/ingress-controller";

// Whether `ingress` belongs to `controller`, given every IngressClass.
bool IngressBelongsTo(const boost::json::value& ingress,
                      const std::vector<boost::json::value>& classes, std::string_view controller);

}  // namespace kiso::api
