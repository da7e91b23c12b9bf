#include "apiserver/authn/tokens.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

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

std::string BigEndian(const EVP_PKEY* key, const char* param) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &bn) != 1) return "";
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
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
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
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
  if (signer->key_->pkey == nullptr || EVP_PKEY_get_base_id(signer->key_->pkey) != EVP_PKEY_RSA)
    return MakeStatus(Code::kDataLoss, "{}: not an RSA private key", key_path);
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
  json::object header{{"alg", "RS256"}, {"kid", key_id_}};
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
  if (api::GetString(*header, {"alg"}) != "RS256")
    return MakeStatus(Code::kUnauthenticated, "the token is not signed RS256");
  if (const auto* kid = header->as_object().if_contains("kid");
      kid != nullptr && (!kid->is_string() || kid->get_string() != key_id_))
    return MakeStatus(Code::kUnauthenticated, "the token was signed by another key");
  std::string_view signing_input = token.substr(0, second);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool valid = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey) == 1 &&
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
  json::object key{{"use", "sig"},
                   {"kty", "RSA"},
                   {"kid", key_id_},
                   {"alg", "RS256"},
                   {"n", Base64UrlEncode(BigEndian(key_->pkey, OSSL_PKEY_PARAM_RSA_N))},
                   {"e", Base64UrlEncode(BigEndian(key_->pkey, OSSL_PKEY_PARAM_RSA_E))}};
  return json::object{{"keys", json::array{std::move(key)}}};
}

}  // namespace kiso::apiserver
