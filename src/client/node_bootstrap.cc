#include "client/node_bootstrap.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <boost/json.hpp>
#include <filesystem>
#include <memory>
#include <thread>

#include "api/object.h"
#include "client/client.h"
#include "client/https_transport.h"
#include "common/base64.h"
#include "common/file.h"

namespace kiso::client {

namespace json = boost::json;

namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using ReqPtr = std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

std::string Drain(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

// The certificate at `cert_pem` names `user` and is valid for a day more.
bool StillGood(const std::string& cert_pem, const std::string& user) {
  BioPtr bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), &BIO_free);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) return false;
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof(cn) - 1);
  time_t day_ahead = time(nullptr) + time_t{24} * 3600;
  return user == cn && X509_cmp_time(X509_get0_notAfter(cert.get()), &day_ahead) > 0;
}

// A P-256 key and a certificate request for `user` in system:nodes, both PEM.
Result<std::pair<std::string, std::string>> NewRequest(const std::string& user) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  ReqPtr req(X509_REQ_new(), &X509_REQ_free);
  if (!key || !req) return MakeStatus(Code::kInternal, "make a node key");
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("system:nodes"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(user.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) == 0)
    return MakeStatus(Code::kInternal, "sign the node's certificate request");
  BioPtr key_bio(BIO_new(BIO_s_mem()), &BIO_free);
  BioPtr req_bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_X509_REQ(req_bio.get(), req.get());
  return std::pair{Drain(key_bio.get()), Drain(req_bio.get())};
}

std::string RandomSuffix() {
  unsigned char bytes[4];
  RAND_bytes(bytes, sizeof(bytes));
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

}  // namespace

Result<KubeConfig> BootstrapNodeCredentials(const KubeConfig& bootstrap, const std::string& node,
                                            const std::string& dir, std::chrono::seconds timeout) {
  std::string user = "system:node:" + node;
  std::string key_path = dir + "/node.key", cert_path = dir + "/node.crt";
  KubeConfig own = bootstrap;
  own.token.clear();
  if (std::filesystem::exists(key_path) && std::filesystem::exists(cert_path)) {
    auto cert = ReadFile(cert_path);
    auto key = ReadFile(key_path);
    if (cert.ok() && key.ok() && StillGood(*cert, user)) {
      own.client_cert_pem = std::move(*cert);
      own.client_key_pem = std::move(*key);
      return own;
    }
  }
  KISO_ASSIGN_OR_RETURN(auto made, NewRequest(user));
  auto& [key_pem, request_pem] = made;
  KISO_ASSIGN_OR_RETURN(auto transport, HttpsTransport::Create(bootstrap));
  Client client(transport, "kiso-agent");
  const api::ResourceType* csrs =
      api::FindResource("certificates.k8s.io", "v1", "certificatesigningrequests");
  std::string name = fmt::format("node-csr-{}-{}", node, RandomSuffix());
  json::value csr = json::object{
      {"apiVersion", "certificates.k8s.io/v1"},
      {"kind", "CertificateSigningRequest"},
      {"metadata", json::object{{"name", name}}},
      {"spec", json::object{{"request", Base64Encode(request_pem)},
                            {"signerName", "kubernetes.io/kube-apiserver-client-kubelet"},
                            {"usages", json::array{"digital signature", "client auth"}}}}};
  KISO_RETURN_IF_ERROR(client.Create(*csrs, "", csr).status());
  // Approval and signing take the server's controllers a moment: poll until
  // the certificate is there (a watch would need list rights the token lacks).
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    KISO_ASSIGN_OR_RETURN(auto got, client.Get(*csrs, "", name));
    if (const auto* cs = api::Find(got, {"status", "conditions"}); cs && cs->is_array()) {
      for (const auto& c : cs->get_array()) {
        auto type = api::GetString(c, {"type"});
        if (type == "Denied" || type == "Failed") {
          return MakeStatus(Code::kPermissionDenied, "certificate request {} {}: {}", name,
                            type == "Denied" ? "denied" : "failed", api::GetString(c, {"message"}));
        }
      }
    }
    if (auto cert = Base64Decode(api::GetString(got, {"status", "certificate"}));
        cert && !cert->empty()) {
      KISO_RETURN_IF_ERROR(WriteFileAtomic(key_path, key_pem, 0600));
      KISO_RETURN_IF_ERROR(WriteFileAtomic(cert_path, *cert, 0644));
      own.client_cert_pem = std::move(*cert);
      own.client_key_pem = std::move(key_pem);
      return own;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return MakeStatus(Code::kDeadlineExceeded,
                        "certificate request {} was not approved and signed within {} s", name,
                        timeout.count());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace kiso::client
