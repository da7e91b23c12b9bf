// ServiceAccount tokens as the authenticator reads them: arbitrary bytes as a
// bearer token (the JWS compact form split, base64url and JSON decoded, the
// header's alg and kid checked, the ES256 signature verified), and arbitrary
// JSON as claims signed then verified again, which must give them back. No
// input may crash or hang it.
#include <boost/json.hpp>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "apiserver/authn/tokens.h"

namespace {

kiso::apiserver::TokenSigner& Signer() {
  static std::unique_ptr<kiso::apiserver::TokenSigner> signer = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string path = std::string(tmp ? tmp : "/tmp") + "/fuzz-jwt-service-account.key";
    auto s = kiso::apiserver::TokenSigner::LoadOrCreate(path, "https://kiso.fuzz");
    if (!s.ok()) std::abort();
    return std::move(*s);
  }();
  return *signer;
}

// Claims kiso writes hold strings, integers, booleans, lists and objects; a
// double (1e63) need not come back bit for bit through JSON text.
bool NoDoubles(const boost::json::value& v) {
  if (v.is_double()) return false;
  if (v.is_array()) {
    for (const auto& e : v.get_array()) {
      if (!NoDoubles(e)) return false;
    }
  }
  if (v.is_object()) {
    for (const auto& [k, e] : v.get_object()) {
      if (!NoDoubles(e)) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto& signer = Signer();
  (void)signer.Verify(text);
  boost::system::error_code ec;
  boost::json::value claims = boost::json::parse(text, ec);
  if (!ec && claims.is_object() && NoDoubles(claims)) {
    std::string token = signer.Sign(claims.get_object());
    if (token.size() <= kiso::apiserver::TokenSigner::kMaxTokenBytes) {
      auto back = signer.Verify(token);
      if (!back.ok() || *back != claims.get_object()) std::abort();  // A signed token must verify.
    }
  }
  return 0;
}
