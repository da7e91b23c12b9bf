// CertificateSigningRequests (certificates.k8s.io/v1) as kube-apiserver
// admits them:
//   - a create records who asks (spec.username, uid, groups, extra, whatever
//     the body said) and needs a PEM CERTIFICATE REQUEST its own key signed;
//     for the kube-apiserver client signers, usages within "client auth",
//     "digital signature" and "key encipherment", "client auth" among them;
//   - an approval (the /approval subresource) needs the `approve` verb on
//     `signers` for the request's signerName (or its "domain/*"), a
//     certificate written to /status the `sign` verb, beyond RBAC's check
//     of the subresource itself; system:masters and kiso's own signer pass.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/admission/plugins.h"
#include "apiserver/authn/credentials.h"
#include "apiserver/authn/user.h"
#include "apiserver/authz/authorizer.h"
#include "apiserver/verbs/handlers.h"
#include "common/base64.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

constexpr std::string_view kGroup = "certificates.k8s.io";

bool IsClientSigner(std::string_view signer) {
  return signer == "kubernetes.io/kube-apiserver-client" ||
         signer == "kubernetes.io/kube-apiserver-client-kubelet";
}

class CertificateSigning : public AdmissionPlugin {
 public:
  std::string_view name() const override { return "CertificateSigning"; }

  api::ApiStatus Mutate(const AdmissionRequest& r, json::object& csr) const override {
    if (!IsCsr(*r.target)) return std::nullopt;
    if (r.operation == "UPDATE" && r.old) {
      // The request, its signer and who asked never change (upstream's
      // strategy keeps the old spec): an approver reads them.
      if (const auto* spec = r.old->if_contains("spec")) {
        csr["spec"] = *spec;
      } else {
        csr.erase("spec");
      }
      return std::nullopt;
    }
    if (r.operation != "CREATE" || !r.user()) return std::nullopt;
    const UserInfo& user = *r.user();
    auto& spec = api::Child(csr, "spec");
    spec["username"] = user.name;
    if (user.uid.empty()) {
      spec.erase("uid");
    } else {
      spec["uid"] = user.uid;
    }
    json::array groups;
    for (const auto& g : user.groups) groups.emplace_back(g);
    spec["groups"] = std::move(groups);
    json::object extra;
    for (const auto& [k, vs] : user.extra) {
      json::array values;
      for (const auto& v : vs) values.emplace_back(v);
      extra[k] = std::move(values);
    }
    if (extra.empty()) {
      spec.erase("extra");
    } else {
      spec["extra"] = std::move(extra);
    }
    return std::nullopt;
  }

  api::ApiStatus Validate(const AdmissionRequest& r, const json::object& csr) const override {
    const Target& t = *r.target;
    if (!IsCsr(t)) return std::nullopt;
    std::string name(api::GetString(csr, {"metadata", "name"}));
    std::string signer(api::GetString(csr, {"spec", "signerName"}));
    if (r.operation == "CREATE" && t.subresource.empty()) return CheckCreate(t, csr, name, signer);
    if (r.operation != "UPDATE") return std::nullopt;
    const UserInfo* user = r.user();
    if (!user || user->InGroup(kMastersGroup) || !r.ctx->authz) return std::nullopt;
    if (t.subresource == "approval" && Changed(r, csr, "conditions") &&
        !MaySigner(*r.ctx, *user, "approve", signer)) {
      return AdmissionForbidden(
          t, name,
          fmt::format("user not permitted to approve requests with signerName {:?}", signer));
    }
    if (t.subresource == "status" && Changed(r, csr, "certificate") &&
        !MaySigner(*r.ctx, *user, "sign", signer)) {
      return AdmissionForbidden(
          t, name, fmt::format("user not permitted to sign requests with signerName {:?}", signer));
    }
    return std::nullopt;
  }

 private:
  static bool IsCsr(const Target& t) {
    return t.type->group == kGroup && t.type->plural == "certificatesigningrequests";
  }

  static bool Changed(const AdmissionRequest& r, const json::object& csr, std::string_view field) {
    const auto* now = api::Find(csr, {"status", field});
    const auto* before = r.old ? api::Find(*r.old, {"status", field}) : nullptr;
    if (!now && !before) return false;
    return !now || !before || *now != *before;
  }

  // `verb` on signers/<signerName>, or on signers/<domain>/* (upstream's two checks).
  static bool MaySigner(const Context& ctx, const UserInfo& user, const std::string& verb,
                        const std::string& signer) {
    for (const std::string& name : {signer, signer.substr(0, signer.find('/')) + "/*"}) {
      Attributes a;
      a.user = &user;
      a.verb = verb;
      a.api_group = std::string(kGroup);
      a.api_version = "v1";
      a.resource = "signers";
      a.name = name;
      if (ctx.authz->Authorize(a).decision == Decision::kAllow) return true;
    }
    return false;
  }

  static api::ApiStatus CheckCreate(const Target& t, const json::object& csr,
                                    const std::string& name, const std::string& signer) {
    std::vector<api::Cause> causes;
    std::string_view request = api::GetString(csr, {"spec", "request"});
    if (request.empty()) {
      causes.push_back({"FieldValueRequired", "Required value", "spec.request"});
    } else if (auto pem = Base64Decode(request); !pem) {
      causes.push_back(
          {"FieldValueInvalid", "Invalid value: []byte{...}: illegal base64 data", "spec.request"});
    } else if (auto checked = CheckCertificateRequest(*pem); !checked.ok()) {
      causes.push_back({"FieldValueInvalid",
                        fmt::format("Invalid value: []byte{{...}}: {}", checked.message()),
                        "spec.request"});
    }
    if (signer.empty())
      causes.push_back({"FieldValueRequired", "Required value", "spec.signerName"});
    const auto* usages = api::Find(csr, {"spec", "usages"});
    if (!usages || !usages->is_array() || usages->get_array().empty()) {
      causes.push_back({"FieldValueRequired", "Required value", "spec.usages"});
    } else if (IsClientSigner(signer)) {
      bool client = false;
      size_t i = 0;
      for (const auto& u : usages->get_array()) {
        std::string_view usage = u.is_string() ? std::string_view(u.get_string()) : "";
        client = client || usage == "client auth";
        if (usage != "client auth" && usage != "digital signature" && usage != "key encipherment") {
          causes.push_back({"FieldValueNotSupported",
                            fmt::format("Unsupported value: {:?}: supported values: \"client "
                                        "auth\", \"digital signature\", \"key encipherment\"",
                                        usage),
                            fmt::format("spec.usages[{}]", i)});
        }
        ++i;
      }
      if (!client) {
        causes.push_back({"FieldValueRequired",
                          "Required value: missing required usages: client auth", "spec.usages"});
      }
    }
    if (const auto* e = api::Find(csr, {"spec", "expirationSeconds"});
        e && e->is_int64() && e->get_int64() < 600) {
      causes.push_back(
          {"FieldValueInvalid",
           fmt::format("Invalid value: {}: may not specify a duration less than 600 seconds (10 "
                       "minutes)",
                       e->get_int64()),
           "spec.expirationSeconds"});
    }
    if (causes.empty()) return std::nullopt;
    return api::Invalid(*t.type, name, std::move(causes));
  }
};

}  // namespace

std::unique_ptr<AdmissionPlugin> NewCertificateSigning() {
  return std::make_unique<CertificateSigning>();
}

}  // namespace kiso::apiserver
