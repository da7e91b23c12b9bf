#include "apiserver/authn/authenticator.h"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>

#include "api/object.h"
#include "api/resources.h"
#include "api/validation.h"
#include "apiserver/authn/tokens.h"
#include "apiserver/watch_cache.h"
#include "common/base64.h"
#include "common/clock.h"

namespace kiso::apiserver {

namespace json = boost::json;

json::object UserInfo::ToJson() const {
  json::object out;
  if (!name.empty()) out["username"] = name;
  if (!uid.empty()) out["uid"] = uid;
  if (!groups.empty()) {
    json::array g;
    for (const auto& s : groups) g.emplace_back(s);
    out["groups"] = std::move(g);
  }
  if (!extra.empty()) {
    json::object e;
    for (const auto& [k, values] : extra) {
      json::array v;
      for (const auto& s : values) v.emplace_back(s);
      e[k] = std::move(v);
    }
    out["extra"] = std::move(e);
  }
  return out;
}

UserInfo UserInfo::FromJson(const json::object& obj) {
  UserInfo u;
  u.name = std::string(api::GetString(obj, {"username"}));
  u.uid = std::string(api::GetString(obj, {"uid"}));
  if (const auto* g = obj.if_contains("groups"); g && g->is_array()) {
    for (const auto& s : g->get_array())
      if (s.is_string()) u.groups.emplace_back(s.get_string());
  }
  if (const auto* e = obj.if_contains("extra"); e && e->is_object()) {
    for (const auto& [k, values] : e->get_object()) {
      auto& out = u.extra[std::string(k)];
      if (values.is_array()) {
        for (const auto& s : values.get_array())
          if (s.is_string()) out.emplace_back(s.get_string());
      }
    }
  }
  return u;
}

namespace {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void AddAuthenticated(UserInfo& u) {
  if (!u.InGroup(kAuthenticatedGroup)) u.groups.emplace_back(kAuthenticatedGroup);
}

std::string StoreKey(std::string_view resource, std::string_view ns, std::string_view name) {
  const api::ResourceType* t = api::FindResource("", "v1", resource);
  return t ? t->StoreKey(ns, name) : "";
}

}  // namespace

json::object ServiceAccountClaims(const TokenClaims& c, const std::string& id, int64_t now) {
  json::array aud;
  for (const auto& a : c.audiences) aud.emplace_back(a);
  json::object k8s{{"namespace", c.ns},
                   {"serviceaccount",
                    json::object{{"name", c.service_account}, {"uid", c.service_account_uid}}}};
  if (!c.bound_kind.empty()) {
    std::string field = c.bound_kind == "Pod"      ? "pod"
                        : c.bound_kind == "Secret" ? "secret"
                                                   : "node";
    k8s[field] = json::object{{"name", c.bound_name}, {"uid", c.bound_uid}};
  }
  if (!c.node_name.empty() && c.bound_kind == "Pod")
    k8s["node"] = json::object{{"name", c.node_name}, {"uid", c.node_uid}};
  return json::object{
      {"aud", std::move(aud)},
      {"exp", now + c.seconds},
      {"iat", now},
      {"iss", c.issuer},
      {"jti", id},
      {"kubernetes.io", std::move(k8s)},
      {"nbf", now},
      {"sub", fmt::format("{}{}:{}", kServiceAccountPrefix, c.ns, c.service_account)}};
}

std::optional<json::object> Authenticator::Lookup(const std::string& key) const {
  if (options_.cache == nullptr || key.empty()) return std::nullopt;
  ObjectPtr obj = options_.cache->Get(key);
  if (!obj) return std::nullopt;
  auto v = api::ParseJson(obj->json);
  if (!v.ok() || !v->is_object()) return std::nullopt;
  return std::move(v->as_object());
}

std::optional<UserInfo> Authenticator::Authenticate(const Request& req) const {
  if (req.peer && !req.peer->common_name.empty()) {
    UserInfo u;
    u.name = req.peer->common_name;
    u.groups = req.peer->organizations;
    AddAuthenticated(u);
    return u;
  }
  std::string_view auth = req.Header("authorization");
  // Bearer, case-insensitively, as Go's http parses the scheme.
  if (auth.size() < 7 || !std::equal(auth.begin(), auth.begin() + 7, "bearer ",
                                     [](char a, char b) { return std::tolower(a) == b; }))
    return std::nullopt;
  std::string_view token = auth.substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  auto user = AuthenticateToken(token, {});
  if (!user.ok()) return std::nullopt;
  return std::move(*user);
}

Result<UserInfo> Authenticator::AuthenticateToken(std::string_view token,
                                                  const std::vector<std::string>& audiences,
                                                  std::vector<std::string>* matched) const {
  if (token.empty()) return MakeStatus(Code::kUnauthenticated, "no token");
  if (!options_.admin_token.empty() && ConstantTimeEquals(token, options_.admin_token)) {
    if (matched) *matched = audiences.empty() ? options_.api_audiences : audiences;
    return UserInfo{
        "system:admin", "", {std::string(kMastersGroup), std::string(kAuthenticatedGroup)}, {}};
  }
  if (api::IsBootstrapToken(token)) {
    if (matched) *matched = audiences.empty() ? options_.api_audiences : audiences;
    return BootstrapToken(token);
  }
  if (std::count(token.begin(), token.end(), '.') == 2 && options_.signer != nullptr)
    return ServiceAccountToken(token, audiences, matched);
  return MakeStatus(Code::kUnauthenticated, "invalid bearer token");
}

Result<UserInfo> Authenticator::ServiceAccountToken(std::string_view token,
                                                    const std::vector<std::string>& audiences,
                                                    std::vector<std::string>* matched) const {
  auto claims = options_.signer->Verify(token);
  if (!claims.ok()) return MakeStatus(Code::kUnauthenticated, "{}", claims.status().message());
  const json::object& c = *claims;
  if (api::GetString(c, {"iss"}) != options_.signer->issuer())
    return MakeStatus(Code::kUnauthenticated, "token issued by another issuer");
  // Audiences: the token's must include one of the wanted ones.
  std::vector<std::string> token_aud;
  if (const auto* aud = c.if_contains("aud")) {
    if (aud->is_string()) token_aud.emplace_back(aud->get_string());
    if (aud->is_array()) {
      for (const auto& a : aud->get_array())
        if (a.is_string()) token_aud.emplace_back(a.get_string());
    }
  }
  const std::vector<std::string>& wanted = audiences.empty() ? options_.api_audiences : audiences;
  std::vector<std::string> both;
  for (const auto& a : wanted) {
    if (std::find(token_aud.begin(), token_aud.end(), a) != token_aud.end()) both.push_back(a);
  }
  if (both.empty()) return MakeStatus(Code::kUnauthenticated, "token audiences are invalid");
  int64_t now = static_cast<int64_t>(time(nullptr));
  const auto* exp = c.if_contains("exp");
  const auto* nbf = c.if_contains("nbf");
  constexpr int64_t kLeeway = 60;  // Clock skew, as the JWT validator allows.
  if (exp == nullptr || !exp->is_int64() || exp->get_int64() + kLeeway < now)
    return MakeStatus(Code::kUnauthenticated, "token has expired");
  if (nbf != nullptr && nbf->is_int64() && nbf->get_int64() - kLeeway > now)
    return MakeStatus(Code::kUnauthenticated, "token is not valid yet");
  const auto* k8s_v = c.if_contains("kubernetes.io");
  if (k8s_v == nullptr || !k8s_v->is_object())
    return MakeStatus(Code::kUnauthenticated, "token has no kubernetes.io claims");
  const json::object& k8s = k8s_v->get_object();
  std::string ns(api::GetString(k8s, {"namespace"}));
  std::string sa_name(api::GetString(k8s, {"serviceaccount", "name"}));
  std::string sa_uid(api::GetString(k8s, {"serviceaccount", "uid"}));
  auto sa = Lookup(StoreKey("serviceaccounts", ns, sa_name));
  if (!sa || api::GetString(*sa, {"metadata", "uid"}) != sa_uid) {
    return MakeStatus(Code::kUnauthenticated, "service account {}/{} ({}) no longer exists", ns,
                      sa_name, sa_uid);
  }
  UserInfo u;
  u.name = fmt::format("{}{}:{}", kServiceAccountPrefix, ns, sa_name);
  u.uid = sa_uid;
  u.groups = {"system:serviceaccounts", "system:serviceaccounts:" + ns,
              std::string(kAuthenticatedGroup)};
  // The objects a token is bound to must still be there, the same ones.
  for (const auto& [field, resource] : {std::pair<const char*, const char*>{"pod", "pods"},
                                        {"secret", "secrets"},
                                        {"node", "nodes"}}) {
    const auto* bound = k8s.if_contains(field);
    if (bound == nullptr || !bound->is_object()) continue;
    std::string name(api::GetString(*bound, {"name"}));
    std::string uid(api::GetString(*bound, {"uid"}));
    bool node_of_pod = std::string_view(field) == "node" && k8s.contains("pod");
    auto obj = Lookup(StoreKey(resource, std::string_view(field) == "node" ? "" : ns, name));
    if (!node_of_pod) {
      if (!obj || api::GetString(*obj, {"metadata", "uid"}) != uid) {
        return MakeStatus(Code::kUnauthenticated,
                          "the {} {} ({}) the token is bound to no longer exists", field, name,
                          uid);
      }
      if (std::string_view(field) == "pod" && api::Find(*obj, {"metadata", "deletionTimestamp"})) {
        return MakeStatus(Code::kUnauthenticated,
                          "the pod {} the token is bound to is being deleted", name);
      }
    }
    u.extra[fmt::format("authentication.kubernetes.io/{}-name", field)] = {name};
    u.extra[fmt::format("authentication.kubernetes.io/{}-uid", field)] = {uid};
  }
  if (std::string_view jti = api::GetString(c, {"jti"}); !jti.empty())
    u.extra["authentication.kubernetes.io/credential-id"] = {fmt::format("JTI={}", jti)};
  if (matched) *matched = std::move(both);
  return u;
}

Result<UserInfo> Authenticator::BootstrapToken(std::string_view token) const {
  std::string id(token.substr(0, 6));
  std::string secret(token.substr(7));
  auto obj = Lookup(StoreKey("secrets", "kube-system", "bootstrap-token-" + id));
  if (!obj || api::GetString(*obj, {"type"}) != "bootstrap.kubernetes.io/token")
    return MakeStatus(Code::kUnauthenticated, "no bootstrap token {}", id);
  auto data = [&](const char* key) -> std::string {
    auto v = Base64Decode(api::GetString(*obj, {"data", key}));
    return v.value_or("");
  };
  if (data("token-id") != id || !ConstantTimeEquals(data("token-secret"), secret) ||
      data("usage-bootstrap-authentication") != "true")
    return MakeStatus(Code::kUnauthenticated, "bootstrap token {} is not valid", id);
  if (std::string expiration = data("expiration"); !expiration.empty()) {
    auto when = ParseRfc3339(expiration);
    if (!when || when->seconds < static_cast<int64_t>(time(nullptr)))
      return MakeStatus(Code::kUnauthenticated, "bootstrap token {} has expired", id);
  }
  UserInfo u;
  u.name = "system:bootstrap:" + id;
  u.groups = {"system:bootstrappers"};
  std::string extra = data("auth-extra-groups");
  for (size_t start = 0; start < extra.size();) {
    size_t comma = extra.find(',', start);
    std::string g = extra.substr(start, comma == std::string::npos ? comma : comma - start);
    if (g.starts_with("system:bootstrappers:")) u.groups.push_back(g);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  AddAuthenticated(u);
  return u;
}

}  // namespace kiso::apiserver
