#include "controller/csr_signing_controller.h"

#include <boost/json.hpp>

#include "api/object.h"
#include "common/base64.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Csrs() {
  return *api::FindResource("certificates.k8s.io", "v1", "certificatesigningrequests");
}

constexpr int64_t kDefaultSeconds = 365LL * 24 * 3600;  // --cluster-signing-duration

bool HasCondition(const json::value& csr, std::string_view type) {
  const auto* cs = api::Find(csr, {"status", "conditions"});
  if (!cs || !cs->is_array()) return false;
  for (const auto& c : cs->get_array()) {
    if (api::GetString(c, {"type"}) == type && api::GetString(c, {"status"}) != "False")
      return true;
  }
  return false;
}

}  // namespace

CertificateSigningController::CertificateSigningController(client::Client* client, CsrSigner sign,
                                                           client::SharedInformers* shared)
    : Controller(client, "csrsigning-controller", 1, shared), sign_(std::move(sign)) {
  csrs_ = Watch(Csrs(), [this](const json::value*, const json::value& csr, bool deleted) {
    if (!deleted) Enqueue(KeyOf(csr));
  });
}

Status CertificateSigningController::Reconcile(const std::string& key) {
  auto [ns, name] = SplitKey(key);
  auto csr = csrs_->Get(ns, name);
  if (!csr) return Status::Ok();
  std::string_view signer = api::GetString(*csr, {"spec", "signerName"});
  if (signer != "kubernetes.io/kube-apiserver-client" &&
      signer != "kubernetes.io/kube-apiserver-client-kubelet")
    return Status::Ok();  // Another signer's.
  if (!HasCondition(*csr, "Approved") || HasCondition(*csr, "Denied") ||
      HasCondition(*csr, "Failed") || !api::GetString(*csr, {"status", "certificate"}).empty())
    return Status::Ok();
  auto pem = Base64Decode(api::GetString(*csr, {"spec", "request"}));
  std::vector<std::string> usages;
  if (const auto* u = api::Find(*csr, {"spec", "usages"}); u && u->is_array()) {
    for (const auto& v : u->get_array()) {
      if (v.is_string()) usages.emplace_back(v.get_string());
    }
  }
  int64_t seconds = kDefaultSeconds;
  if (const auto* e = api::Find(*csr, {"spec", "expirationSeconds"}); e && e->is_int64())
    seconds = std::min(seconds, e->get_int64());
  auto cert = pem ? sign_(*pem, usages, seconds)
                  : Result<std::string>(MakeStatus(Code::kInvalidArgument, "not base64"));
  json::value next = *csr;
  auto& status = api::Child(next.as_object(), "status");
  if (cert.ok()) {
    status["certificate"] = Base64Encode(*cert);
  } else {
    json::value& conditions = status["conditions"];
    if (!conditions.is_array()) conditions = json::array();
    std::string now = api::NowRfc3339();
    conditions.get_array().push_back(json::object{{"type", "Failed"},
                                                  {"status", "True"},
                                                  {"reason", "SignerValidationFailure"},
                                                  {"message", cert.status().message()},
                                                  {"lastUpdateTime", now},
                                                  {"lastTransitionTime", now}});
  }
  auto res = client()->Update(Csrs(), "", next, "status");
  return res.ok() || res.status().code() == Code::kNotFound ? Status::Ok() : res.status();
}

}  // namespace kiso::controller
