#include "apiserver/authn/cluster_secrets.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <filesystem>
#include <memory>

#include "apiserver/authn/credentials.h"
#include "apiserver/authn/tokens.h"
#include "common/base64.h"
#include "common/file.h"

namespace kiso::apiserver {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

// The files of DATA_DIR/tls every server of a cluster shares.
constexpr const char* kSharedFiles[] = {
    "ca.crt",     "ca.key", "request-header-ca.crt", "request-header-ca.key", "service-account.key",
    "admin.token"};
// OWASP's figure for PBKDF2-HMAC-SHA256: about 0.1 s here, once per server start.
constexpr int kIterations = 600'000;
constexpr size_t kSaltBytes = 16, kNonceBytes = 12, kTagBytes = 16, kKeyBytes = 32;
// Bounds on what is read back from the store (a few certificates and keys).
constexpr size_t kMaxSealedBytes = size_t{256} * 1024;
constexpr int kMaxIterations = 10'000'000;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

Result<std::string> DeriveKey(const std::string& token, const std::string& salt, int iterations) {
  std::string key(kKeyBytes, '\0');
  if (PKCS5_PBKDF2_HMAC(token.data(), static_cast<int>(token.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(key.size()),
                        reinterpret_cast<unsigned char*>(key.data())) != 1) {
    return Status(Code::kInternal, "derive the cluster secrets' key");
  }
  return key;
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

const unsigned char* U(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

Result<std::string> SealWithToken(const std::string& token, const std::string& plaintext,
                                  int iterations) {
  const std::string salt = RandomBytes(kSaltBytes), nonce = RandomBytes(kNonceBytes);
  KISO_ASSIGN_OR_RETURN(std::string key, DeriveKey(token, salt, iterations));
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  std::string out(plaintext.size() + kTagBytes, '\0');
  int len = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key), U(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o, &len, U(plaintext), static_cast<int>(plaintext.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, o + plaintext.size()) != 1) {
    return Status(Code::kInternal, "seal the cluster secrets");
  }
  return json::serialize(json::object{{"version", 1},
                                      {"kdf", "pbkdf2-hmac-sha256"},
                                      {"iterations", iterations},
                                      {"cipher", "aes-256-gcm"},
                                      {"salt", Base64Encode(salt)},
                                      {"nonce", Base64Encode(nonce)},
                                      {"data", Base64Encode(out)}});
}

Result<std::string> OpenWithToken(const std::string& token, const std::string& sealed) {
  auto bad = [] {
    return Status(Code::kDataLoss, "the store's cluster secrets are not in kiso's sealed form");
  };
  if (sealed.size() > kMaxSealedBytes) return bad();
  boost::system::error_code ec;
  json::value v = json::parse(sealed, ec);
  if (ec || !v.is_object()) return bad();
  const auto& o = v.get_object();
  const auto* iterations = o.if_contains("iterations");
  const auto* salt = o.if_contains("salt");
  const auto* nonce = o.if_contains("nonce");
  const auto* data = o.if_contains("data");
  if (!iterations || !iterations->is_int64() || iterations->get_int64() < 1 ||
      iterations->get_int64() > kMaxIterations || !salt || !salt->is_string() || !nonce ||
      !nonce->is_string() || !data || !data->is_string())
    return bad();
  auto salt_bytes = Base64Decode(salt->get_string());
  auto nonce_bytes = Base64Decode(nonce->get_string());
  auto sealed_bytes = Base64Decode(data->get_string());
  if (!salt_bytes || !nonce_bytes || nonce_bytes->size() != kNonceBytes || !sealed_bytes ||
      sealed_bytes->size() < kTagBytes)
    return bad();
  KISO_ASSIGN_OR_RETURN(std::string key,
                        DeriveKey(token, *salt_bytes, static_cast<int>(iterations->get_int64())));
  const size_t n = sealed_bytes->size() - kTagBytes;
  std::string out(n, '\0');
  std::string tag = sealed_bytes->substr(n);
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  auto* o_bytes = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key), U(*nonce_bytes)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), o_bytes, &len, U(*sealed_bytes), static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), o_bytes + len, &len) != 1) {
    return Status(Code::kUnauthenticated,
                  "the token does not open the cluster secrets in the store (use the first "
                  "server's token: its DATA_DIR/tls/server-token)");
  }
  return out;
}

