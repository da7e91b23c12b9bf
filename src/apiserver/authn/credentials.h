// Credentials for the secure port: on first start kiso generates, in the data
// directory, a CA, a server certificate signed by it, and an admin bearer
// token, and writes a kubeconfig that trusts the CA and carries the token.
// Later starts reuse them (the token and CA never change under a user's feet).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiso::apiserver {

struct Credentials {
  std::string ca_cert_pem;
  std::string server_cert_pem;
  std::string server_key_pem;
  std::string admin_token;
  std::string kubeconfig_path;
  // The front proxy (API aggregation): the CA aggregated servers trust for
  // X-Remote-* headers, and the client certificate the proxy presents.
  std::string front_proxy_ca_pem;
  std::string front_proxy_cert_pem;
  std::string front_proxy_key_pem;
};

// The front proxy's client certificate's name (requestheader-allowed-names).
inline constexpr const char* kFrontProxyUser = "system:auth-proxy";

// Loads or creates the files under `data_dir`: ca.crt, ca.key, server.crt,
// server.key, request-header-ca.crt/.key, client-auth-proxy.crt/.key, token,
// kubeconfig.yaml (server URL https://`host`:`port`).
// The server certificate names 127.0.0.1, ::1, localhost, the host name and
// `extra_hosts`. Keys and token are written mode 0600.
Result<Credentials> LoadOrCreateCredentials(const std::string& data_dir, const std::string& host,
                                            int port, const std::vector<std::string>& extra_hosts);

// Creates what every server of a cluster shares, unless there: the cluster
// CA (tls/ca.crt, ca.key), the front proxy's CA (request-header-ca.*) and the
// admin token (tls/admin.token). LoadOrCreateCredentials creates them too; a
// server on etcd makes them first, to share them (cluster_secrets.h).
Status CreateClusterCredentials(const std::string& data_dir);
// 24 random bytes in hex: a token no one guesses.
std::string NewRandomToken();

// A client certificate for `user` in `groups` (CN and O, as kube-apiserver
// reads them), signed by the CA under `data_dir`, valid for `days`; what
// `kiso kubeconfig --user` writes into a kubeconfig.
struct ClientCertificate {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_cert_pem;
};
Result<ClientCertificate> IssueClientCertificate(const std::string& data_dir,
                                                 const std::string& user,
                                                 const std::vector<std::string>& groups, int days);

// A CertificateSigningRequest's spec.request: a PEM CERTIFICATE REQUEST
// whose signature its own key verifies. InvalidArgument in upstream's words.
Status CheckCertificateRequest(std::string_view pem);
// What a certificate request asks for: its subject's CN and O, and whether
// it names DNS, IP or e-mail alternative names.
struct RequestedSubject {
  std::string common_name;
  std::vector<std::string> organizations;
  bool alternative_names = false;
};
Result<RequestedSubject> ReadCertificateRequest(std::string_view pem);
// Signs `pem` with the CA under `data_dir` as a client certificate (its
// subject as requested; `usages` must include "client auth"), valid for
// `seconds`. The signer of kubernetes.io/kube-apiserver-client(-kubelet).
Result<std::string> SignCertificateRequest(const std::string& data_dir, std::string_view pem,
                                           const std::vector<std::string>& usages, int64_t seconds);

}  // namespace kiso::apiserver
