// Authentication: who sent a request, from the credentials it carries, in
// kube-apiserver's order —
//   - a TLS client certificate signed by the cluster CA (CN the user, O the groups);
//   - a bearer token: the admin token (system:admin in system:masters), a
//     ServiceAccount token (a JWT this server signed: issuer, audience, expiry,
//     and the service account and the pod, secret or node it is bound to
//     still there with the same UID), or a bootstrap token (the Secret
//     kube-system/bootstrap-token-<id>, unexpired, usable for authentication).
// Every user found is also in system:authenticated.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "apiserver/authn/user.h"
#include "apiserver/http/http.h"
#include "common/status.h"

namespace kiso::apiserver {

class TokenSigner;
class WatchCache;

struct AuthenticatorOptions {
  std::string admin_token;
  const TokenSigner* signer = nullptr;
  // The audiences a token must name one of (kube-apiserver's --api-audiences;
  // its default, the issuer).
  std::vector<std::string> api_audiences;
  WatchCache* cache = nullptr;  // ServiceAccounts, pods, secrets, nodes.
};

class Authenticator {
 public:
  explicit Authenticator(AuthenticatorOptions options) : options_(std::move(options)) {}

  // The request's user; nullopt when it carries no credentials kiso accepts.
  std::optional<UserInfo> Authenticate(const Request& req) const;

  // A bearer token's user when it is valid for one of `audiences` (empty: the
  // API's); `matched` gets the audiences it was valid for. Unauthenticated
  // with the reason otherwise (TokenReview reports it).
  Result<UserInfo> AuthenticateToken(std::string_view token,
                                     const std::vector<std::string>& audiences,
                                     std::vector<std::string>* matched = nullptr) const;

  const std::vector<std::string>& api_audiences() const { return options_.api_audiences; }

 private:
  Result<UserInfo> ServiceAccountToken(std::string_view token,
                                       const std::vector<std::string>& audiences,
                                       std::vector<std::string>* matched) const;
  Result<UserInfo> BootstrapToken(std::string_view token) const;
  // The object at `key` in the cache, parsed; nullopt when there is none.
  std::optional<boost::json::object> Lookup(const std::string& key) const;

  AuthenticatorOptions options_;
};

// The claims of a ServiceAccount token (kube-apiserver's bound tokens): for
// `audiences`, valid `seconds` from now, bound to the service account and,
// when `bound_kind` is set, to that Pod, Secret or Node (with `bound_name`
// and `bound_uid`).
struct TokenClaims {
  std::string issuer;
  std::vector<std::string> audiences;
  int64_t seconds = 3600;
  std::string ns;
  std::string service_account;
  std::string service_account_uid;
  std::string bound_kind;
  std::string bound_name;
  std::string bound_uid;
  std::string node_name;  // For a pod: the node it runs on.
  std::string node_uid;
};
// The JWT claims for `c`, issued now; `id` is the token's jti.
boost::json::object ServiceAccountClaims(const TokenClaims& c, const std::string& id, int64_t now);

}  // namespace kiso::apiserver
