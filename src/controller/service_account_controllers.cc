#include "controller/service_account_controllers.h"

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

constexpr std::string_view kRootCa = "kube-root-ca.crt";

const api::ResourceType& Namespaces() { return *api::FindResource("", "v1", "namespaces"); }

bool Active(const std::optional<json::value>& ns) {
  return ns && api::GetString(*ns, {"metadata", "deletionTimestamp"}).empty();
}

std::string NamespaceOf(const json::value& obj) {
  return std::string(api::GetString(obj, {"metadata", "namespace"}));
}

std::string NameOf(const json::value& obj) {
  return std::string(api::GetString(obj, {"metadata", "name"}));
}

// A create that lost to another writer (or to the namespace's deletion) is no failure.
Status Created(const Result<json::value>& res) {
  if (res.ok() || res.status().code() == Code::kAlreadyExists ||
      res.status().code() == Code::kNotFound)
    return Status::Ok();
  return res.status();
}

}  // namespace

ServiceAccountsController::ServiceAccountsController(client::Client* client,
                                                     client::SharedInformers* shared)
    : Controller(client, "serviceaccount-controller", 1, shared) {
  namespaces_ =
      Watch(Namespaces(), [this](const json::value*, const json::value& ns, bool deleted) {
        if (!deleted) Enqueue(NameOf(ns));
      });
  accounts_ = Watch(*api::FindResource("", "v1", "serviceaccounts"),
                    [this](const json::value*, const json::value& sa, bool deleted) {
                      if (deleted && NameOf(sa) == "default") Enqueue(NamespaceOf(sa));
                    });
}

Status ServiceAccountsController::Reconcile(const std::string& ns) {
  if (!Active(namespaces_->Get("", ns)) || accounts_->Get(ns, "default")) return Status::Ok();
  json::value sa = json::object{{"apiVersion", "v1"},
                                {"kind", "ServiceAccount"},
                                {"metadata", json::object{{"name", "default"}, {"namespace", ns}}}};
  return Created(client()->Create(*api::FindResource("", "v1", "serviceaccounts"), ns, sa));
}

RootCaPublisher::RootCaPublisher(client::Client* client, std::string ca_pem,
                                 client::SharedInformers* shared)
    : Controller(client, "root-ca-cert-publisher", 1, shared), ca_pem_(std::move(ca_pem)) {
  namespaces_ =
      Watch(Namespaces(), [this](const json::value*, const json::value& ns, bool deleted) {
        if (!deleted) Enqueue(NameOf(ns));
      });
  configmaps_ = Watch(*api::FindResource("", "v1", "configmaps"),
                      [this](const json::value*, const json::value& cm, bool) {
                        if (NameOf(cm) == kRootCa) Enqueue(NamespaceOf(cm));
                      });
}

Status RootCaPublisher::Reconcile(const std::string& ns) {
  if (!Active(namespaces_->Get("", ns))) return Status::Ok();
  const api::ResourceType& configmaps = *api::FindResource("", "v1", "configmaps");
  json::object data{{"ca.crt", ca_pem_}};
  auto current = configmaps_->Get(ns, std::string(kRootCa));
  if (!current) {
    json::value cm = json::object{
        {"apiVersion", "v1"},
        {"kind", "ConfigMap"},
        {"metadata",
         json::object{{"name", kRootCa},
                      {"namespace", ns},
                      {"annotations",
                       json::object{{"kubernetes.io/description",
                                     "Contains a CA bundle that can be used to verify the "
                                     "kube-apiserver when using internal endpoints such as the "
                                     "internal service IP or kubernetes.default.svc. No other "
                                     "usage is guaranteed across distributions of Kubernetes "
                                     "clusters."}}}}},
        {"data", data}};
    return Created(client()->Create(configmaps, ns, cm));
  }
  const auto* have = api::Find(*current, {"data"});
  if (have && *have == data) return Status::Ok();
  json::value next = *current;
  next.as_object()["data"] = data;
  auto res = client()->Update(configmaps, ns, next);
  if (res.ok() || res.status().code() == Code::kNotFound) return Status::Ok();
  return res.status();  // A conflict: the informer brings the newer object, and the key again.
}

}  // namespace kiso::controller
