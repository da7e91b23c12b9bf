// kiso-agent: `kiso agent`, this machine as a node of a kiso cluster
// elsewhere. Its own executable (kiso hands `kiso agent …` over to it): a node
// needs the API client, the runtime, images and CNI, but no store, so none of
// the store backends' libraries (SQLite, gRPC, protobuf) are mapped.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/url/parse.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "agent/node.h"
#include "api/validation.h"
#include "apiserver/http/tunnel_dialer.h"
#include "client/client.h"
#include "client/https_transport.h"
#include "client/kubeconfig.h"
#include "client/node_bootstrap.h"
#include "cmd/node_flags.h"
#include "cmd/process_setup.h"

namespace {

struct AgentFlags {
  std::string server;  // https://host:port
  std::string token;
  std::string ca_file;
  std::string kubeconfig;
  std::string data_dir = "/var/lib/kiso";
  kiso::agent::NodeOptions node;
};

int RunAgent(AgentFlags flags) {
  sigset_t stop = kiso::cmd::BlockStopSignals();
  kiso::client::KubeConfig config;
  if (!flags.kubeconfig.empty()) {
    auto loaded = kiso::client::LoadKubeConfig(flags.kubeconfig);
    if (!loaded.ok()) {
      spdlog::error("{}", loaded.status().ToString());
      return 1;
    }
    config = *loaded;
  } else {
    auto url = boost::urls::parse_uri(flags.server);
    if (!url || url->scheme() != "https" || flags.token.empty() || flags.ca_file.empty()) {
      spdlog::error(
          "kiso agent needs --server https://HOST:PORT, --token (a bootstrap token, "
          "ID.SECRET, or the server's DATA_DIR/tls/admin.token) and --ca-file (the server's "
          "DATA_DIR/tls/ca.crt), or --kubeconfig");
      return 1;
    }
    std::ifstream ca(flags.ca_file);
    if (!ca) {
      spdlog::error("read --ca-file {}: no such file", flags.ca_file);
      return 1;
    }
    config.ca_pem.assign(std::istreambuf_iterator<char>(ca), {});
    config.server = flags.server;
    config.host = std::string(url->encoded_host().data(), url->encoded_host().size());
    config.port = url->has_port() ? std::stoi(std::string(url->port())) : 443;
    config.token = flags.token;
  }
  std::string dir = std::filesystem::absolute(flags.data_dir).string();
  std::error_code ec;
  std::filesystem::create_directories(dir + "/agent", ec);
  if (kiso::api::IsBootstrapToken(config.token)) {
    // A bootstrap token only asks for the node's own certificate; the node
    // then speaks as system:node:<name>.
    if (flags.node.agent.node_name.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      flags.node.agent.node_name = host;
    }
    auto own = kiso::client::BootstrapNodeCredentials(config, flags.node.agent.node_name,
                                                      dir + "/agent", std::chrono::seconds(60));
    if (!own.ok()) {
      spdlog::error("kiso agent: {}", own.status().ToString());
      return 1;
    }
    config = *own;
  }
  auto transport = kiso::client::HttpsTransport::Create(config);
  if (!transport.ok()) {
    spdlog::error("{}", transport.status().ToString());
    return 1;
  }
  kiso::client::Client client(*transport, "kiso-agent");
  flags.node.agent.data_dir = dir + "/agent";
  flags.node.images_dir = dir + "/images";
  if (flags.node.registries.empty()) flags.node.registries = dir + "/registries.yaml";
  flags.node.shim_binary = kiso::cmd::Beside("kiso-shim", "../runtime/kiso-shim");
  flags.node.wasm_binary = kiso::cmd::Beside("kiso-wasm", "../runtime/kiso-wasm");
  auto node = kiso::agent::EmbeddedNode::Create(&client, flags.node);
  kiso::Status started = node.ok() ? (*node)->Start() : node.status();
  if (!started.ok()) {
    spdlog::error("kiso agent: {}", started.ToString());
    return 1;
  }
  // Streams (logs, exec) reach this node down tunnels it dials to the server.
  kiso::agent::Agent* agent = (*node)->agent();
  kiso::apiserver::TunnelOptions tunnel_options;
  tunnel_options.host = config.host;
  tunnel_options.port = static_cast<uint16_t>(config.port);
  tunnel_options.ca_pem = config.ca_pem;
  tunnel_options.token = config.token;
  tunnel_options.client_cert_pem = config.client_cert_pem;
  tunnel_options.client_key_pem = config.client_key_pem;
  tunnel_options.node = agent->node_name();
  auto tunnels = kiso::apiserver::TunnelDialer::Start(
      tunnel_options,
      [agent](const kiso::apiserver::Request& req) { return agent->ServeStream(req); });
  if (!tunnels.ok()) {
    spdlog::error("kiso agent: {}", tunnels.status().ToString());
    (*node)->Stop();
    return 1;
  }
  std::cout << "kiso agent: node " << agent->node_name() << " joined " << config.server << "\n"
            << std::flush;
  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("signal {}: stopping the agent (containers keep running)", sig);
  tunnels->reset();
  (*node)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  kiso::cmd::SetUpProcess();
  CLI::App app{"kiso agent: run this machine as a node of a kiso cluster elsewhere (needs root)",
               "kiso agent"};
  AgentFlags agent_flags;
  app.add_option("--server", agent_flags.server, "The API server: https://HOST:PORT");
  app.add_option("--token", agent_flags.token,
                 "A bootstrap token (ID.SECRET: the node asks for a certificate of its own, "
                 "system:node:NAME) or a bearer token");
  app.add_option("--ca-file", agent_flags.ca_file, "The cluster CA (the server's tls/ca.crt)");
  app.add_option("--kubeconfig", agent_flags.kubeconfig, "Instead of --server/--token/--ca-file");
  app.add_option("--data-dir", agent_flags.data_dir, "State directory")->capture_default_str();
  kiso::cmd::AddNodeFlags(app, agent_flags.node);
  app.add_option("--cluster-dns", agent_flags.node.agent.cluster_dns,
                 "The cluster DNS pods resolve with")
      ->capture_default_str();
  app.add_option("--cluster-domain", agent_flags.node.agent.cluster_domain,
                 "The cluster's DNS domain")
      ->capture_default_str();
  app.add_option("--resolv-conf", agent_flags.node.agent.resolv_conf,
                 "The node's resolvers (pods with dnsPolicy Default use them)")
      ->capture_default_str();
  app.add_option("--registries", agent_flags.node.registries,
                 "Registry mirrors (default: DATA_DIR/registries.yaml)");
  CLI11_PARSE(app, argc, argv);
  return RunAgent(agent_flags);
}