Result<SharedSecrets> ShareClusterSecrets(store::Store* store,
                                          const ClusterSecretsOptions& options) {
  const std::string dir = options.data_dir + "/tls";
  const std::string token_path = dir + "/server-token";
  SharedSecrets shared;
  shared.token = options.token;
  if (shared.token.empty()) {
    if (auto saved = ReadFile(token_path); saved.ok()) {
      shared.token = *saved;
      while (!shared.token.empty() && shared.token.back() == '\n') shared.token.pop_back();
    }
  }
  auto stored = store->Get(kClusterSecretsKey);
  if (!stored.ok() && stored.status().code() != Code::kNotFound) return stored.status();
  if (!stored.ok()) {
    if (options.join) {
      return Status(Code::kInvalidArgument,
                    "--join: the store holds no cluster to join (start the first server "
                    "without --join, or check --store)");
    }
    // This server begins the cluster: its credentials (made now unless it has
    // them from an earlier start on another store) become everyone's.
    KISO_RETURN_IF_ERROR(CreateClusterCredentials(options.data_dir));
    KISO_RETURN_IF_ERROR(TokenSigner::LoadOrCreate(dir + "/service-account.key", "").status());
    if (shared.token.empty()) shared.token = NewRandomToken();
    json::object files;
    for (const char* f : kSharedFiles) {
      KISO_ASSIGN_OR_RETURN(std::string content, ReadFile(dir + "/" + f));
      files[f] = content;
    }
    KISO_ASSIGN_OR_RETURN(
        std::string sealed,
        SealWithToken(shared.token, json::serialize(json::object{{"files", files}}), kIterations));
    auto created = store->Create(kClusterSecretsKey, sealed);
    if (created.ok()) {
      KISO_RETURN_IF_ERROR(WriteFileAtomic(token_path, shared.token + "\n", 0600));
      shared.created = true;
      return shared;
    }
    if (created.status().code() != Code::kAlreadyExists) return created.status();
    stored = store->Get(kClusterSecretsKey);  // Another server began it first: join it.
    if (!stored.ok()) return stored.status();
  }
  if (shared.token.empty()) {
    return Status(Code::kUnauthenticated,
                  "the store holds a cluster's secrets: pass --token (the first server's "
                  "DATA_DIR/tls/server-token) to join it");
  }
  KISO_ASSIGN_OR_RETURN(std::string plain, OpenWithToken(shared.token, stored->value));
  boost::system::error_code ec;
  json::value v = json::parse(plain, ec);
  const json::object* files = nullptr;
  if (!ec && v.is_object()) {
    if (const auto* f = v.get_object().if_contains("files"); f && f->is_object())
      files = &f->get_object();
  }
  if (files == nullptr) return Status(Code::kDataLoss, "the store's cluster secrets are damaged");
  std::error_code fec;
  fs::create_directories(dir, fec);
  if (fec) return MakeStatus(Code::kInternal, "create {}: {}", dir, fec.message());
  for (const char* f : kSharedFiles) {
    const auto* content = files->if_contains(f);
    if (!content || !content->is_string())
      return MakeStatus(Code::kDataLoss, "the store's cluster secrets lack {}", f);
    const std::string path = dir + "/" + f;
    auto local = ReadFile(path);
    if (local.ok() && *local == content->get_string()) continue;
    if (local.ok()) spdlog::info("cluster secrets: {} replaced by the cluster's", path);
    const bool key =
        std::string_view(f).ends_with(".key") || std::string_view(f).ends_with("token");
    KISO_RETURN_IF_ERROR(WriteFileAtomic(path, content->get_string(), key ? 0600 : 0644));
  }
  KISO_RETURN_IF_ERROR(WriteFileAtomic(token_path, shared.token + "\n", 0600));
  return shared;
}

}  // namespace kiso::apiserver
