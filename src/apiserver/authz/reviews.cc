// authorization.k8s.io: SelfSubjectAccessReview (kubectl auth can-i),
// SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview
// (kubectl auth can-i --list). Each is answered by the same authorizers that
// guard requests, and never stored.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "apiserver/authz/authorizer.h"
#include "apiserver/authz/rbac.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

Response HandleAuthenticationReview(const Context& ctx, const Target& t, const Request& req,
                                    json::object review);

namespace {

Attributes FromSpec(const json::object& spec, const UserInfo* user) {
  Attributes a;
  a.user = user;
  if (const auto* r = spec.if_contains("resourceAttributes"); r && r->is_object()) {
    a.resource_request = true;
    a.verb = std::string(api::GetString(*r, {"verb"}));
    a.api_group = std::string(api::GetString(*r, {"group"}));
    a.api_version = std::string(api::GetString(*r, {"version"}));
    a.resource = std::string(api::GetString(*r, {"resource"}));
    a.subresource = std::string(api::GetString(*r, {"subresource"}));
    a.ns = std::string(api::GetString(*r, {"namespace"}));
    a.name = std::string(api::GetString(*r, {"name"}));
  } else if (const auto* n = spec.if_contains("nonResourceAttributes"); n && n->is_object()) {
    a.resource_request = false;
    a.verb = std::string(api::GetString(*n, {"verb"}));
    a.path = std::string(api::GetString(*n, {"path"}));
  }
  return a;
}

// allowed, and why; `denied` is left out: no authorizer here denies
// explicitly (a denial is every authorizer having no opinion).
json::object AccessStatus(const AuthorizationResult& r) {
  json::object status{{"allowed", r.decision == Decision::kAllow}};
  if (!r.reason.empty()) status["reason"] = r.reason;
  return status;
}

api::ApiError Invalid(const Target& t, std::string field, std::string message) {
  return api::Invalid(*t.type, "", {{"FieldValueRequired", std::move(message), std::move(field)}});
}

}  // namespace

Response HandleReview(const Context& ctx, const Target& t, const Request& req) {
  if (t.verb != "create") return ErrorResponse(api::MethodNotAllowed());
  auto body = DecodeBody(req, t);
  if (!body.ok()) return ErrorResponse(body.error());
  if (!body->is_object()) return ErrorResponse(api::BadRequest("the body must be an object"));
  json::object review = std::move(body->as_object());
  if (auto err = CheckIdentity(t, review)) return ErrorResponse(*err);
  review["apiVersion"] = t.type->GroupVersion();
  review["kind"] = t.type->kind;
  const std::string& kind = t.type->kind;
  if (kind == "TokenReview" || kind == "SelfSubjectReview")
    return HandleAuthenticationReview(ctx, t, req, std::move(review));

  review.erase("status");
  api::Child(review, "metadata")["creationTimestamp"] = nullptr;
  json::object& spec = api::Child(review, "spec");
  // The user asked about: the requester (Self…), or the one named in the spec.
  UserInfo named;
  const UserInfo* user = req.user.get();
  static const UserInfo kInProcess{"system:apiserver", "", {"system:masters"}, {}};
  if (user == nullptr) user = &kInProcess;
  if (kind == "SubjectAccessReview" || kind == "LocalSubjectAccessReview") {
    named = UserInfo::FromJson(spec);
    if (const auto* u = spec.if_contains("user"); u && u->is_string()) named.name = u->get_string();
    if (named.name.empty() && named.groups.empty()) {
      return ErrorResponse(
          Invalid(t, "spec.user", "at least one of user or group must be specified"));
    }
    user = &named;
  }
  if (kind == "SelfSubjectRulesReview") {
    std::string ns(api::GetString(spec, {"namespace"}));
    std::vector<std::string> errors;
    std::vector<PolicyRule> rules;
    if (user->InGroup(kMastersGroup)) {
      PolicyRule all;
      all.verbs = all.api_groups = all.resources = {"*"};
      PolicyRule urls;
      urls.verbs = urls.non_resource_urls = {"*"};
      rules = {all, urls};
    } else if (ctx.rbac != nullptr) {
      rules = ctx.rbac->RulesFor(*user, ns, &errors);
    }
    json::array resource_rules, non_resource_rules;
    for (const auto& r : rules) {
      json::object o = r.ToJson();
      if (!r.non_resource_urls.empty()) {
        o.erase("apiGroups");
        non_resource_rules.push_back(std::move(o));
      } else {
        resource_rules.push_back(std::move(o));
      }
    }
    json::object status{{"resourceRules", std::move(resource_rules)},
                        {"nonResourceRules", std::move(non_resource_rules)},
                        {"incomplete", !errors.empty()}};
    if (!errors.empty()) {
      std::string joined;
      for (const auto& e : errors) joined += (joined.empty() ? "" : ", ") + e;
      status["evaluationError"] = joined;
    }
    review["status"] = std::move(status);
    return ObjectResponse(201, std::move(review));
  }
  // Access reviews.
  if (!spec.contains("resourceAttributes") && !spec.contains("nonResourceAttributes")) {
    return ErrorResponse(Invalid(t, "spec.resourceAttributes",
                                 "exactly one of nonResourceAttributes or resourceAttributes must "
                                 "be specified"));
  }
  Attributes a = FromSpec(spec, user);
  if (kind == "LocalSubjectAccessReview") {
    if (a.resource_request && a.ns.empty()) a.ns = t.ns;
    if (!a.resource_request || a.ns != t.ns) {
      return ErrorResponse(
          Invalid(t, "spec.resourceAttributes.namespace", "must match metadata.namespace"));
    }
  }
  AuthorizationResult r =
      ctx.authz != nullptr ? ctx.authz->Authorize(a) : AuthorizationResult{Decision::kAllow, ""};
  review["status"] = AccessStatus(r);
  return ObjectResponse(201, std::move(review));
}

}  // namespace kiso::apiserver
