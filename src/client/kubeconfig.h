// Reading a kubeconfig (the file `kiso server` writes, or any kubectl one):
// the current context's server URL, CA certificate, and bearer token or
// client certificate, and the cluster's other API servers when it lists them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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
  // Every API server of the cluster (https://HOST:PORT), from the cluster's
  // extension kServersExtension; empty when it has none. kubectl keeps to
  // `server`; kiso's clients fail over among these.
  std::vector<std::string> servers;
};

// The name of a kubeconfig cluster's extension that lists the cluster's API
// servers: `extensions: [{name: kiso.dev/servers, extension: {servers: [...]}}]`
// (kubectl reads and keeps extensions it does not know).
inline constexpr std::string_view kServersExtension = "kiso.dev/servers";

// InvalidArgument naming the file and what is missing or malformed.
Result<KubeConfig> LoadKubeConfig(const std::string& path);

// `config` aimed at `url` (https://HOST[:PORT], 443 by default; a path is
// ignored): server, host and port set. InvalidArgument for anything else.
Result<KubeConfig> AtServer(KubeConfig config, std::string_view url);

// `yaml` (a kubeconfig) with every cluster's kServersExtension set to `urls`
// (each https://HOST:PORT). InvalidArgument when it is not a kubeconfig.
Result<std::string> WithServers(std::string_view yaml, const std::vector<std::string>& urls);

}  // namespace kiso::client
