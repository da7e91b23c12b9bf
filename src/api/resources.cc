#include "api/resources.h"

#include <fmt/format.h>

#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include "api/custom_resource.h"

namespace kiso::api {

namespace {

const std::vector<std::string> kSubVerbs = {"get", "patch", "update"};

Subresource Status(const std::string& kind) { return {"status", "", "", kind, kSubVerbs}; }
Subresource Scale() { return {"scale", "autoscaling", "v1", "Scale", kSubVerbs}; }

ResourceType Make(std::string group, std::string kind, std::string plural, bool namespaced,
                  std::vector<std::string> short_names, std::vector<std::string> categories,
                  std::vector<Subresource> subresources) {
  ResourceType t;
  t.group = std::move(group);
  t.version = "v1";
  t.singular = plural.substr(0, plural.size() - (plural.ends_with("ies") ? 3 : 1));
  if (plural.ends_with("ies")) t.singular += "y";
  if (plural.ends_with("sses")) t.singular = plural.substr(0, plural.size() - 2);
  if (plural == "endpoints") t.singular = "endpoints";
  t.kind = std::move(kind);
  t.plural = std::move(plural);
  t.namespaced = namespaced;
  t.short_names = std::move(short_names);
  t.categories = std::move(categories);
  t.subresources = std::move(subresources);
  for (const auto& s : t.subresources) t.has_status |= s.name == "status";
  return t;
}

// A kind served at another version than v1 (autoscaling/v2).
ResourceType MakeAt(std::string version, ResourceType t) {
  t.version = std::move(version);
  return t;
}

// A kind served at `version` as well, stored at `storage` (the type
// declared as Kind@group.version: the fields that differ).
ResourceType Converted(std::string version, std::string storage, ResourceType t) {
  t.version = std::move(version);
  t.storage_version = std::move(storage);
  t.schema_type = fmt::format("{}@{}.{}", t.kind, t.group.substr(0, t.group.find('.')), t.version);
  return t;
}

// A kind stored in another group's type (the same objects under two groups).
ResourceType StoredIn(std::string group, ResourceType t) {
  t.storage_group = std::move(group);
  return t;
}

// A review: created, answered, never stored (kube-apiserver's
// SubjectAccessReview, TokenReview…).
ResourceType Review(std::string group, std::string kind, std::string plural, bool namespaced) {
  ResourceType t =
      Make(std::move(group), std::move(kind), std::move(plural), namespaced, {}, {}, {});
  t.verbs = {"create"};
  t.stored = false;
  return t;
}

// metrics.k8s.io/v1beta1 (metrics-server's role): read only, never stored,
// answered from the nodes' figures (apiserver/metrics.cc).
ResourceType Metrics(std::string kind, std::string plural, bool namespaced) {
  ResourceType t = MakeAt("v1beta1", Make("metrics.k8s.io", std::move(kind), std::move(plural),
                                          namespaced, {}, {}, {}));
  t.verbs = {"get", "list"};
  t.stored = false;
  return t;
}

std::vector<ResourceType> Build() {
  const std::vector<std::string> all = {"all"};
  std::vector<ResourceType> types = {
      Make("", "Namespace", "namespaces", false, {"ns"}, {},
           {Status("Namespace"), {"finalize", "", "", "Namespace", {"update"}}}),
      Make("", "Node", "nodes", false, {"no"}, {},
           {Status("Node"), {"proxy", "", "", "NodeProxyOptions", {"get"}}}),
      Make("", "Pod", "pods", true, {"po"}, all,
           {Status("Pod"),
            {"binding", "", "", "Binding", {"create"}},
            {"eviction", "policy", "v1", "Eviction", {"create"}},
            {"log", "", "", "Pod", {"get"}},
            {"exec", "", "", "PodExecOptions", {"create", "get"}},
            {"attach", "", "", "PodAttachOptions", {"create", "get"}},
            {"portforward", "", "", "PodPortForwardOptions", {"create", "get"}}}),
      Make("", "Service", "services", true, {"svc"}, all, {Status("Service")}),
      Make("", "Endpoints", "endpoints", true, {"ep"}, {}, {}),
      Make("discovery.k8s.io", "EndpointSlice", "endpointslices", true, {}, {}, {}),
      Make("", "ConfigMap", "configmaps", true, {"cm"}, {}, {}),
      Make("", "PodTemplate", "podtemplates", true, {}, {}, {}),
      Make("", "Secret", "secrets", true, {}, {}, {}),
      Make("", "PersistentVolume", "persistentvolumes", false, {"pv"}, {},
           {Status("PersistentVolume")}),
      Make("", "PersistentVolumeClaim", "persistentvolumeclaims", true, {"pvc"}, {},
           {Status("PersistentVolumeClaim")}),
      Make("", "ServiceAccount", "serviceaccounts", true, {"sa"}, {},
           {{"token", "authentication.k8s.io", "v1", "TokenRequest", {"create"}}}),
      Make("", "Event", "events", true, {"ev"}, {}, {}),
      Make("", "ResourceQuota", "resourcequotas", true, {"quota"}, {}, {Status("ResourceQuota")}),
      Make("", "LimitRange", "limitranges", true, {"limits"}, {}, {}),
      Make("", "ReplicationController", "replicationcontrollers", true, {"rc"}, all,
           {Status("ReplicationController"), Scale()}),
      Make("apps", "Deployment", "deployments", true, {"deploy"}, all,
           {Status("Deployment"), Scale()}),
      Make("apps", "ReplicaSet", "replicasets", true, {"rs"}, all, {Status("ReplicaSet"), Scale()}),
      Make("apps", "DaemonSet", "daemonsets", true, {"ds"}, all, {Status("DaemonSet")}),
      Make("apps", "StatefulSet", "statefulsets", true, {"sts"}, all,
           {Status("StatefulSet"), Scale()}),
      Make("apps", "ControllerRevision", "controllerrevisions", true, {}, {}, {}),
      // events.k8s.io/v1: the core group's Events, in the newer shape (api/conversion.cc).
      StoredIn("", Converted("v1", "v1",
                             Make("events.k8s.io", "Event", "events", true, {"ev"}, {}, {}))),
      Make("batch", "Job", "jobs", true, {}, all, {Status("Job")}),
      Make("batch", "CronJob", "cronjobs", true, {"cj"}, all, {Status("CronJob")}),
      MakeAt("v2", Make("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true,
                        {"hpa"}, all, {Status("HorizontalPodAutoscaler")})),
      Converted("v1", "v2",
                Make("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true,
                     {"hpa"}, all, {Status("HorizontalPodAutoscaler")})),
      Make("policy", "PodDisruptionBudget", "poddisruptionbudgets", true, {"pdb"}, {},
           {Status("PodDisruptionBudget")}),
      Make("networking.k8s.io", "Ingress", "ingresses", true, {"ing"}, {}, {Status("Ingress")}),
      Make("networking.k8s.io", "IngressClass", "ingressclasses", false, {}, {}, {}),
      Make("networking.k8s.io", "NetworkPolicy", "networkpolicies", true, {"netpol"}, {}, {}),
      Make("scheduling.k8s.io", "PriorityClass", "priorityclasses", false, {"pc"}, {}, {}),
      Make("node.k8s.io", "RuntimeClass", "runtimeclasses", false, {}, {}, {}),
      Make("storage.k8s.io", "StorageClass", "storageclasses", false, {"sc"}, {}, {}),
      Metrics("NodeMetrics", "nodes", false),
      Metrics("PodMetrics", "pods", true),
      Review("authentication.k8s.io", "TokenReview", "tokenreviews", false),
      Review("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews", false),
      Review("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews", false),
      Review("authorization.k8s.io", "SelfSubjectRulesReview", "selfsubjectrulesreviews", false),
      Review("authorization.k8s.io", "SubjectAccessReview", "subjectaccessreviews", false),
      Review("authorization.k8s.io", "LocalSubjectAccessReview", "localsubjectaccessreviews", true),
      Make("certificates.k8s.io", "CertificateSigningRequest", "certificatesigningrequests", false,
           {"csr"}, {},
           {Status("CertificateSigningRequest"),
            {"approval", "", "", "CertificateSigningRequest", kSubVerbs}}),
      Make("admissionregistration.k8s.io", "ValidatingWebhookConfiguration",
           "validatingwebhookconfigurations", false, {}, {"api-extensions"}, {}),
      Make("admissionregistration.k8s.io", "MutatingWebhookConfiguration",
           "mutatingwebhookconfigurations", false, {}, {"api-extensions"}, {}),
      Make("coordination.k8s.io", "Lease", "leases", true, {}, {}, {}),
      Make("rbac.authorization.k8s.io", "Role", "roles", true, {}, {}, {}),
      Make("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", true, {}, {}, {}),
      Make("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", false, {}, {}, {}),
      Make("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", false, {}, {},
           {}),
      Make("apiregistration.k8s.io", "APIService", "apiservices", false, {}, {},
           {Status("APIService")}),
      Make("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", false,
           {"crd", "crds"}, {"api-extensions"}, {Status("CustomResourceDefinition")}),
  };
  return types;
}

}  // namespace

std::string ResourceType::StorePrefix() const {
  return fmt::format("/registry/{}/{}/", group.empty() ? "core" : group, plural);
}

std::string ResourceType::StoreKey(std::string_view ns, std::string_view name) const {
  if (!namespaced) return StorePrefix() + std::string(name);
  return fmt::format("{}{}/{}", StorePrefix(), ns, name);
}

const ResourceType& ResourceType::Storage() const {
  if (storage_version.empty()) return *this;
  const ResourceType* stored =
      FindResource(storage_group ? *storage_group : group, storage_version, plural);
  return stored != nullptr ? *stored : *this;
}

const Subresource* ResourceType::FindSubresource(std::string_view name) const {
  for (const auto& s : subresources) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const std::vector<ResourceType>& BuiltinResources() {
  static const auto& types = *new std::vector<ResourceType>(Build());  // Never destroyed.
  return types;
}

namespace {

// The custom types: interned (never freed, see PublishCustomResources), and
// the set served now.
struct CustomRegistry {
  std::shared_mutex mu;
  std::map<std::string, std::unique_ptr<ResourceType>> interned;  // By definition.
  std::vector<const ResourceType*> served;
};

CustomRegistry& Custom() {
  static auto& r = *new CustomRegistry();  // Never destroyed: pointers outlive everything.
  return r;
}

}  // namespace

std::vector<const ResourceType*> AllResources() {
  std::vector<const ResourceType*> out;
  for (const auto& t : BuiltinResources()) out.push_back(&t);
  auto& r = Custom();
  std::shared_lock lock(r.mu);
  out.insert(out.end(), r.served.begin(), r.served.end());
  return out;
}

void PublishCustomResources(std::vector<ResourceType> types) {
  auto& r = Custom();
  std::unique_lock lock(r.mu);
  r.served.clear();
  for (auto& t : types) {
    std::string key = fmt::format("{}/{}/{}/{}", t.group, t.version, t.plural,
                                  t.custom ? t.custom->fingerprint : "");
    auto& slot = r.interned[key];
    if (!slot) slot = std::make_unique<ResourceType>(std::move(t));
    r.served.push_back(slot.get());
  }
}

const ResourceType* FindResource(std::string_view group, std::string_view version,
                                 std::string_view plural) {
  for (const auto& t : BuiltinResources()) {
    if (t.group == group && t.version == version && t.plural == plural) return &t;
  }
  auto& r = Custom();
  std::shared_lock lock(r.mu);
  for (const auto* t : r.served) {
    if (t->group == group && t->version == version && t->plural == plural) return t;
  }
  return nullptr;
}

const ResourceType* FindKind(std::string_view api_version, std::string_view kind) {
  for (const auto& t : BuiltinResources()) {
    if (t.GroupVersion() == api_version && t.kind == kind) return &t;
  }
  auto& r = Custom();
  std::shared_lock lock(r.mu);
  for (const auto* t : r.served) {
    if (t->GroupVersion() == api_version && t->kind == kind) return t;
  }
  return nullptr;
}

std::vector<GroupVersion> ServedGroupVersions() {
  std::vector<GroupVersion> out;
  for (const auto* t : AllResources()) {
    bool seen = false;
    for (const auto& gv : out) seen |= gv.group == t->group && gv.version == t->version;
    if (!seen) out.push_back({t->group, t->version});
  }
  // Each group's versions together, in order of preference; groups stay in order.
  std::vector<GroupVersion> sorted;
  for (const auto& gv : out) {
    bool placed = false;
    for (const auto& s : sorted) placed |= s.group == gv.group;
    if (placed) continue;
    std::vector<GroupVersion> group;
    for (const auto& other : out) {
      if (other.group == gv.group) group.push_back(other);
    }
    std::stable_sort(group.begin(), group.end(), [](const GroupVersion& a, const GroupVersion& b) {
      return VersionPreferred(a.version, b.version);
    });
    sorted.insert(sorted.end(), group.begin(), group.end());
  }
  return sorted;
}

namespace {

// v<major>[(alpha|beta)<minor>], or nullopt for any other name.
struct KubeVersion {
  int major = 0;
  int stage = 2;  // 2 GA, 1 beta, 0 alpha.
  int minor = 0;
};

std::optional<KubeVersion> ParseKubeVersion(std::string_view v) {
  if (v.size() < 2 || v[0] != 'v' || v[1] < '1' || v[1] > '9') return std::nullopt;
  KubeVersion k;
  size_t i = 1;
  auto number = [&](int& out) {
    size_t start = i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9' && i - start < 9)
      out = out * 10 + (v[i++] - '0');
    return i > start;
  };
  if (!number(k.major)) return std::nullopt;
  if (i == v.size()) return k;
  std::string_view rest = v.substr(i);
  if (rest.starts_with("alpha")) {
    k.stage = 0;
    i += 5;
  } else if (rest.starts_with("beta")) {
    k.stage = 1;
    i += 4;
  } else {
    return std::nullopt;
  }
  if (!number(k.minor) || i != v.size()) return std::nullopt;
  return k;
}

}  // namespace

bool VersionPreferred(std::string_view a, std::string_view b) {
  auto ka = ParseKubeVersion(a), kb = ParseKubeVersion(b);
  if (ka && kb) {
    if (ka->stage != kb->stage) return ka->stage > kb->stage;
    if (ka->major != kb->major) return ka->major > kb->major;
    return ka->minor > kb->minor;
  }
  if (ka || kb) return ka.has_value();  // Kube-like versions first, then the rest by name.
  return a < b;
}

}  // namespace kiso::api
