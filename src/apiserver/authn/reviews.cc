// authentication.k8s.io: TokenRequest (serviceaccounts/token), TokenReview,
// SelfSubjectReview; and the OIDC discovery documents of the token issuer.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <ctime>

#include "api/object.h"
#include "apiserver/authn/authenticator.h"
#include "apiserver/authn/tokens.h"
#include "apiserver/authz/node_authorizer.h"
#include "apiserver/verbs/handlers.h"
#include "common/clock.h"

namespace kiso::apiserver {

namespace json = boost::json;
using api::ApiError;

namespace {

// Kubernetes' bounds on a requested token lifetime.
constexpr int64_t kMinExpiration = 600;
constexpr int64_t kMaxExpiration = int64_t{1} << 32;

json::array Array(const std::vector<std::string>& v) {
  json::array out;
  for (const auto& s : v) out.emplace_back(s);
  return out;
}

std::vector<std::string> Strings(const json::value* v) {
  std::vector<std::string> out;
  if (v != nullptr && v->is_array()) {
    for (const auto& s : v->get_array())
      if (s.is_string()) out.emplace_back(s.get_string());
  }
  return out;
}

ApiError InvalidTokenRequest(const std::string& name, std::string field, std::string message) {
  ApiError e = api::Invalid(*api::FindResource("", "v1", "serviceaccounts"), name,
                            {{"FieldValueInvalid", std::move(message), std::move(field)}});
  // Upstream names the TokenRequest, not the service account.
  e.kind = "TokenRequest";
  e.group = "authentication.k8s.io";
  e.message = fmt::format("TokenRequest.authentication.k8s.io {:?} is invalid: {}: {}", name,
                          e.causes[0].field, e.causes[0].message);
  return e;
}

}  // namespace

Response HandleTokenRequest(const Context& ctx, const Target& t, const Request& req) {
  if (t.verb != "create") return ErrorResponse(api::MethodNotAllowed());
  if (ctx.signer == nullptr) return ErrorResponse(api::ServiceUnavailable("no token signer"));
  // The body is a TokenRequest (authentication.k8s.io/v1), a kind served only here.
  api::ResourceType token_type = *t.type;
  token_type.group = "authentication.k8s.io";
  token_type.version = "v1";
  token_type.kind = "TokenRequest";
  Target body_target = t;
  body_target.type = &token_type;
  auto body = DecodeBody(req, body_target);
  if (!body.ok()) return ErrorResponse(body.error());
  if (!body->is_object()) return ErrorResponse(api::BadRequest("the body must be a TokenRequest"));
  json::object& tr = body->as_object();
  auto sa = ReadFromCache(ctx, *t.type, t.ns, t.name);
  // The cache may trail a service account just made: the store decides.
  if (!sa) sa = ReadFromStore(ctx, *t.type, t.ns, t.name);
  if (!sa) return ErrorResponse(api::NotFound(*t.type, t.name));
  TokenClaims claims;
  claims.issuer = ctx.signer->issuer();
  claims.ns = t.ns;
  claims.service_account = t.name;
  claims.service_account_uid = std::string(api::GetString(*sa, {"metadata", "uid"}));
  json::object& spec = api::Child(tr, "spec");
  claims.audiences = Strings(spec.if_contains("audiences"));
  if (claims.audiences.empty()) claims.audiences = ctx.authn->api_audiences();
  spec["audiences"] = Array(claims.audiences);
  if (const auto* e = spec.if_contains("expirationSeconds"); e && e->is_int64()) {
    claims.seconds = e->get_int64();
  }
  if (claims.seconds < kMinExpiration) {
    return ErrorResponse(InvalidTokenRequest(t.name, "spec.expirationSeconds",
                                             fmt::format("Invalid value: {}: may not specify a "
                                                         "duration less than 10 minutes",
                                                         claims.seconds)));
  }
  if (claims.seconds > kMaxExpiration) {
    return ErrorResponse(InvalidTokenRequest(
        t.name, "spec.expirationSeconds",
        fmt::format("Invalid value: {}: may not specify a duration larger than 2^32 seconds",
                    claims.seconds)));
  }
  spec["expirationSeconds"] = claims.seconds;
  std::string node = req.user ? NodeOf(*req.user) : "";
  if (const auto* ref = spec.if_contains("boundObjectRef"); ref && ref->is_object()) {
    claims.bound_kind = std::string(api::GetString(*ref, {"kind"}));
    claims.bound_name = std::string(api::GetString(*ref, {"name"}));
    std::string uid(api::GetString(*ref, {"uid"}));
    std::string resource = claims.bound_kind == "Pod"      ? "pods"
                           : claims.bound_kind == "Secret" ? "secrets"
                           : claims.bound_kind == "Node"   ? "nodes"
                                                           : "";
    if (resource.empty()) {
      return ErrorResponse(InvalidTokenRequest(
          t.name, "spec.boundObjectRef.kind",
          fmt::format("Unsupported value: {:?}: supported values: \"Node\", \"Pod\", \"Secret\"",
                      claims.bound_kind)));
    }
    const api::ResourceType* bound_type = api::FindResource("", "v1", resource);
    auto bound =
        ReadFromCache(ctx, *bound_type, resource == "nodes" ? "" : t.ns, claims.bound_name);
    if (!bound) return ErrorResponse(api::NotFound(*bound_type, claims.bound_name));
    claims.bound_uid = std::string(api::GetString(*bound, {"metadata", "uid"}));
    if (!uid.empty() && uid != claims.bound_uid) {
      ApiError e = api::Conflict(*bound_type, claims.bound_name,
                                 fmt::format("the UID in the bound object reference ({}) does not "
                                             "match the UID in record. The object might have been "
                                             "deleted and then recreated",
                                             uid));
      return ErrorResponse(e);
    }
    if (claims.bound_kind == "Pod") {
      claims.node_name = std::string(api::GetString(*bound, {"spec", "nodeName"}));
      if (auto n = ReadFromCache(ctx, *api::FindResource("", "v1", "nodes"), "", claims.node_name))
        claims.node_uid = std::string(api::GetString(*n, {"metadata", "uid"}));
      std::string pod_sa(api::GetString(*bound, {"spec", "serviceAccountName"}));
      if ((pod_sa.empty() ? "default" : pod_sa) != t.name) {
        return ErrorResponse(api::BadRequest(fmt::format(
            "cannot bind a token of service account {:?} to pod {:?}, which runs as {:?}", t.name,
            claims.bound_name, pod_sa)));
      }
    }
    json::object r = ref->as_object();
    r["uid"] = claims.bound_uid;
    if (!r.contains("apiVersion")) r["apiVersion"] = "v1";
    spec["boundObjectRef"] = std::move(r);
  }
  // NodeRestriction: a node asks only for tokens bound to pods it runs.
  if (!node.empty() && (claims.bound_kind != "Pod" || claims.node_name != node)) {
    return ErrorResponse(api::Forbidden(
        *api::FindResource("", "v1", "serviceaccounts"), t.name,
        fmt::format("node {:?} can only request tokens bound to pods it runs", node)));
  }
  int64_t now = static_cast<int64_t>(time(nullptr));
  std::string token = ctx.signer->Sign(ServiceAccountClaims(claims, api::NewUid(), now));
  auto& meta = api::Child(tr, "metadata");
  meta["name"] = t.name;
  meta["namespace"] = t.ns;
  meta["creationTimestamp"] = FormatRfc3339({now, 0});
  tr["apiVersion"] = "authentication.k8s.io/v1";
  tr["kind"] = "TokenRequest";
  tr["status"] = json::object{{"token", token},
                              {"expirationTimestamp", FormatRfc3339({now + claims.seconds, 0})}};
  return ObjectResponse(201, std::move(*body));
}

// TokenReview and SelfSubjectReview; the authorization reviews are in authz/reviews.cc.
Response HandleAuthenticationReview(const Context& ctx, const Target& t, const Request& req,
                                    json::object review) {
  review.erase("status");
  api::Child(review, "metadata")["creationTimestamp"] = nullptr;
  if (t.type->kind == "SelfSubjectReview") {
    json::object user = req.user ? req.user->ToJson()
                                 : json::object{{"username", "system:apiserver"},
                                                {"groups", json::array{"system:masters"}}};
    review["status"] = json::object{{"userInfo", std::move(user)}};
    return ObjectResponse(201, std::move(review));
  }
  // TokenReview.
  std::string token(api::GetString(review, {"spec", "token"}));
  std::vector<std::string> audiences = Strings(api::Find(review, {"spec", "audiences"}));
  std::vector<std::string> matched;
  auto user = ctx.authn->AuthenticateToken(token, audiences, &matched);
  json::object status;
  if (user.ok()) {
    status["authenticated"] = true;
    status["user"] = user->ToJson();
    status["audiences"] = Array(matched);
  } else {
    status["user"] = json::object();
    status["error"] = user.status().message();
  }
  review["status"] = std::move(status);
  return ObjectResponse(201, std::move(review));
}

std::optional<Response> HandleOidc(const Context& ctx, const Request& req) {
  if (ctx.signer == nullptr) return std::nullopt;
  std::string path = req.path;
  if (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/.well-known/openid-configuration") {
    json::object doc{
        {"issuer", ctx.signer->issuer()},
        {"jwks_uri", fmt::format("https://{}/openid/v1/jwks", ctx.server_address)},
        {"response_types_supported", json::array{"id_token"}},
        {"subject_types_supported", json::array{"public"}},
        {"id_token_signing_alg_values_supported", json::array{ctx.signer->algorithm()}}};
    return JsonResponse(200, json::serialize(doc));
  }
  if (path == "/openid/v1/jwks") {
    Response r = JsonResponse(200, json::serialize(ctx.signer->Jwks()));
    r.content_type = "application/jwk-set+json";
    return r;
  }
  return std::nullopt;
}

}  // namespace kiso::apiserver
