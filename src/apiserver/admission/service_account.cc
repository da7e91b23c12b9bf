// ServiceAccount admission: a pod runs as a service account that exists
// ("default" when it names none), and — unless it or its service account
// opts out — gets the projected volume kube-api-access-<random> (a bound
// token the agent refreshes, the cluster CA from kube-root-ca.crt, its
// namespace) mounted at /var/run/secrets/kubernetes.io/serviceaccount in
// every container, and the service account's image pull secrets.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/admission/plugins.h"
#include "apiserver/verbs/handlers.h"
#include "common/random.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

constexpr std::string_view kMountPath = "/var/run/secrets/kubernetes.io/serviceaccount";

bool Mounted(const json::object& pod) {
  for (const char* list : {"containers", "initContainers"}) {
    const auto* cs = api::Find(pod, {"spec", list});
    if (cs == nullptr || !cs->is_array()) continue;
    for (const auto& c : cs->get_array()) {
      const auto* mounts = api::Find(c, {"volumeMounts"});
      if (mounts == nullptr || !mounts->is_array()) continue;
      for (const auto& m : mounts->get_array())
        if (api::GetString(m, {"mountPath"}) == kMountPath) return true;
    }
  }
  return false;
}

json::object ApiAccessVolume(const std::string& name) {
  json::array sources{
      json::object{
          {"serviceAccountToken", json::object{{"expirationSeconds", 3607}, {"path", "token"}}}},
      json::object{
          {"configMap", json::object{{"name", "kube-root-ca.crt"},
                                     {"items", json::array{json::object{{"key", "ca.crt"},
                                                                        {"path", "ca.crt"}}}}}}},
      json::object{
          {"downwardAPI",
           json::object{
               {"items", json::array{json::object{
                             {"path", "namespace"},
                             {"fieldRef", json::object{{"apiVersion", "v1"},
                                                       {"fieldPath", "metadata.namespace"}}}}}}}}}};
  return json::object{
      {"name", name},
      {"projected", json::object{{"sources", std::move(sources)}, {"defaultMode", 420}}}};
}

class ServiceAccountAdmission : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "ServiceAccount"; }

  api::ApiStatus Mutate(const AdmissionRequest& r, json::object& pod) const override {
    const Target& t = *r.target;
    if (t.type->plural != "pods" || !t.subresource.empty() || r.operation != "CREATE")
      return std::nullopt;
    if (api::Find(pod, {"metadata", "annotations", "kubernetes.io/config.mirror"}))
      return std::nullopt;
    auto& spec = api::Child(pod, "spec");
    std::string sa_name(api::GetString(pod, {"spec", "serviceAccountName"}));
    if (sa_name.empty()) sa_name = std::string(api::GetString(pod, {"spec", "serviceAccount"}));
    if (sa_name.empty()) sa_name = "default";
    spec["serviceAccountName"] = sa_name;
    spec["serviceAccount"] = sa_name;  // The deprecated alias, as upstream keeps it in step.
    const api::ResourceType* sa_type = api::FindResource("", "v1", "serviceaccounts");
    auto sa = ReadFromCache(*r.ctx, *sa_type, t.ns, sa_name);
    if (!sa) sa = ReadFromStore(*r.ctx, *sa_type, t.ns, sa_name);
    if (!sa) {
      return AdmissionForbidden(
          t, std::string(api::GetString(pod, {"metadata", "name"})),
          fmt::format("error looking up service account {}/{}: serviceaccount {:?} not found", t.ns,
                      sa_name, sa_name));
    }
    // Image pull secrets of the service account, when the pod names none.
    const auto* pulls = sa->if_contains("imagePullSecrets");
    if (pulls && pulls->is_array() && !pulls->get_array().empty() &&
        !spec.contains("imagePullSecrets")) {
      spec["imagePullSecrets"] = *pulls;
    }
    const auto* pod_auto = spec.if_contains("automountServiceAccountToken");
    const auto* sa_auto = sa->if_contains("automountServiceAccountToken");
    bool automount = pod_auto && pod_auto->is_bool() ? pod_auto->get_bool()
                     : sa_auto && sa_auto->is_bool() ? sa_auto->get_bool()
                                                     : true;
    if (!automount || Mounted(pod)) return std::nullopt;
    std::string volume = "kube-api-access-" + RandomNameSuffix();
    json::value& volumes = spec["volumes"];
    if (!volumes.is_array()) volumes = json::array();
    volumes.as_array().push_back(ApiAccessVolume(volume));
    for (const char* list : {"containers", "initContainers"}) {
      auto* cs = spec.if_contains(list);
      if (cs == nullptr || !cs->is_array()) continue;
      for (auto& c : cs->as_array()) {
        if (!c.is_object()) continue;
        json::value& mounts = c.as_object()["volumeMounts"];
        if (!mounts.is_array()) mounts = json::array();
        mounts.as_array().push_back(json::object{
            {"name", volume}, {"readOnly", true}, {"mountPath", std::string(kMountPath)}});
      }
    }
    return std::nullopt;
  }
};

}  // namespace

std::unique_ptr<AdmissionPlugin> NewServiceAccountAdmission() {
  return std::make_unique<ServiceAccountAdmission>();
}

}  // namespace kiso::apiserver
