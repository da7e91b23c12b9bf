// A node's own credentials from a bootstrap token (the kubelet's TLS
// bootstrap): the node makes a key, asks with the token for a client
// certificate for system:node:<node> in system:nodes through a
// CertificateSigningRequest (signer kubernetes.io/kube-apiserver-client-kubelet,
// which the server approves for bootstrap tokens and signs), and from then
// on speaks as itself. The key and certificate are kept in `dir` (node.key,
// node.crt) and reused while the certificate has a day left.
#pragma once

#include <chrono>
#include <string>

#include "client/kubeconfig.h"
#include "common/status.h"

namespace kiso::client {

// `bootstrap` (its token a bootstrap token) turned into the node's own
// configuration: the same server and CA, the node's client certificate, no
// token. DeadlineExceeded when no certificate came within `timeout`;
// PermissionDenied when the request was denied or failed, with why.
Result<KubeConfig> BootstrapNodeCredentials(const KubeConfig& bootstrap, const std::string& node,
                                            const std::string& dir, std::chrono::seconds timeout);

}  // namespace kiso::client
