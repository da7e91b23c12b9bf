// kiso-agent: `kiso agent`, this machine as a node of a kiso cluster
// elsewhere. Its own executable (kiso hands `kiso agent …` over to it): a node
// needs the API client, the runtime, images and CNI, but no store, so none of
// the store backends' libraries (SQLite, gRPC, protobuf) are mapped.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>

#include "agent/node.h"
#include "api/validation.h"
#include "apiserver/http/tunnel_dialer.h"
#include "client/api_servers.h"
#include "client/client.h"
#include "client/https_transport.h"
#include "client/kubeconfig.h"
#include "client/node_bootstrap.h"
#include "cmd/node_flags.h"
#include "cmd/process_setup.h"

namespace {

struct AgentFlags {
  std::vector<std::string> servers;  // https://host:port each.
  std::string token;
  std::string ca_file;
  std::string kubeconfig;
  std::string data_dir = "/var/lib/kiso";
  kiso::agent::NodeOptions node;
};

// A tunnel dialer to each API server of the cluster.
class Tunnels {
 public:
  Tunnels(kiso::apiserver::TunnelOptions options, kiso::apiserver::TunnelDialer::Handler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}

  // Dials to each of `servers` (new ones started), no longer to others.
  kiso::Status Follow(const std::vector<std::string>& servers) {
    std::lock_guard lock(mu_);
    std::map<std::string, std::unique_ptr<kiso::apiserver::TunnelDialer>> next;
    for (const auto& server : servers) {
      if (auto it = dialers_.find(server); it != dialers_.end()) {
        next[server] = std::move(it->second);
        continue;
      }
      kiso::client::KubeConfig target;
      KISO_ASSIGN_OR_RETURN(target, kiso::client::AtServer(target, server));
      auto options = options_;
      options.host = target.host;
      options.port = static_cast<uint16_t>(target.port);
      KISO_ASSIGN_OR_RETURN(next[server], kiso::apiserver::TunnelDialer::Start(options, handler_));
    }
    dialers_.swap(next);  // Those left in `next` stop as it goes.
    return kiso::Status::Ok();
  }
  void StopAll() {
    std::lock_guard lock(mu_);
    dialers_.clear();
  }

 private:
  kiso::apiserver::TunnelOptions options_;
  kiso::apiserver::TunnelDialer::Handler handler_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<kiso::apiserver::TunnelDialer>> dialers_;
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
    auto aimed = kiso::client::AtServer({}, flags.servers.empty() ? "" : flags.servers[0]);
    if (!aimed.ok() || flags.token.empty() || flags.ca_file.empty()) {
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
    config = *aimed;
    config.ca_pem.assign(std::istreambuf_iterator<char>(ca), {});
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
    // Through the first server that answers.
    kiso::Result<kiso::client::KubeConfig> own = kiso::Status(kiso::Code::kUnavailable, "");
    for (const auto& server : flags.servers.empty() ? std::vector{config.server} : flags.servers) {
      auto at = kiso::client::AtServer(config, server);
      if (!at.ok()) {
        own = at.status();
        break;
      }
      own = kiso::client::BootstrapNodeCredentials(*at, flags.node.agent.node_name, dir + "/agent",
                                                   std::chrono::seconds(60));
      if (own.ok() || own.status().code() != kiso::Code::kUnavailable) break;
    }
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
  if (flags.servers.size() > 1) {
    if (auto s = (*transport)->SetServers(flags.servers); !s.ok()) {
      spdlog::error("--server: {}", s.message());
      return 1;
    }
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
  // Streams (logs, exec) reach this node down tunnels it dials to every server
  // (a request may come to any of them); the servers are those the kubernetes
  // Service lists, followed as they come and go, and the API client fails over
  // among them.
  kiso::agent::Agent* agent = (*node)->agent();
  kiso::apiserver::TunnelOptions tunnel_options;
  tunnel_options.ca_pem = config.ca_pem;
  tunnel_options.token = config.token;
  tunnel_options.client_cert_pem = config.client_cert_pem;
  tunnel_options.client_key_pem = config.client_key_pem;
  tunnel_options.node = agent->node_name();
  Tunnels tunnels(tunnel_options,
                  [agent](const kiso::apiserver::Request& req) { return agent->ServeStream(req); });
  if (auto s = tunnels.Follow(flags.servers.empty() ? std::vector{config.server} : flags.servers);
      !s.ok()) {
    spdlog::error("kiso agent: {}", s.ToString());
    (*node)->Stop();
    return 1;
  }
  kiso::client::ApiServerWatch servers(
      &client, [&tunnels, transport = *transport](const std::vector<std::string>& urls) {
        spdlog::info("kiso agent: the cluster's API servers: {}", fmt::join(urls, ", "));
        if (auto s = transport->SetServers(urls); !s.ok()) spdlog::warn("{}", s.ToString());
        if (auto s = tunnels.Follow(urls); !s.ok()) spdlog::warn("{}", s.ToString());
      });
  servers.Start();
  std::cout << "kiso agent: node " << agent->node_name() << " joined " << config.server << "\n"
            << std::flush;
  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("signal {}: stopping the agent (containers keep running)", sig);
  servers.Stop();
  tunnels.StopAll();
  (*node)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  kiso::cmd::SetUpProcess();
  CLI::App app{"kiso agent: run this machine as a node of a kiso cluster elsewhere (needs root)",
               "kiso agent"};
  AgentFlags agent_flags;
  app.add_option("--server", agent_flags.servers,
                 "The API server, https://HOST:PORT, or several, comma-separated (the agent "
                 "also learns every live server from the kubernetes Service, and fails over)")
      ->delimiter(',');
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
