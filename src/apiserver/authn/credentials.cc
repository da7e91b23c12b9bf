#include "apiserver/authn/credentials.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/base64.h"
#include "common/file.h"
#include "common/host_addresses.h"

namespace kiso::apiserver {

namespace {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

std::string OpenSslError(std::string_view what) {
  char buf[256] = {0};
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  return fmt::format("{}: {}", what, buf);
}

std::string PemKey(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string PemCert(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
}

// What a certificate is for: the CA, a server (with its names), or a client
// (CN the user name, O the groups, as kube-apiserver reads them).
struct Subject {
  std::string common_name;
  std::vector<std::string> organizations;
  std::string san;  // A server's names, in OpenSSL's config form.
  bool client = false;
  const X509_NAME* name = nullptr;  // When set (a CSR's subject), copied as is.
  int64_t seconds = 0;              // When set, the validity instead of `days`.
};

// Issues a certificate for `key`: self-signed when `issuer` is null (the CA).
Result<X509Ptr> Issue(EVP_PKEY* key, const Subject& subject, X509* issuer, EVP_PKEY* issuer_key,
                      int days) {
  X509Ptr cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                  subject.seconds > 0 ? static_cast<long>(subject.seconds) : 60L * 60 * 24 * days);
  X509_set_pubkey(cert.get(), key);
  if (subject.name) X509_set_subject_name(cert.get(), subject.name);
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& org : subject.organizations) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
  }
  if (!subject.name) {
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(subject.common_name.c_str()),
                               -1, -1, 0);
  }
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* signer = issuer ? issuer : cert.get();
  if (!issuer) {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert.get(), signer, NID_key_usage,
                 "critical,keyCertSign,cRLSign,digitalSignature");
    AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else {
    AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    AddExtension(cert.get(), signer, NID_ext_key_usage,
                 subject.client ? "clientAuth" : "serverAuth");
    if (!subject.san.empty()) AddExtension(cert.get(), signer, NID_subject_alt_name, subject.san);
  }
  if (X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) == 0)
    return MakeStatus(Code::kInternal, "{}", OpenSslError("sign certificate"));
  return cert;
}

std::string RandomToken() {
  unsigned char bytes[24];
  RAND_bytes(bytes, sizeof(bytes));
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

struct Ca {
  X509Ptr cert{nullptr, &X509_free};
  PkeyPtr key{nullptr, &EVP_PKEY_free};
};

// A CA's certificate and key from `dir` (DATA_DIR/tls): `name`.crt and
// `name`.key, the cluster CA's by default.
Result<Ca> LoadCa(const std::string& dir, const std::string& name = "ca") {
  KISO_ASSIGN_OR_RETURN(std::string key_pem, ReadFile(dir + "/" + name + ".key"));
  KISO_ASSIGN_OR_RETURN(std::string cert_pem, ReadFile(dir + "/" + name + ".crt"));
  BioPtr kbio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), &BIO_free);
  BioPtr cbio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), &BIO_free);
  Ca ca;
  ca.key.reset(PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr));
  ca.cert.reset(PEM_read_bio_X509(cbio.get(), nullptr, nullptr, nullptr));
  if (!ca.key || !ca.cert)
    return MakeStatus(Code::kDataLoss, "{}: cannot read the CA key or certificate", dir);
  return ca;
}

// Creates the self-signed CA `name`.crt/.key in `dir` unless both exist;
// true when it did.
Result<bool> EnsureCa(const std::string& dir, const std::string& name,
                      const std::string& common_name) {
  std::string crt = dir + "/" + name + ".crt", key_path = dir + "/" + name + ".key";
  if (std::filesystem::exists(crt) && std::filesystem::exists(key_path)) return false;
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  if (!key) return MakeStatus(Code::kInternal, "{}", OpenSslError("generate CA key"));
  KISO_ASSIGN_OR_RETURN(
      auto cert, Issue(key.get(), Subject{.common_name = common_name}, nullptr, nullptr, 3650));
  KISO_RETURN_IF_ERROR(WriteFileAtomic(key_path, PemKey(key.get()), 0600));
  KISO_RETURN_IF_ERROR(WriteFileAtomic(crt, PemCert(cert.get()), 0644));
  return true;
}

