#include "api/schema.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <map>

namespace kiso::api {

namespace json = boost::json;

namespace {

// A field's type: "" any value; "T" the struct T; "[]T" a list of T.
using Fields = std::map<std::string, std::string, std::less<>>;

const std::map<std::string, Fields, std::less<>>& Types() {
  static const std::map<std::string, Fields, std::less<>> types = {
      {"ObjectMeta",
       {{"name", ""},
        {"generateName", ""},
        {"namespace", ""},
        {"selfLink", ""},
        {"uid", ""},
        {"resourceVersion", ""},
        {"generation", ""},
        {"creationTimestamp", ""},
        {"deletionTimestamp", ""},
        {"deletionGracePeriodSeconds", ""},
        {"labels", ""},
        {"annotations", ""},
        {"ownerReferences", "[]OwnerReference"},
        {"finalizers", ""},
        {"managedFields", ""}}},
      {"OwnerReference",
       {{"apiVersion", ""},
        {"kind", ""},
        {"name", ""},
        {"uid", ""},
        {"controller", ""},
        {"blockOwnerDeletion", ""}}},
      {"PodTemplateSpec", {{"metadata", "ObjectMeta"}, {"spec", "PodSpec"}}},
      {"PodSpec",
       {{"volumes", ""},
        {"initContainers", "[]Container"},
        {"containers", "[]Container"},
        {"ephemeralContainers", ""},
        {"restartPolicy", ""},
        {"terminationGracePeriodSeconds", ""},
        {"activeDeadlineSeconds", ""},
        {"dnsPolicy", ""},
        {"nodeSelector", ""},
        {"serviceAccountName", ""},
        {"serviceAccount", ""},
        {"automountServiceAccountToken", ""},
        {"nodeName", ""},
        {"hostNetwork", ""},
        {"hostPID", ""},
        {"hostIPC", ""},
        {"shareProcessNamespace", ""},
        {"securityContext", ""},
        {"imagePullSecrets", ""},
        {"hostname", ""},
        {"subdomain", ""},
        {"affinity", ""},
        {"schedulerName", ""},
        {"tolerations", ""},
        {"hostAliases", ""},
        {"priorityClassName", ""},
        {"priority", ""},
        {"dnsConfig", ""},
        {"readinessGates", ""},
        {"runtimeClassName", ""},
        {"enableServiceLinks", ""},
        {"preemptionPolicy", ""},
        {"overhead", ""},
        {"topologySpreadConstraints", ""},
        {"setHostnameAsFQDN", ""},
        {"os", ""},
        {"hostUsers", ""},
        {"schedulingGates", ""},
        {"resourceClaims", ""},
        {"resources", ""}}},
      {"Container",
       {{"name", ""},
        {"image", ""},
        {"command", ""},
        {"args", ""},
        {"workingDir", ""},
        {"ports", "[]ContainerPort"},
        {"envFrom", ""},
        {"env", "[]EnvVar"},
        {"resources", "ResourceRequirements"},
        {"resizePolicy", ""},
        {"restartPolicy", ""},
        {"volumeMounts", ""},
        {"volumeDevices", ""},
        {"livenessProbe", ""},
        {"readinessProbe", ""},
        {"startupProbe", ""},
        {"lifecycle", ""},
        {"terminationMessagePath", ""},
        {"terminationMessagePolicy", ""},
        {"imagePullPolicy", ""},
        {"securityContext", ""},
        {"stdin", ""},
        {"stdinOnce", ""},
        {"tty", ""}}},
      {"ContainerPort",
       {{"name", ""}, {"hostPort", ""}, {"containerPort", ""}, {"protocol", ""}, {"hostIP", ""}}},
      {"EnvVar", {{"name", ""}, {"value", ""}, {"valueFrom", ""}}},
      {"ResourceRequirements", {{"limits", ""}, {"requests", ""}, {"claims", ""}}},
      {"DeploymentSpec",
       {{"replicas", ""},
        {"selector", ""},
        {"template", "PodTemplateSpec"},
        {"strategy", ""},
        {"minReadySeconds", ""},
        {"revisionHistoryLimit", ""},
        {"paused", ""},
        {"progressDeadlineSeconds", ""}}},
      {"ReplicaSetSpec",
       {{"replicas", ""},
        {"minReadySeconds", ""},
        {"selector", ""},
        {"template", "PodTemplateSpec"}}},
      {"DaemonSetSpec",
       {{"selector", ""},
        {"template", "PodTemplateSpec"},
        {"updateStrategy", ""},
        {"minReadySeconds", ""},
        {"revisionHistoryLimit", ""}}},
      {"StatefulSetSpec",
       {{"replicas", ""},
        {"selector", ""},
        {"template", "PodTemplateSpec"},
        {"volumeClaimTemplates", ""},
        {"serviceName", ""},
        {"podManagementPolicy", ""},
        {"updateStrategy", ""},
        {"revisionHistoryLimit", ""},
        {"minReadySeconds", ""},
        {"persistentVolumeClaimRetentionPolicy", ""},
        {"ordinals", ""}}},
      {"JobSpec",
       {{"parallelism", ""},
        {"completions", ""},
        {"activeDeadlineSeconds", ""},
        {"podFailurePolicy", ""},
        {"successPolicy", ""},
        {"backoffLimit", ""},
        {"backoffLimitPerIndex", ""},
        {"maxFailedIndexes", ""},
        {"selector", ""},
        {"manualSelector", ""},
        {"template", "PodTemplateSpec"},
        {"ttlSecondsAfterFinished", ""},
        {"completionMode", ""},
        {"suspend", ""},
        {"podReplacementPolicy", ""},
        {"managedBy", ""}}},
      {"ServiceSpec",
       {{"ports", "[]ServicePort"},
        {"selector", ""},
        {"clusterIP", ""},
        {"clusterIPs", ""},
        {"type", ""},
        {"externalIPs", ""},
        {"sessionAffinity", ""},
        {"loadBalancerIP", ""},
        {"loadBalancerSourceRanges", ""},
        {"externalName", ""},
        {"externalTrafficPolicy", ""},
        {"healthCheckNodePort", ""},
        {"publishNotReadyAddresses", ""},
        {"sessionAffinityConfig", ""},
        {"ipFamilies", ""},
        {"ipFamilyPolicy", ""},
        {"allocateLoadBalancerNodePorts", ""},
        {"loadBalancerClass", ""},
        {"internalTrafficPolicy", ""},
        {"trafficDistribution", ""}}},
      {"ServicePort",
       {{"name", ""},
        {"protocol", ""},
        {"appProtocol", ""},
        {"port", ""},
        {"targetPort", ""},
        {"nodePort", ""}}},
      {"ReplicationControllerSpec",
       {{"replicas", ""},
        {"minReadySeconds", ""},
        {"selector", ""},
        {"template", "PodTemplateSpec"}}},
      {"NamespaceSpec", {{"finalizers", ""}}},
  };
  return types;
}

// Top-level fields per kind, besides apiVersion, kind and metadata.
const Fields* TopLevel(std::string_view kind) {
  static const std::map<std::string, Fields, std::less<>> kinds = {
      {"Pod", {{"spec", "PodSpec"}, {"status", ""}}},
      {"Deployment", {{"spec", "DeploymentSpec"}, {"status", ""}}},
      {"ReplicaSet", {{"spec", "ReplicaSetSpec"}, {"status", ""}}},
      {"DaemonSet", {{"spec", "DaemonSetSpec"}, {"status", ""}}},
      {"StatefulSet", {{"spec", "StatefulSetSpec"}, {"status", ""}}},
      {"Job", {{"spec", "JobSpec"}, {"status", ""}}},
      {"ReplicationController", {{"spec", "ReplicationControllerSpec"}, {"status", ""}}},
      {"Service", {{"spec", "ServiceSpec"}, {"status", ""}}},
      {"Namespace", {{"spec", "NamespaceSpec"}, {"status", ""}}},
      {"Node", {{"spec", ""}, {"status", ""}}},
      {"ConfigMap", {{"data", ""}, {"binaryData", ""}, {"immutable", ""}}},
      {"Secret", {{"data", ""}, {"stringData", ""}, {"type", ""}, {"immutable", ""}}},
      {"ServiceAccount",
       {{"secrets", ""}, {"imagePullSecrets", ""}, {"automountServiceAccountToken", ""}}},
      {"Endpoints", {{"subsets", ""}}},
      {"Event",
       {{"involvedObject", ""},
        {"reason", ""},
        {"message", ""},
        {"source", ""},
        {"firstTimestamp", ""},
        {"lastTimestamp", ""},
        {"count", ""},
        {"type", ""},
        {"eventTime", ""},
        {"series", ""},
        {"action", ""},
        {"related", ""},
        {"reportingComponent", ""},
        {"reportingInstance", ""}}},
      {"Lease", {{"spec", ""}}},
      {"Role", {{"rules", ""}}},
      {"ClusterRole", {{"rules", ""}, {"aggregationRule", ""}}},
      {"RoleBinding", {{"subjects", ""}, {"roleRef", ""}}},
      {"ClusterRoleBinding", {{"subjects", ""}, {"roleRef", ""}}},
      {"APIService", {{"spec", ""}, {"status", ""}}},
  };
  auto it = kinds.find(kind);
  return it == kinds.end() ? nullptr : &it->second;
}

void Check(const json::value& v, const Fields& fields, const std::string& path,
           std::vector<std::string>& out);

void CheckTyped(const json::value& v, std::string_view type, const std::string& path,
                std::vector<std::string>& out) {
  if (type.empty()) return;
  if (type.starts_with("[]")) {
    const auto* arr = v.if_array();
    if (!arr) return;
    for (size_t i = 0; i < arr->size(); ++i) {
      CheckTyped((*arr)[i], type.substr(2), fmt::format("{}[{}]", path, i), out);
    }
    return;
  }
  auto it = Types().find(type);
  if (it != Types().end()) Check(v, it->second, path, out);
}

void Check(const json::value& v, const Fields& fields, const std::string& path,
           std::vector<std::string>& out) {
  const auto* obj = v.if_object();
  if (!obj) return;
  for (const auto& [key, child] : *obj) {
    std::string p = path.empty() ? std::string(key) : path + "." + std::string(key);
    auto f = fields.find(std::string_view(key));
    if (f == fields.end()) {
      out.push_back(p);
      continue;
    }
    CheckTyped(child, f->second, p, out);
  }
}

}  // namespace

std::vector<std::string> UnknownFields(std::string_view kind, const json::value& obj) {
  std::vector<std::string> out;
  const Fields* top = TopLevel(kind);
  if (!top) return out;
  Fields fields = *top;
  fields.emplace("apiVersion", "");
  fields.emplace("kind", "");
  fields.emplace("metadata", "ObjectMeta");
  Check(obj, fields, "", out);
  return out;
}

}  // namespace kiso::api
