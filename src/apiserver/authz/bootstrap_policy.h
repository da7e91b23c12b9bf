// The roles and bindings every cluster starts with (kube-apiserver's RBAC
// bootstrap policy): cluster-admin for system:masters; the user-facing
// admin, edit and view, aggregated from system:aggregate-to-*; discovery,
// basic-user and public-info for everyone; issuer discovery for service
// accounts; the node bootstrapper role for bootstrap tokens. Written at
// start-up when missing; roles whose `rbac.authorization.kubernetes.io/autoupdate`
// annotation is not "false" get back any default rule they lost.
#pragma once

#include <boost/json/object.hpp>
#include <vector>

namespace kiso::apiserver {

std::vector<boost::json::object> BootstrapClusterRoles();
std::vector<boost::json::object> BootstrapClusterRoleBindings();

}  // namespace kiso::apiserver