// Whether the certificate at `cert_path` was signed by the CA at `ca_path`
// (false when either cannot be read): a CA replaced under it (a server that
// joined a cluster) voids the certificates the old one signed.
bool SignedBy(const std::string& cert_path, const std::string& ca_path) {
  auto cert_pem = ReadFile(cert_path);
  auto ca_pem = ReadFile(ca_path);
  if (!cert_pem.ok() || !ca_pem.ok()) return false;
  BioPtr cbio(BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size())), &BIO_free);
  BioPtr abio(BIO_new_mem_buf(ca_pem->data(), static_cast<int>(ca_pem->size())), &BIO_free);
  X509Ptr cert(PEM_read_bio_X509(cbio.get(), nullptr, nullptr, nullptr), &X509_free);
  X509Ptr ca(PEM_read_bio_X509(abio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert || !ca) return false;
  EVP_PKEY* ca_key = X509_get0_pubkey(ca.get());
  return ca_key != nullptr && X509_verify(cert.get(), ca_key) == 1;
}

}  // namespace

Status CreateClusterCredentials(const std::string& data_dir) {
  std::string dir = data_dir + "/tls";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return MakeStatus(Code::kInternal, "create {}: {}", dir, ec.message());
  KISO_RETURN_IF_ERROR(EnsureCa(dir, "ca", "kiso-ca").status());
  KISO_RETURN_IF_ERROR(EnsureCa(dir, "request-header-ca", "kiso-request-header-ca").status());
  if (!std::filesystem::exists(dir + "/admin.token"))
    KISO_RETURN_IF_ERROR(WriteFileAtomic(dir + "/admin.token", RandomToken() + "\n", 0600));
  return Status::Ok();
}

std::string NewRandomToken() { return RandomToken(); }

Result<ClientCertificate> IssueClientCertificate(const std::string& data_dir,
                                                 const std::string& user,
                                                 const std::vector<std::string>& groups, int days) {
  if (user.empty()) return MakeStatus(Code::kInvalidArgument, "a user name is required");
  if (days <= 0) return MakeStatus(Code::kInvalidArgument, "--days must be positive");
  auto printable = [](const std::string& s) {
    return std::none_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
  };
  if (!printable(user) || !std::all_of(groups.begin(), groups.end(), printable)) {
    return MakeStatus(Code::kInvalidArgument,
                      "user and group names may not hold control characters");
  }
  std::string dir = data_dir + "/tls";
  KISO_ASSIGN_OR_RETURN(auto ca, LoadCa(dir));
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  if (!key) return MakeStatus(Code::kInternal, "{}", OpenSslError("generate a client key"));
  KISO_ASSIGN_OR_RETURN(
      auto cert,
      Issue(key.get(), Subject{.common_name = user, .organizations = groups, .client = true},
            ca.cert.get(), ca.key.get(), days));
  ClientCertificate out;
  out.cert_pem = PemCert(cert.get());
  out.key_pem = PemKey(key.get());
  out.ca_cert_pem = PemCert(ca.cert.get());
  return out;
}

namespace {

using ReqPtr = std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)>;

Result<ReqPtr> ParseRequest(std::string_view pem) {
  if (pem.find("-----BEGIN CERTIFICATE REQUEST-----") == std::string_view::npos)
    return MakeStatus(Code::kInvalidArgument, "PEM block type must be CERTIFICATE REQUEST");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr), &X509_REQ_free);
  if (!req) return MakeStatus(Code::kInvalidArgument, "{}", OpenSslError("x509"));
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (!key || X509_REQ_verify(req.get(), key) != 1) {
    return MakeStatus(Code::kInvalidArgument,
                      "x509: the certificate request's signature is not valid");
  }
  return req;
}

}  // namespace

Status CheckCertificateRequest(std::string_view pem) { return ParseRequest(pem).status(); }

