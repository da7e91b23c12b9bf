// Cluster secrets: sealed with the token and opened only with it; the first
// server's credentials become a second server's through the store, and what
// the second had signed with a CA of its own is reissued.
#include "apiserver/authn/cluster_secrets.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "apiserver/authn/credentials.h"
#include "common/file.h"
#include "support/temp_dir.h"

namespace kiso::apiserver {
namespace {

std::unique_ptr<store::Store> Store(const testing::TempDir& dir) {
  auto s = store::OpenStore("sqlite://" + dir.File("kiso.db"));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

std::string File(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : "";
}

// Whether `cert_pem` verifies with `ca_pem`'s key.
bool SignedBy(const std::string& cert_pem, const std::string& ca_pem) {
  BIO* c = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  BIO* a = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509* cert = PEM_read_bio_X509(c, nullptr, nullptr, nullptr);
  X509* ca = PEM_read_bio_X509(a, nullptr, nullptr, nullptr);
  bool ok = cert && ca && X509_verify(cert, X509_get0_pubkey(ca)) == 1;
  X509_free(cert);
  X509_free(ca);
  BIO_free(c);
  BIO_free(a);
  return ok;
}

TEST(ClusterSecretsTest, OnlyTheTokenOpensWhatItSealed) {
  auto sealed = SealWithToken("right", "the CA's key", 1000);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->find("the CA"), std::string::npos);
  auto opened = OpenWithToken("right", *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, "the CA's key");
  EXPECT_EQ(OpenWithToken("wrong", *sealed).status().code(), Code::kUnauthenticated);
  // A changed byte of the ciphertext: the tag refuses it.
  std::string tampered = *sealed;
  size_t at = tampered.find("\"data\":\"") + 9;
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(OpenWithToken("right", tampered).ok());
  // Bounded work: a record asking for a billion rounds is refused, not computed.
  std::string costly = *sealed;
  costly.replace(costly.find("\"iterations\":1000"), 17, "\"iterations\":1000000000");
  EXPECT_EQ(OpenWithToken("right", costly).status().code(), Code::kDataLoss);
  EXPECT_EQ(OpenWithToken("right", "not json").status().code(), Code::kDataLoss);
}

TEST(ClusterSecretsTest, ASecondServerJoinsWithTheTokenAndGetsTheSameCredentials) {
  testing::TempDir store_dir("store"), first("first"), second("second");
  auto store = Store(store_dir);
  ASSERT_TRUE(store);
  // --join before any server began the cluster: refused.
  EXPECT_FALSE(ShareClusterSecrets(store.get(), {second.path(), "", true}).ok());
  auto began = ShareClusterSecrets(store.get(), {first.path(), "", false});
  ASSERT_TRUE(began.ok()) << began.status().ToString();
  EXPECT_TRUE(began->created);
  EXPECT_EQ(File(first.File("tls/server-token")), began->token + "\n");
  // The second had credentials of its own (a server started alone before).
  ASSERT_TRUE(LoadOrCreateCredentials(second.path(), "127.0.0.1", 6443, {}).ok());
  const std::string own_ca = File(second.File("tls/ca.crt"));
  // Without the token, or with another, it cannot join; nothing of it changes.
  EXPECT_EQ(ShareClusterSecrets(store.get(), {second.path(), "", false}).status().code(),
            Code::kUnauthenticated);
  EXPECT_EQ(ShareClusterSecrets(store.get(), {second.path(), "guess", true}).status().code(),
            Code::kUnauthenticated);
  EXPECT_EQ(File(second.File("tls/ca.crt")), own_ca);
  auto joined = ShareClusterSecrets(store.get(), {second.path(), began->token, true});
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  EXPECT_FALSE(joined->created);
  for (const char* f : {"ca.crt", "ca.key", "request-header-ca.crt", "request-header-ca.key",
                        "service-account.key", "admin.token"}) {
    EXPECT_EQ(File(second.File(std::string("tls/") + f)), File(first.File(std::string("tls/") + f)))
        << f;
  }
  // Its server certificate, signed by its own CA before, is reissued by the cluster's.
  auto creds = LoadOrCreateCredentials(second.path(), "127.0.0.1", 6443, {});
  ASSERT_TRUE(creds.ok());
  EXPECT_NE(creds->ca_cert_pem, own_ca);
  EXPECT_TRUE(SignedBy(creds->server_cert_pem, File(first.File("tls/ca.crt"))));
  EXPECT_TRUE(SignedBy(creds->front_proxy_cert_pem, File(first.File("tls/request-header-ca.crt"))));
  // A later start needs no --token: the data directory keeps it.
  auto again = ShareClusterSecrets(store.get(), {second.path(), "", false});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->token, began->token);
}

}  // namespace
}  // namespace kiso::apiserver
