#include "apiserver/authz/node_authorizer.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/watch_cache.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

bool In(std::string_view v, std::initializer_list<std::string_view> list) {
  for (auto x : list) {
    if (x == v) return true;
  }
  return false;
}

bool Reads(const Attributes& a) { return In(a.verb, {"get", "list", "watch"}); }

void AddContainerRefs(const json::value& containers,
                      std::set<std::pair<std::string, std::string>>& out) {
  if (!containers.is_array()) return;
  for (const auto& c : containers.get_array()) {
    if (const auto* env = api::Find(c, {"env"}); env && env->is_array()) {
      for (const auto& e : env->get_array()) {
        if (auto n = api::GetString(e, {"valueFrom", "secretKeyRef", "name"}); !n.empty())
          out.emplace("secrets", n);
        if (auto n = api::GetString(e, {"valueFrom", "configMapKeyRef", "name"}); !n.empty())
          out.emplace("configmaps", n);
      }
    }
    if (const auto* from = api::Find(c, {"envFrom"}); from && from->is_array()) {
      for (const auto& e : from->get_array()) {
        if (auto n = api::GetString(e, {"secretRef", "name"}); !n.empty())
          out.emplace("secrets", n);
        if (auto n = api::GetString(e, {"configMapRef", "name"}); !n.empty())
          out.emplace("configmaps", n);
      }
    }
  }
}

}  // namespace

std::string NodeOf(const UserInfo& user) {
  if (!user.InGroup(kNodesGroup) || !user.name.starts_with(kNodeUserPrefix)) return "";
  return user.name.substr(kNodeUserPrefix.size());
}

std::set<std::pair<std::string, std::string>> PodReferences(const json::object& pod) {
  std::set<std::pair<std::string, std::string>> out;
  std::string sa(api::GetString(pod, {"spec", "serviceAccountName"}));
  out.emplace("serviceaccounts", sa.empty() ? "default" : sa);
  if (const auto* pulls = api::Find(pod, {"spec", "imagePullSecrets"});
      pulls && pulls->is_array()) {
    for (const auto& p : pulls->get_array()) {
      if (auto n = api::GetString(p, {"name"}); !n.empty()) out.emplace("secrets", n);
    }
  }
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (const auto* c = api::Find(pod, {"spec", list})) AddContainerRefs(*c, out);
  }
  if (const auto* volumes = api::Find(pod, {"spec", "volumes"}); volumes && volumes->is_array()) {
    for (const auto& v : volumes->get_array()) {
      if (auto n = api::GetString(v, {"secret", "secretName"}); !n.empty())
        out.emplace("secrets", n);
      if (auto n = api::GetString(v, {"configMap", "name"}); !n.empty())
        out.emplace("configmaps", n);
      if (auto n = api::GetString(v, {"persistentVolumeClaim", "claimName"}); !n.empty())
        out.emplace("persistentvolumeclaims", n);
      if (const auto* sources = api::Find(v, {"projected", "sources"});
          sources && sources->is_array()) {
        for (const auto& s : sources->get_array()) {
          if (auto n = api::GetString(s, {"secret", "name"}); !n.empty()) out.emplace("secrets", n);
          if (auto n = api::GetString(s, {"configMap", "name"}); !n.empty())
            out.emplace("configmaps", n);
        }
      }
      for (const char* driver : {"csi", "cephfs", "rbd", "iscsi", "flexVolume", "azureFile",
                                 "scaleIO", "storageos", "cinder"}) {
        if (auto n = api::GetString(v, {driver, "secretRef", "name"}); !n.empty())
          out.emplace("secrets", n);
        if (auto n = api::GetString(v, {driver, "nodePublishSecretRef", "name"}); !n.empty())
          out.emplace("secrets", n);
      }
    }
  }
  return out;
}