Result<RequestedSubject> ReadCertificateRequest(std::string_view pem) {
  KISO_ASSIGN_OR_RETURN(auto req, ParseRequest(pem));
  RequestedSubject out;
  const X509_NAME* name = X509_REQ_get_subject_name(req.get());
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    if (nid != NID_commonName && nid != NID_organizationName) continue;
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (len < 0) continue;
    std::string value(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
    OPENSSL_free(utf8);
    if (nid == NID_commonName) {
      out.common_name = std::move(value);
    } else {
      out.organizations.push_back(std::move(value));
    }
  }
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req.get());
  if (exts) {
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
      if (OBJ_obj2nid(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i))) ==
          NID_subject_alt_name)
        out.alternative_names = true;
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  return out;
}

Result<std::string> SignCertificateRequest(const std::string& data_dir, std::string_view pem,
                                           const std::vector<std::string>& usages,
                                           int64_t seconds) {
  KISO_ASSIGN_OR_RETURN(auto req, ParseRequest(pem));
  KISO_ASSIGN_OR_RETURN(auto ca, LoadCa(data_dir + "/tls"));
  if (std::find(usages.begin(), usages.end(), "client auth") == usages.end()) {
    return MakeStatus(Code::kInvalidArgument, "the usages do not include client auth");
  }
  Subject subject;
  subject.name = X509_REQ_get_subject_name(req.get());
  subject.client = true;
  subject.seconds = seconds;
  KISO_ASSIGN_OR_RETURN(
      auto cert, Issue(X509_REQ_get0_pubkey(req.get()), subject, ca.cert.get(), ca.key.get(), 0));
  return PemCert(cert.get());
}

namespace {

// An IP address (v4 or v6) rather than a DNS name, as a certificate's names tell them apart.
bool IsAddress(const std::string& host) {
  return host.find_first_not_of("0123456789.:abcdef") == std::string::npos;
}

// Whether the certificate in `path` names every one of `hosts` (addresses or names).
bool CoversNames(const std::string& path, const std::vector<std::string>& hosts) {
  auto pem = ReadFile(path);
  if (!pem.ok()) return false;
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return false;
  bool all = true;
  for (const auto& h : hosts) {
    int ok = IsAddress(h) ? X509_check_ip_asc(cert, h.c_str(), 0)
                          : X509_check_host(cert, h.data(), h.size(), 0, nullptr);
    all = all && ok == 1;
  }
  X509_free(cert);
  return all;
}

}  // namespace

