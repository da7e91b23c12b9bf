#include "apiserver/authn/tokens.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>

#include "common/base64.h"
#include "common/file.h"
#include "support/temp_dir.h"

namespace kiso::apiserver {
namespace {

namespace json = boost::json;

TEST(TokenSigner, NewKeysSignES256AndVerifyWhatTheySigned) {
  testing::TempDir dir("tokens");
  auto signer = TokenSigner::LoadOrCreate(dir.File("sa.key"), "https://kubernetes.default.svc");
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  EXPECT_EQ((*signer)->algorithm(), "ES256");
  json::object claims{{"sub", "system:serviceaccount:default:bot"}, {"exp", 2000000000}};
  std::string token = (*signer)->Sign(claims);
  auto header = Base64UrlDecode(token.substr(0, token.find('.')));
  ASSERT_TRUE(header);
  EXPECT_EQ(json::parse(*header).at("alg"), "ES256");
  // r‖s: 64 bytes, not DER (RFC 7518 3.4).
  auto signature = Base64UrlDecode(token.substr(token.rfind('.') + 1));
  ASSERT_TRUE(signature);
  EXPECT_EQ(signature->size(), 64u);
  auto verified = (*signer)->Verify(token);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, claims);
  // A flipped signature bit, or the same key loaded again, decide the same way.
  // (A character inside the signature: the last one carries bits the decoding drops.)
  std::string forged = token;
  char& c = forged[token.rfind('.') + 10];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_FALSE((*signer)->Verify(forged).ok());
  auto again = TokenSigner::LoadOrCreate(dir.File("sa.key"), "https://kubernetes.default.svc");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->key_id(), (*signer)->key_id());
  EXPECT_TRUE((*again)->Verify(token).ok());
  auto jwk = (*signer)->Jwks().at("keys").at(0).as_object();
  EXPECT_EQ(jwk.at("kty"), "EC");
  EXPECT_EQ(jwk.at("crv"), "P-256");
  EXPECT_EQ(Base64UrlDecode(jwk.at("x").as_string())->size(), 32u);
  EXPECT_EQ(Base64UrlDecode(jwk.at("y").as_string())->size(), 32u);
}

TEST(TokenSigner, AnRsaKeyOfAnOlderDataDirKeepsSigningRS256) {
  testing::TempDir dir("tokens");
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  ASSERT_NE(key, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  ASSERT_TRUE(
      WriteFileAtomic(dir.File("sa.key"), std::string(data, static_cast<size_t>(len)), 0600).ok());
  BIO_free(bio);
  EVP_PKEY_free(key);
  auto signer = TokenSigner::LoadOrCreate(dir.File("sa.key"), "issuer");
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  EXPECT_EQ((*signer)->algorithm(), "RS256");
  std::string token = (*signer)->Sign(json::object{{"sub", "x"}});
  EXPECT_TRUE((*signer)->Verify(token).ok());
  EXPECT_EQ((*signer)->Jwks().at("keys").at(0).at("kty"), "RSA");
}

}  // namespace
}  // namespace kiso::apiserver