bool NodeAuthorizer::PodOnNode(const std::string& node, const std::string& ns,
                               const std::string& name) const {
  ObjectPtr pod = cache_->Get(fmt::format("/registry/core/pods/{}/{}", ns, name));
  if (!pod) return false;
  const std::string* on = pod->fields.Find("spec.nodeName");
  return on && *on == node;
}

bool NodeAuthorizer::Referenced(const std::string& node, const std::string& ns,
                                const std::string& resource, const std::string& name) const {
  auto pods = cache_->List(fmt::format("/registry/core/pods/{}/", ns));
  for (const auto& pod : pods.objects) {
    const std::string* on = pod->fields.Find("spec.nodeName");
    if (!on || *on != node) continue;
    auto v = api::ParseJson(pod->json);
    if (!v.ok() || !v->is_object()) continue;
    if (PodReferences(v->as_object()).contains({resource, name})) return true;
  }
  return false;
}

AuthorizationResult NodeAuthorizer::Authorize(const Attributes& a) const {
  if (a.user == nullptr) return {};
  std::string node = NodeOf(*a.user);
  if (node.empty()) return {};
  auto allow = [](std::string why) {
    return AuthorizationResult{Decision::kAllow, std::move(why)};
  };
  if (!a.resource_request) {
    // The agent's own stream tunnels: /kiso/v1/nodes/<node>/tunnel.
    if (a.path == fmt::format("/kiso/v1/nodes/{}/tunnel", node)) return allow("its tunnel");
    return {};
  }
  const std::string& r = a.resource;
  const std::string& g = a.api_group;
  if (g.empty() && r == "nodes") {
    if (a.subresource.empty() && Reads(a)) return allow("nodes are readable by nodes");
    if (a.name == node || (a.verb == "create" && a.name.empty())) return allow("its own Node");
    return {Decision::kNoOpinion, fmt::format("node {:?} may only change its own Node", node)};
  }
  if (g == "coordination.k8s.io" && r == "leases" && a.ns == "kube-node-lease") {
    if (a.name == node || (a.verb == "create" && a.name.empty())) return allow("its own Lease");
    return {};
  }
  if (g.empty() && r == "pods") {
    if (a.subresource.empty() && (a.verb == "list" || a.verb == "watch"))
      return allow("nodes watch pods");
    if ((a.subresource.empty() && In(a.verb, {"get", "delete"})) ||
        (a.subresource == "status" && In(a.verb, {"get", "update", "patch"}))) {
      if (PodOnNode(node, a.ns, a.name)) return allow("a pod bound to it");
      return {Decision::kNoOpinion,
              fmt::format("no relationship found between node {:?} and this object", node)};
    }
    return {};
  }
  if ((g.empty() || g == "events.k8s.io") && r == "events" &&
      In(a.verb, {"create", "update", "patch"}))
    return allow("nodes record events");
  if (g == "certificates.k8s.io" && r == "certificatesigningrequests" && a.subresource.empty() &&
      In(a.verb, {"create", "get", "list", "watch"}))
    return allow("nodes request their certificates");
  if (g.empty() && In(r, {"services", "endpoints"}) && In(a.verb, {"get", "list", "watch"}))
    return allow("nodes watch services");
  if (g == "node.k8s.io" && r == "runtimeclasses" && Reads(a))
    return allow("nodes read RuntimeClasses (their pods' handlers)");
  if (g.empty() && In(r, {"secrets", "configmaps", "persistentvolumeclaims", "serviceaccounts"})) {
    bool token = r == "serviceaccounts" && a.subresource == "token" && a.verb == "create";
    if ((a.subresource.empty() && Reads(a)) || token) {
      if (!a.name.empty() && Referenced(node, a.ns, r, a.name))
        return allow(fmt::format("used by a pod bound to node {:?}", node));
      return {Decision::kNoOpinion,
              fmt::format("no relationship found between node {:?} and this object", node)};
    }
  }
  return {};
}

}  // namespace kiso::apiserver
