#include "apiserver/authn/tokens.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <vector>

#include "api/object.h"
#include "common/base64.h"
#include "common/file.h"

namespace kiso::apiserver {

namespace json = boost::json;

struct TokenSigner::Key {
  EVP_PKEY* pkey = nullptr;
  ~Key() { EVP_PKEY_free(pkey); }
};

namespace {

// A key parameter as big-endian bytes, left-padded with zeros to `width`
// (0: as short as the number).
std::string BigEndian(const EVP_PKEY* key, const char* param, int width = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &bn) != 1) return "";
  int size = std::max(width, BN_num_bytes(bn));
  std::string out(static_cast<size_t>(size), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), size);
  BN_free(bn);
  return out;
}

// ES256 signatures are r‖s, 32 bytes each (RFC 7518 3.4); OpenSSL's are DER.
constexpr int kP256Bytes = 32;
constexpr size_t kSignatureBytes = 64;

std::string DerToRaw(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) return "";
  std::string out(kSignatureBytes, '\0');
  auto* raw = reinterpret_cast<unsigned char*>(out.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, kP256Bytes);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + kP256Bytes, kP256Bytes);
  ECDSA_SIG_free(sig);
  return out;
}

std::string RawToDer(std::string_view raw) {
  if (raw.size() != kSignatureBytes) return "";
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(bytes, kP256Bytes, nullptr),
                 BN_bin2bn(bytes + kP256Bytes, kP256Bytes, nullptr));
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return "";
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace

TokenSigner::~TokenSigner() = default;

Result<std::unique_ptr<TokenSigner>> TokenSigner::LoadOrCreate(const std::string& key_path,
                                                               std::string issuer) {
  auto signer = std::unique_ptr<TokenSigner>(new TokenSigner());
  signer->key_ = std::make_unique<Key>();
  signer->issuer_ = std::move(issuer);
  if (!std::filesystem::exists(key_path)) {
    // ECDSA P-256, which kube-apiserver also takes: generated in well under a
    // millisecond where an RSA key took 0.1–0.2 s of every first start.
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (key == nullptr) return MakeStatus(Code::kInternal, "generate the service-account key");
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<size_t>(len));
    BIO_free(bio);
    EVP_PKEY_free(key);
    KISO_RETURN_IF_ERROR(WriteFileAtomic(key_path, pem, 0600));
  }
  KISO_ASSIGN_OR_RETURN(std::string pem, ReadFile(key_path));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  signer->key_->pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (signer->key_->pkey == nullptr)
    return MakeStatus(Code::kDataLoss, "{}: not a private key", key_path);
  if (EVP_PKEY_get_base_id(signer->key_->pkey) == EVP_PKEY_RSA) {
    signer->algorithm_ = "RS256";  // A data dir from before ECDSA keys.
  } else if (EVP_PKEY_get_base_id(signer->key_->pkey) == EVP_PKEY_EC &&
             EVP_PKEY_get_bits(signer->key_->pkey) == 256) {
    signer->algorithm_ = "ES256";
  } else {
    return MakeStatus(Code::kDataLoss, "{}: neither an RSA nor a P-256 key", key_path);
  }
  // The key id, as kube-apiserver derives it: SHA-256 of the DER public key, base64url.
  unsigned char* der = nullptr;
  int der_len = i2d_PUBKEY(signer->key_->pkey, &der);
  if (der_len <= 0) return MakeStatus(Code::kInternal, "encode the service-account public key");
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(der_len), digest);
  OPENSSL_free(der);
  signer->key_id_ =
      Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
  return signer;
}

std::string TokenSigner::Sign(const json::object& claims) const {
  json::object header{{"alg", algorithm_}, {"kid", key_id_}};
  std::string signing_input =
      Base64UrlEncode(json::serialize(header)) + "." + Base64UrlEncode(json::serialize(claims));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string signature;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) == 1) {
    signature.resize(len);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) == 1) {
      signature.resize(len);
    } else {
      signature.clear();
    }
  }
  EVP_MD_CTX_free(ctx);
  if (algorithm_ == "ES256") signature = DerToRaw(signature);
  return signing_input + "." + Base64UrlEncode(signature);
}

Result<json::object> TokenSigner::Verify(std::string_view token) const {
  if (token.size() > kMaxTokenBytes) return MakeStatus(Code::kInvalidArgument, "token too long");
  size_t first = token.find('.');
  size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos)
    return MakeStatus(Code::kInvalidArgument, "not a JSON Web Token (three parts)");
  auto header_raw = Base64UrlDecode(token.substr(0, first));
  auto payload_raw = Base64UrlDecode(token.substr(first + 1, second - first - 1));
  auto signature = Base64UrlDecode(token.substr(second + 1));
  if (!header_raw || !payload_raw || !signature)
    return MakeStatus(Code::kInvalidArgument, "a part of the token is not base64url");
  auto header = api::ParseJson(*header_raw);
  if (!header.ok() || !header->is_object())
    return MakeStatus(Code::kInvalidArgument, "the token's header is not a JSON object");
  if (api::GetString(*header, {"alg"}) != algorithm_)
    return MakeStatus(Code::kUnauthenticated, "the token is not signed {}", algorithm_);
  if (const auto* kid = header->as_object().if_contains("kid");
      kid != nullptr && (!kid->is_string() || kid->get_string() != key_id_))
    return MakeStatus(Code::kUnauthenticated, "the token was signed by another key");
  std::string_view signing_input = token.substr(0, second);
  if (algorithm_ == "ES256") *signature = RawToDer(*signature);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool valid = !signature->empty() &&
               EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey) == 1 &&
               EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature->data()),
                                signature->size(),
                                reinterpret_cast<const unsigned char*>(signing_input.data()),
                                signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!valid) return MakeStatus(Code::kUnauthenticated, "the token's signature is not valid");
  auto payload = api::ParseJson(*payload_raw);
  if (!payload.ok() || !payload->is_object())
    return MakeStatus(Code::kInvalidArgument, "the token's claims are not a JSON object");
  return std::move(payload->as_object());
}

json::object TokenSigner::Jwks() const {
  json::object key{{"use", "sig"}, {"kid", key_id_}, {"alg", algorithm_}};
  if (algorithm_ == "ES256") {
    key["kty"] = "EC";
    key["crv"] = "P-256";
    key["x"] = Base64UrlEncode(BigEndian(key_->pkey, OSSL_PKEY_PARAM_EC_PUB_X, kP256Bytes));
    key["y"] = Base64UrlEncode(BigEndian(key_->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, kP256Bytes));
  } else {
    key["kty"] = "RSA";
    key["n"] = Base64UrlEncode(BigEndian(key_->pkey, OSSL_PKEY_PARAM_RSA_N));
    key["e"] = Base64UrlEncode(BigEndian(key_->pkey, OSSL_PKEY_PARAM_RSA_E));
  }
  return json::object{{"keys", json::array{std::move(key)}}};
}

}  // namespace kiso::apiserver
