// Reading a kubeconfig (the file `kiso server` writes, or any kubectl one):
// the current context's server URL, CA certificate, and bearer token or
// client certificate.
#pragma once

#include <string>

#include "common/status.h"

namespace kiso::client {

struct KubeConfig {
  std::string server;  // https://127.0.0.1:6443
  std::string host;    // 127.0.0.1
  int port = 443;
  std::string ca_pem;     // Empty: verify against the system store.
  bool insecure = false;  // insecure-skip-tls-verify.
  std::string token;
  std::string client_cert_pem;  // A client certificate, with its key (client-certificate-data).
  std::string client_key_pem;
};

// InvalidArgument naming the file and what is missing or malformed.
Result<KubeConfig> LoadKubeConfig(const std::string& path);

// `config` aimed at `url` (https://HOST[:PORT], 443 by default; a path is
// ignored): server, host and port set. InvalidArgument for anything else.
Result<KubeConfig> AtServer(KubeConfig config, std::string_view url);

}  // namespace kiso::client