Result<Credentials> LoadOrCreateCredentials(const std::string& data_dir, const std::string& host,
                                            int port, const std::vector<std::string>& extra_hosts) {
  namespace fs = std::filesystem;
  std::string dir = data_dir + "/tls";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return MakeStatus(Code::kInternal, "create {}: {}", dir, ec.message());
  Credentials creds;
  std::string ca_crt = dir + "/ca.crt";
  std::string srv_crt = dir + "/server.crt", srv_key = dir + "/server.key";
  std::string token_path = dir + "/admin.token";

  KISO_ASSIGN_OR_RETURN(bool new_ca, EnsureCa(dir, "ca", "kiso-ca"));
  // A new CA (or one a joined cluster's replaced) voids the old server certificate.
  if (new_ca || (fs::exists(srv_crt) && !SignedBy(srv_crt, ca_crt))) fs::remove(srv_crt, ec);
  KISO_ASSIGN_OR_RETURN(creds.ca_cert_pem, ReadFile(ca_crt));
  if (fs::exists(srv_crt) && !CoversNames(srv_crt, extra_hosts)) {
    // Started on another address than the certificate names (K3s reissues too).
    spdlog::info("{} does not name every address this server is reached by: reissued", srv_crt);
    fs::remove(srv_crt, ec);
  }
  if (!fs::exists(srv_crt) || !fs::exists(srv_key)) {
    KISO_ASSIGN_OR_RETURN(auto ca, LoadCa(dir));
    auto& [ca_cert, ca_pkey] = ca;
    PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
    char hostname[256] = {0};
    gethostname(hostname, sizeof(hostname) - 1);
    // The names and address pods reach it by: the kubernetes Service's.
    std::string san =
        "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:::1";
    if (hostname[0]) san += fmt::format(",DNS:{}", hostname);
    for (const auto& addr : HostAddresses()) {
      if (addr != "127.0.0.1" && addr != "::1") san += ",IP:" + addr;
    }
    for (const auto& h : extra_hosts) {
      san += (IsAddress(h) ? ",IP:" : ",DNS:") + h;
    }
    KISO_ASSIGN_OR_RETURN(auto cert,
                          Issue(key.get(), Subject{.common_name = "kiso-apiserver", .san = san},
                                ca_cert.get(), ca_pkey.get(), 365));
    KISO_RETURN_IF_ERROR(WriteFileAtomic(srv_key, PemKey(key.get()), 0600));
    KISO_RETURN_IF_ERROR(WriteFileAtomic(srv_crt, PemCert(cert.get()), 0644));
  }
  KISO_ASSIGN_OR_RETURN(creds.server_cert_pem, ReadFile(srv_crt));
  KISO_ASSIGN_OR_RETURN(creds.server_key_pem, ReadFile(srv_key));
  // The front proxy's own CA and client certificate (K3s' request-header CA
  // and system:auth-proxy): aggregated API servers trust the user the
  // X-Remote-* headers name only from a client this CA signed.
  std::string proxy_crt = dir + "/client-auth-proxy.crt",
              proxy_key = dir + "/client-auth-proxy.key";
  KISO_ASSIGN_OR_RETURN(bool new_proxy_ca,
                        EnsureCa(dir, "request-header-ca", "kiso-request-header-ca"));
  if (new_proxy_ca || !fs::exists(proxy_crt) || !fs::exists(proxy_key) ||
      !SignedBy(proxy_crt, dir + "/request-header-ca.crt")) {
    KISO_ASSIGN_OR_RETURN(auto ca, LoadCa(dir, "request-header-ca"));
    PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
    if (!key) return MakeStatus(Code::kInternal, "{}", OpenSslError("generate a proxy key"));
    KISO_ASSIGN_OR_RETURN(auto cert,
                          Issue(key.get(), Subject{.common_name = kFrontProxyUser, .client = true},
                                ca.cert.get(), ca.key.get(), 365));
    KISO_RETURN_IF_ERROR(WriteFileAtomic(proxy_key, PemKey(key.get()), 0600));
    KISO_RETURN_IF_ERROR(WriteFileAtomic(proxy_crt, PemCert(cert.get()), 0644));
  }
  KISO_ASSIGN_OR_RETURN(creds.front_proxy_ca_pem, ReadFile(dir + "/request-header-ca.crt"));
  KISO_ASSIGN_OR_RETURN(creds.front_proxy_cert_pem, ReadFile(proxy_crt));
  KISO_ASSIGN_OR_RETURN(creds.front_proxy_key_pem, ReadFile(proxy_key));
  if (!fs::exists(token_path))
    KISO_RETURN_IF_ERROR(WriteFileAtomic(token_path, RandomToken() + "\n", 0600));
  KISO_ASSIGN_OR_RETURN(creds.admin_token, ReadFile(token_path));
  while (!creds.admin_token.empty() && creds.admin_token.back() == '\n')
    creds.admin_token.pop_back();

  creds.kubeconfig_path = data_dir + "/kubeconfig.yaml";
  std::string kubeconfig = fmt::format(
      "apiVersion: v1\n"
      "kind: Config\n"
      "clusters:\n"
      "- name: kiso\n"
      "  cluster:\n"
      "    server: https://{}:{}\n"
      "    certificate-authority-data: {}\n"
      "users:\n"
      "- name: kiso-admin\n"
      "  user:\n"
      "    token: {}\n"
      "contexts:\n"
      "- name: kiso\n"
      "  context:\n"
      "    cluster: kiso\n"
      "    user: kiso-admin\n"
      "    namespace: default\n"
      "current-context: kiso\n",
      host.find(':') != std::string::npos ? "[" + host + "]" : host, port,
      Base64Encode(creds.ca_cert_pem), creds.admin_token);
  KISO_RETURN_IF_ERROR(WriteFileAtomic(creds.kubeconfig_path, kubeconfig, 0600));
  return creds;
}

}  // namespace kiso::apiserver
