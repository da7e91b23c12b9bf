#include "apiserver/authz/bootstrap_policy.h"

#include <boost/json.hpp>
#include <string>

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

using Strings = std::vector<std::string>;

json::array Array(const Strings& v) {
  json::array out;
  for (const auto& s : v) out.emplace_back(s);
  return out;
}

json::object Rule(const Strings& verbs, const Strings& groups, const Strings& resources) {
  return json::object{
      {"verbs", Array(verbs)}, {"apiGroups", Array(groups)}, {"resources", Array(resources)}};
}

json::object UrlRule(const Strings& verbs, const Strings& urls) {
  return json::object{{"verbs", Array(verbs)}, {"nonResourceURLs", Array(urls)}};
}

json::object Metadata(const std::string& name, json::object labels = {}) {
  labels["kubernetes.io/bootstrapping"] = "rbac-defaults";
  return json::object{
      {"name", name},
      {"labels", std::move(labels)},
      {"annotations", json::object{{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}};
}

json::object ClusterRole(const std::string& name, json::array rules, json::object labels = {}) {
  return json::object{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                      {"kind", "ClusterRole"},
                      {"metadata", Metadata(name, std::move(labels))},
                      {"rules", std::move(rules)}};
}

// A role whose rules are those of every ClusterRole labelled `label`=true.
json::object Aggregated(const std::string& name, const std::string& label,
                        json::object labels = {}) {
  json::object role = ClusterRole(name, json::array(), std::move(labels));
  role["aggregationRule"] =
      json::object{{"clusterRoleSelectors",
                    json::array{json::object{{"matchLabels", json::object{{label, "true"}}}}}}};
  return role;
}

json::object Binding(const std::string& name, const std::string& role,
                     const std::vector<std::pair<std::string, std::string>>& subjects) {
  json::array s;
  for (const auto& [kind, subject] : subjects) {
    s.push_back(
        json::object{{"kind", kind}, {"apiGroup", "rbac.authorization.k8s.io"}, {"name", subject}});
  }
  return json::object{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                      {"kind", "ClusterRoleBinding"},
                      {"metadata", Metadata(name)},
                      {"roleRef", json::object{{"apiGroup", "rbac.authorization.k8s.io"},
                                               {"kind", "ClusterRole"},
                                               {"name", role}}},
                      {"subjects", std::move(s)}};
}

const Strings kRead = {"get", "list", "watch"};
const Strings kWrite = {"create", "delete", "deletecollection", "patch", "update"};

}  // namespace

std::vector<json::object> BootstrapClusterRoles() {
  std::vector<json::object> out;
  out.push_back(
      ClusterRole("cluster-admin", json::array{Rule({"*"}, {"*"}, {"*"}), UrlRule({"*"}, {"*"})}));
  out.push_back(Aggregated("admin", "rbac.authorization.k8s.io/aggregate-to-admin"));
  out.push_back(Aggregated("edit", "rbac.authorization.k8s.io/aggregate-to-edit",
                           json::object{{"rbac.authorization.k8s.io/aggregate-to-admin", "true"}}));
  out.push_back(Aggregated("view", "rbac.authorization.k8s.io/aggregate-to-view",
                           json::object{{"rbac.authorization.k8s.io/aggregate-to-edit", "true"}}));

  // What admin adds to edit: roles and bindings in the namespace, and access reviews.
  out.push_back(ClusterRole(
      "system:aggregate-to-admin",
      json::array{
          Rule(kWrite, {""}, {"namespaces"}),
          Rule({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
               {"rbac.authorization.k8s.io"}, {"rolebindings", "roles"}),
          Rule({"create"}, {"authorization.k8s.io"}, {"localsubjectaccessreviews"})},
      json::object{{"rbac.authorization.k8s.io/aggregate-to-admin", "true"}}));
  // What edit adds to view: writes to workloads and their configuration, secrets, streams.
  out.push_back(ClusterRole(
      "system:aggregate-to-edit",
      json::array{Rule({"impersonate"}, {""}, {"serviceaccounts"}),
                  Rule(kWrite, {""},
                       {"pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"}),
                  Rule({"create"}, {""}, {"pods/eviction"}),
                  Rule(kWrite, {""},
                       {"configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                        "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                        "services/proxy"}),
                  Rule({"create"}, {""}, {"serviceaccounts/token"}),
                  Rule(kWrite, {"apps"},
                       {"daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                        "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"}),
                  Rule(kWrite, {"autoscaling"}, {"horizontalpodautoscalers"}),
                  Rule(kWrite, {"batch"}, {"cronjobs", "jobs"}),
                  Rule(kWrite, {"networking.k8s.io"}, {"ingresses", "networkpolicies"}),
                  Rule(kWrite, {"policy"}, {"poddisruptionbudgets"}),
                  Rule(kWrite, {"coordination.k8s.io"}, {"leases"}),
                  Rule(kWrite, {"discovery.k8s.io"}, {"endpointslices"}),
                  Rule(kRead, {""}, {"secrets"})},
      json::object{{"rbac.authorization.k8s.io/aggregate-to-edit", "true"}}));
  out.push_back(ClusterRole(
      "system:aggregate-to-view",
      json::array{
          Rule(kRead, {""},
               {"configmaps", "endpoints", "persistentvolumeclaims",
                "persistentvolumeclaims/status", "pods", "replicationcontrollers",
                "replicationcontrollers/scale", "serviceaccounts", "services", "services/status"}),
          Rule(kRead, {""},
               {"bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"}),
          Rule(kRead, {""}, {"namespaces"}), Rule(kRead, {"discovery.k8s.io"}, {"endpointslices"}),
          Rule(kRead, {"apps"},
               {"controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
                "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status"}),
          Rule(kRead, {"autoscaling"},
               {"horizontalpodautoscalers", "horizontalpodautoscalers/status"}),
          Rule(kRead, {"batch"}, {"cronjobs", "cronjobs/status", "jobs", "jobs/status"}),
          Rule(kRead, {"policy"}, {"poddisruptionbudgets", "poddisruptionbudgets/status"}),
          Rule(kRead, {"networking.k8s.io"}, {"ingresses", "ingresses/status", "networkpolicies"}),
          Rule(kRead, {"coordination.k8s.io"}, {"leases"})},
      json::object{{"rbac.authorization.k8s.io/aggregate-to-view", "true"}}));

  out.push_back(ClusterRole(
      "system:discovery",
      json::array{
          UrlRule({"get"}, {"/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                            "/openapi/*", "/readyz", "/version", "/version/"})}));
  out.push_back(ClusterRole(
      "system:basic-user",
      json::array{Rule({"create"}, {"authorization.k8s.io"},
                       {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}),
                  Rule({"create"}, {"authentication.k8s.io"}, {"selfsubjectreviews"})}));
  out.push_back(ClusterRole(
      "system:public-info-viewer",
      json::array{UrlRule({"get"}, {"/healthz", "/livez", "/readyz", "/version", "/version/"})}));
  out.push_back(ClusterRole(
      "system:service-account-issuer-discovery",
      json::array{UrlRule(
          {"get"}, {"/.well-known/openid-configuration", "/.well-known/openid-configuration/",
                    "/openid/v1/jwks", "/openid/v1/jwks/"})}));
  out.push_back(
      ClusterRole("system:node-bootstrapper",
                  json::array{Rule({"create", "get", "list", "watch"}, {"certificates.k8s.io"},
                                   {"certificatesigningrequests"})}));
  out.push_back(ClusterRole("system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                            json::array{Rule({"create"}, {"certificates.k8s.io"},
                                             {"certificatesigningrequests/nodeclient"})}));
  out.push_back(ClusterRole("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                            json::array{Rule({"create"}, {"certificates.k8s.io"},
                                             {"certificatesigningrequests/selfnodeclient"})}));
  out.push_back(
      ClusterRole("system:monitoring",
                  json::array{UrlRule({"get"}, {"/healthz", "/healthz/*", "/livez", "/livez/*",
                                                "/metrics", "/readyz", "/readyz/*"})}));
  // Every node runs the built-in ingress controller: it reads Ingresses and
  // their classes, and the Services and EndpointSlices they route to.
  out.push_back(ClusterRole(
      "kiso:ingress-controller",
      json::array{
          Rule({"get", "list", "watch"}, {"networking.k8s.io"}, {"ingresses", "ingressclasses"}),
          Rule({"get", "list", "watch"}, {""}, {"services"}),
          Rule({"get", "list", "watch"}, {"discovery.k8s.io"}, {"endpointslices"})}));
  // Every node enforces NetworkPolicy (K3s' kube-router policy controller's
  // role): it reads the policies, every pod and namespace (peers are anywhere)
  // and the cluster DNS's Endpoints (a peer that is not a pod).
  out.push_back(ClusterRole(
      "kiso:network-policy-controller",
      json::array{Rule({"get", "list", "watch"}, {"networking.k8s.io"}, {"networkpolicies"}),
                  Rule({"get", "list", "watch"}, {""}, {"pods", "namespaces", "endpoints"})}));
  // What an aggregated API server is bound to, to delegate authentication and
  // authorization of the requests the front proxy forwards back to this server.
  out.push_back(ClusterRole(
      "system:auth-delegator",
      json::array{Rule({"create"}, {"authentication.k8s.io"}, {"tokenreviews"}),
                  Rule({"create"}, {"authorization.k8s.io"}, {"subjectaccessreviews"})}));
  // metrics-server's: whoever may view a namespace may read its metrics.
  out.push_back(ClusterRole(
      "system:aggregated-metrics-reader",
      json::array{Rule({"get", "list", "watch"}, {"metrics.k8s.io"}, {"pods", "nodes"})},
      json::object{{"rbac.authorization.k8s.io/aggregate-to-view", "true"},
                   {"rbac.authorization.k8s.io/aggregate-to-edit", "true"},
                   {"rbac.authorization.k8s.io/aggregate-to-admin", "true"}}));
  // Every node runs the local-path provisioner (K3s' local-path-provisioner-role):
  // it makes and deletes the volumes of claims bound on it.
  out.push_back(ClusterRole(
      "kiso:local-path-provisioner",
      json::array{Rule({"get", "list", "watch", "create", "delete"}, {""}, {"persistentvolumes"}),
                  Rule({"get", "list", "watch"}, {""}, {"persistentvolumeclaims"}),
                  Rule({"get", "list", "watch"}, {"storage.k8s.io"}, {"storageclasses"})}));
  // What an agent on another machine also needs to serve Ingresses' own
  // certificates: every namespace's Secrets (RBAC cannot narrow that to TLS
  // ones). Not bound: that would undo the Node authorizer's confinement of
  // nodes to their pods' Secrets; an operator who wants HTTPS on every node
  // binds it to system:nodes (Traefik's ClusterRole in K3s has the same read).
  out.push_back(ClusterRole("kiso:ingress-tls-reader",
                            json::array{Rule({"get", "list", "watch"}, {""}, {"secrets"})}));
  return out;
}

std::vector<json::object> BootstrapClusterRoleBindings() {
  return {
      Binding("cluster-admin", "cluster-admin", {{"Group", "system:masters"}}),
      Binding("system:discovery", "system:discovery", {{"Group", "system:authenticated"}}),
      Binding("system:basic-user", "system:basic-user", {{"Group", "system:authenticated"}}),
      Binding("system:public-info-viewer", "system:public-info-viewer",
              {{"Group", "system:authenticated"}, {"Group", "system:unauthenticated"}}),
      Binding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
              {{"Group", "system:serviceaccounts"}}),
      Binding("system:monitoring", "system:monitoring", {{"Group", "system:monitoring"}}),
      // Bootstrap tokens may ask for node certificates, which are then approved.
      Binding("kiso:node-bootstrapper", "system:node-bootstrapper",
              {{"Group", "system:bootstrappers"}}),
      Binding("kiso:node-autoapprove-bootstrap",
              "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
              {{"Group", "system:bootstrappers"}}),
      // A node renews its own certificate (kubeadm's binding of the same name).
      Binding("kiso:node-autoapprove-certificate-rotation",
              "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
              {{"Group", "system:nodes"}}),
      Binding("kiso:ingress-controller", "kiso:ingress-controller", {{"Group", "system:nodes"}}),
      Binding("kiso:network-policy-controller", "kiso:network-policy-controller",
              {{"Group", "system:nodes"}}),
      Binding("kiso:local-path-provisioner", "kiso:local-path-provisioner",
              {{"Group", "system:nodes"}}),
  };
}

}  // namespace kiso::apiserver
