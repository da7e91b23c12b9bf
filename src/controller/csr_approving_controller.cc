#include "controller/csr_approving_controller.h"

#include <algorithm>
#include <boost/json.hpp>

#include "api/object.h"
#include "common/base64.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Csrs() {
  return *api::FindResource("certificates.k8s.io", "v1", "certificatesigningrequests");
}

bool Decided(const json::value& csr) {
  const auto* cs = api::Find(csr, {"status", "conditions"});
  if (!cs || !cs->is_array()) return false;
  return std::any_of(cs->get_array().begin(), cs->get_array().end(), [](const json::value& c) {
    auto type = api::GetString(c, {"type"});
    return type == "Approved" || type == "Denied" || type == "Failed";
  });
}

// Usages a kubelet client certificate may have: client auth, and digital
// signature with or without key encipherment.
bool KubeletClientUsages(const json::value& csr) {
  std::vector<std::string> usages;
  if (const auto* u = api::Find(csr, {"spec", "usages"}); u && u->is_array()) {
    for (const auto& v : u->get_array()) {
      if (v.is_string()) usages.emplace_back(v.get_string());
    }
  }
  std::sort(usages.begin(), usages.end());
  return usages == std::vector<std::string>{"client auth", "digital signature"} ||
         usages == std::vector<std::string>{"client auth", "digital signature", "key encipherment"};
}

}  // namespace

CertificateApprovingController::CertificateApprovingController(client::Client* client,
                                                               CsrReader read,
                                                               client::SharedInformers* shared)
    : Controller(client, "csrapproving-controller", 1, shared), read_(std::move(read)) {
  csrs_ = Watch(Csrs(), [this](const json::value*, const json::value& csr, bool deleted) {
    if (!deleted) Enqueue(KeyOf(csr));
  });
}

Result<bool> CertificateApprovingController::RequesterMay(const json::value& csr,
                                                          std::string_view subresource) {
  json::object spec{{"user", api::GetString(csr, {"spec", "username"})},
                    {"resourceAttributes", json::object{{"group", "certificates.k8s.io"},
                                                        {"resource", "certificatesigningrequests"},
                                                        {"subresource", subresource},
                                                        {"verb", "create"}}}};
  if (const auto* g = api::Find(csr, {"spec", "groups"})) spec["groups"] = *g;
  if (const auto* u = api::Find(csr, {"spec", "uid"})) spec["uid"] = *u;
  if (const auto* e = api::Find(csr, {"spec", "extra"})) spec["extra"] = *e;
  json::value review = json::object{{"apiVersion", "authorization.k8s.io/v1"},
                                    {"kind", "SubjectAccessReview"},
                                    {"spec", std::move(spec)}};
  const api::ResourceType* type =
      api::FindResource("authorization.k8s.io", "v1", "subjectaccessreviews");
  KISO_ASSIGN_OR_RETURN(auto answer, client()->Create(*type, "", review));
  const auto* allowed = api::Find(answer, {"status", "allowed"});
  return allowed && allowed->is_bool() && allowed->get_bool();
}

Status CertificateApprovingController::Reconcile(const std::string& key) {
  auto [ns, name] = SplitKey(key);
  auto csr = csrs_->Get(ns, name);
  if (!csr || Decided(*csr) ||
      api::GetString(*csr, {"spec", "signerName"}) != "kubernetes.io/kube-apiserver-client-kubelet")
    return Status::Ok();
  auto pem = Base64Decode(api::GetString(*csr, {"spec", "request"}));
  if (!pem) return Status::Ok();
  auto subject = read_(*pem);
  if (!subject.ok() || subject->alternative_names || !KubeletClientUsages(*csr) ||
      subject->organizations != std::vector<std::string>{"system:nodes"} ||
      !subject->common_name.starts_with("system:node:") ||
      subject->common_name.size() == std::string_view("system:node:").size())
    return Status::Ok();  // Not a node client certificate: a person decides.
  bool self = api::GetString(*csr, {"spec", "username"}) == subject->common_name;
  std::string message;
  if (self) {
    KISO_ASSIGN_OR_RETURN(bool may, RequesterMay(*csr, "selfnodeclient"));
    if (may) message = "Auto approving self kubelet client certificate after SubjectAccessReview.";
  }
  if (message.empty()) {
    KISO_ASSIGN_OR_RETURN(bool may, RequesterMay(*csr, "nodeclient"));
    if (may) message = "Auto approving kubelet client certificate after SubjectAccessReview.";
  }
  if (message.empty()) return Status::Ok();
  json::value next = *csr;
  auto& status = api::Child(next.as_object(), "status");
  json::value& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  std::string now = api::NowRfc3339();
  conditions.get_array().push_back(json::object{{"type", "Approved"},
                                                {"status", "True"},
                                                {"reason", "AutoApproved"},
                                                {"message", message},
                                                {"lastUpdateTime", now},
                                                {"lastTransitionTime", now}});
  auto res = client()->Update(Csrs(), "", next, "approval");
  return res.ok() || res.status().code() == Code::kNotFound ? Status::Ok() : res.status();
}

}  // namespace kiso::controller
