// ServiceAccount tokens: JSON Web Tokens (RFC 7519) signed RS256 with a key
// of the server's (kube-apiserver's --service-account-signing-key-file),
// published as a JWK set for OIDC discovery. OpenSSL signs and verifies.
#pragma once

#include <boost/json/object.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso::apiserver {

class TokenSigner {
 public:
  // Loads the key at `key_path` (ECDSA P-256, signing ES256; or RSA, RS256,
  // as data dirs made before kept it), or creates a P-256 one (mode 0600).
  static Result<std::unique_ptr<TokenSigner>> LoadOrCreate(const std::string& key_path,
                                                           std::string issuer);
  ~TokenSigner();
  TokenSigner(const TokenSigner&) = delete;
  TokenSigner& operator=(const TokenSigner&) = delete;

  // header.payload.signature, the header naming the algorithm and this key's id.
  std::string Sign(const boost::json::object& claims) const;
  // The claims of a token this key signed. Checks the form (at most
  // kMaxTokenBytes), the algorithm, the key id and the signature; not the
  // claims' meaning (issuer, audience, times: the caller's).
  Result<boost::json::object> Verify(std::string_view token) const;

  const std::string& issuer() const { return issuer_; }
  const std::string& key_id() const { return key_id_; }
  const std::string& algorithm() const { return algorithm_; }
  // {"keys":[{"use":"sig","kid":…,"alg":"ES256","kty":"EC","crv":"P-256","x":…,"y":…}]}
  // (an RSA key: "kty":"RSA","n":…,"e":…).
  boost::json::object Jwks() const;

  static constexpr size_t kMaxTokenBytes = 16 << 10;

 private:
  TokenSigner() = default;
  struct Key;
  std::unique_ptr<Key> key_;
  std::string issuer_;
  std::string key_id_;
  std::string algorithm_;  // ES256 or RS256.
};

}  // namespace kiso::apiserver
