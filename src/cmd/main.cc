// kiso: one binary, subcommands. Only flag parsing and wiring live here.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>

#include "agent/hollow.h"
#include "agent/node.h"
#include "agent/node_reset.h"
#include "api/errors.h"
#include "api/object.h"
#include "apiserver/api_server.h"
#include "apiserver/authn/cluster_secrets.h"
#include "apiserver/authn/credentials.h"
#include "client/api_servers.h"
#include "client/client.h"
#include "client/https_transport.h"
#include "client/in_process.h"
#include "client/kubeconfig.h"
#include "client/leader_election.h"
#include "client/shared_informers.h"
#include "cmd/node_flags.h"
#include "cmd/process_setup.h"
#include "common/base64.h"
#include "common/cidr.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/host_addresses.h"
#include "controller/apiserver_endpoints.h"
#include "controller/controller_manager.h"
#include "controller/ingress_status_controller.h"
#include "controller/runtime_classes.h"
#include "dns/cluster_dns.h"
#include "image/image_service.h"
#include "scheduler/scheduler.h"
#include "store/store.h"

namespace {

struct ServerFlags {
  int node_grace_seconds = 40;
  std::string hpa_sync_period = "15s";
  int64_t terminated_pod_gc_threshold = 12500;
  kiso::apiserver::FairGateOptions fairness;
  int max_connections_per_client = 2048;
  int http_idle_timeout_seconds = 60;
  uint32_t http2_max_streams = 1000;
  bool disable_agent = false;
  kiso::agent::NodeOptions node;
  std::string advertise_address;
  std::string service_cidr = "10.43.0.0/16";
  std::string cluster_dns;  // Empty: the tenth address of the service range.
  std::string cluster_domain = "cluster.local";
  std::string resolv_conf = "/etc/resolv.conf";
  uint16_t dns_port = 10053;
  bool disable_dns = false;
  bool leader_elect = true;
  std::string lease_duration = "15s";
  std::string renew_deadline = "10s";
  std::string retry_period = "2s";
  int apiserver_lease_seconds = 15;
  bool allocate_node_cidrs = true;
  int node_cidr_mask_size = 24;
  std::string token;  // The cluster's server token (servers on one etcd).
  bool join = false;
};

// SQLite is one node's store (consistent and available, not partition
// tolerant): two servers on one file would each act as the whole cluster. The
// first server holds a lock beside the file for as long as it runs; a second
// is refused, saying why and what to use instead. False when refused.
bool HoldSqliteStore(const std::string& store_url) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (!store_url.starts_with(kSqlite)) return true;
  std::string lock_path = store_url.substr(kSqlite.size()) + ".server-lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    spdlog::error("open {}: {}", lock_path, std::strerror(errno));
    return false;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto holder = kiso::ReadFile(lock_path);
    spdlog::error(
        "another kiso server{} serves the SQLite store {}: SQLite is one node's store (CA: "
        "consistent and available, not partition tolerant), so only one server may use it. Stop "
        "that one, or run several servers on one etcd (--store etcd://host:port).",
        holder.ok() && !holder->empty() ? " (pid " + holder->substr(0, holder->find('\n')) + ")"
                                        : "",
        store_url);
    close(fd);
    return false;
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || write(fd, pid.data(), pid.size()) < 0) {
    spdlog::warn("{}: {}", lock_path, std::strerror(errno));
  }
  return true;  // The descriptor stays open, and the lock held, until the process ends.
}

// This server's id, made once for its data directory (`server-id` there).
std::string ServerId(const std::string& data_dir) {
  static const std::string id = [&] {
    std::string path = data_dir + "/server-id";
    auto read = kiso::ReadFile(path);
    std::string text = read.ok() ? read->substr(0, read->find_first_of(" \n")) : "";
    if (text.empty()) {
      text = kiso::api::NewUid();
      if (auto s = kiso::WriteFileAtomic(path, text + "\n"); !s.ok())
        spdlog::warn("server id {}: {}", path, s.ToString());
    }
    return text;
  }();
  return id;
}

// Who this server is in its Leases: the host's name and its id, so that a
// server restarted on the same data directory takes its own Leases back at
// once instead of waiting them out.
std::string ServerIdentity(const std::string& data_dir) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "_" + ServerId(data_dir);
}

int RunServer(const std::string& data_dir, std::string store_url, const std::string& address,
              uint16_t port, ServerFlags flags) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    spdlog::error("create data dir {}: {}", data_dir, ec.message());
    return 1;
  }
  if (store_url.empty()) {
    store_url = "sqlite://" + std::filesystem::absolute(data_dir).string() + "/kiso.db";
  }
  auto millis = [](const std::string& text) {
    return std::chrono::milliseconds(kiso::ParseGoDuration(text).value_or(-1'000'000) / 1'000'000);
  };
  // Each Lease's election (its name set where it starts).
  kiso::client::LeaderElectionOptions election;
  election.lease_name = "kube-controller-manager";
  election.identity = ServerIdentity(data_dir);
  election.lease_duration = millis(flags.lease_duration);
  election.renew_deadline = millis(flags.renew_deadline);
  election.retry_period = millis(flags.retry_period);
  kiso::controller::NodeIpamOptions node_ipam{flags.node.cluster_cidr, flags.node_cidr_mask_size};
  if (auto s = kiso::controller::ValidateNodeIpamOptions(node_ipam);
      flags.allocate_node_cidrs && !s.ok()) {
    spdlog::error("{}", s.message());
    return 1;
  }
  if (auto s = kiso::client::ValidateLeaderElection(election); flags.leader_elect && !s.ok()) {
    spdlog::error("{}", s.message());
    return 1;
  }
  if (!HoldSqliteStore(store_url)) return 1;
  // Block the stop signals before any thread starts, so only sigwait sees them.
  sigset_t stop = kiso::cmd::BlockStopSignals();

  auto store = kiso::store::OpenStore(store_url);
  if (!store.ok()) {
    spdlog::error("open store {}: {}", store_url, store.status().ToString());
    return 1;
  }
  // Servers on one etcd share the cluster's CA, keys and admin token through it.
  if ((*store)->Backend() == "etcd") {
    auto shared = kiso::apiserver::ShareClusterSecrets(
        store->get(), {std::filesystem::absolute(data_dir).string(), flags.token, flags.join});
    if (!shared.ok()) {
      spdlog::error("cluster secrets: {}", shared.status().message());
      return 1;
    }
    spdlog::info("cluster secrets: {} (a server joins with --token from {}/tls/server-token)",
                 shared->created ? "this server began the cluster; its CA and keys are in the store"
                                 : "the cluster's CA and keys, from the store",
                 data_dir);
  } else if (flags.join) {
    spdlog::error("--join needs an etcd store (--store etcd://…): SQLite is one server's");
    return 1;
  }
  auto rev = (*store)->CurrentRevision();
  kiso::apiserver::ApiServerOptions options;
  options.fairness = flags.fairness;
  options.max_connections_per_client = flags.max_connections_per_client;
  options.http_idle_timeout = std::chrono::seconds(flags.http_idle_timeout_seconds);
  options.http2_max_streams = flags.http2_max_streams;
  options.address = address;
  options.port = port;
  options.advertise_address = flags.advertise_address;
  options.service_cidr = flags.service_cidr;
  options.data_dir = std::filesystem::absolute(data_dir).string();
  auto server = kiso::apiserver::ApiServer::Start(store->get(), options);
  if (!server.ok()) {
    spdlog::error("start API server: {}", server.status().ToString());
    return 1;
  }
  spdlog::info("kiso {} serving https://{}:{}: store {} ({}, CAP class {}) at revision {}",
               KISO_VERSION, address, (*server)->port(), store_url, (*store)->Backend(),
               (*store)->Cap().name, rev.ok() ? *rev : -1);
  kiso::client::Client client(std::make_shared<kiso::client::InProcessTransport>(server->get()),
                              "kiso-controller-manager");
  // Every server, leader or not, keeps itself in the `kubernetes` Service's endpoints.
  kiso::controller::ApiServerEndpointsOptions presence;
  presence.server_id = ServerId(data_dir);
  presence.identity = election.identity;
  presence.address = (*server)->advertise_address();
  presence.port = (*server)->port();
  presence.lease_duration = std::chrono::seconds(flags.apiserver_lease_seconds);
  kiso::controller::ApiServerEndpoints endpoints_of_servers(&client, presence);
  endpoints_of_servers.Start();
  // The admin kubeconfig lists every live server as they come and go (kubectl
  // keeps to this one; kiso's own clients fail over among them).
  kiso::client::ApiServerWatch cluster_servers(
      &client, [path = (*server)->kubeconfig_path()](const std::vector<std::string>& urls) {
        auto text = kiso::ReadFile(path);
        auto listed = text.ok() ? kiso::client::WithServers(*text, urls) : text;
        kiso::Status st =
            listed.ok() ? kiso::WriteFileAtomic(path, *listed, 0600) : listed.status();
        if (!st.ok()) spdlog::warn("kubeconfig {}: listing the servers: {}", path, st.ToString());
      });
  cluster_servers.Start();
  // One informer per kind for the scheduler and all controllers; declared first, so it outlives
  // them.
  kiso::client::SharedInformers informers(&client);
  if (!flags.node.disable_ingress) {
    if (auto s = kiso::controller::IngressStatusController::EnsureDefaultClass(&client); !s.ok())
      spdlog::error("ingress class kiso: {}", s.ToString());
  }
  if (auto s = kiso::controller::EnsureDefaultRuntimeClasses(&client); !s.ok())
    spdlog::error("runtime classes: {}", s.ToString());
  if (!flags.node.disable_local_storage) {
    if (auto s = kiso::agent::LocalPathProvisioner::EnsureStorageClass(&client); !s.ok())
      spdlog::error("storage class local-path: {}", s.ToString());
  }
  kiso::controller::ControllerManagerOptions manager_options;
  manager_options.terminated_pod_gc_threshold = flags.terminated_pod_gc_threshold;
  manager_options.hpa_sync_period = std::chrono::milliseconds(
      kiso::ParseGoDuration(flags.hpa_sync_period).value_or(15'000'000'000) / 1'000'000);
  manager_options.node_grace_period = std::chrono::seconds(flags.node_grace_seconds);
  // The built-in ingress controller: its class and its Ingresses' status here,
  // the traffic on every node (--disable-ingress: neither, as K3s' --disable traefik).
  manager_options.ingress = !flags.node.disable_ingress;
  manager_options.ca_cert_pem = (*server)->ca_cert_pem();
  manager_options.allocate_node_cidrs = flags.allocate_node_cidrs;
  manager_options.node_ipam = node_ipam;
  manager_options.read_csr =
      [](std::string_view pem) -> kiso::Result<kiso::controller::CsrSubject> {
    KISO_ASSIGN_OR_RETURN(auto s, kiso::apiserver::ReadCertificateRequest(pem));
    return kiso::controller::CsrSubject{s.common_name, s.organizations, s.alternative_names};
  };
  manager_options.sign_csr = [dir = options.data_dir](std::string_view pem,
                                                      const std::vector<std::string>& usages,
                                                      int64_t seconds) {
    return kiso::apiserver::SignCertificateRequest(dir, pem, usages, seconds);
  };
  kiso::scheduler::SchedulerOptions scheduler_options;
  scheduler_options.informers = &informers;
  // The scheduler and the controllers act only while this server holds their
  // Lease (kube-system/kube-scheduler, kube-system/kube-controller-manager), so
  // that with several servers on one store exactly one of each acts.
  std::unique_ptr<kiso::controller::ControllerManager> manager;
  std::unique_ptr<kiso::scheduler::Scheduler> scheduler;
  auto start_manager = [&] {
    manager =
        std::make_unique<kiso::controller::ControllerManager>(&client, &informers, manager_options);
    manager->Start();
  };
  auto start_scheduler = [&] {
    auto created = kiso::scheduler::Scheduler::Create(&client, scheduler_options);
    if (!created.ok()) {
      spdlog::error("scheduler: {}", created.status().ToString());
      return;
    }
    scheduler = std::move(*created);
    scheduler->Start();
  };
  std::unique_ptr<kiso::client::LeaderElector> manager_election, scheduler_election;
  if (flags.leader_elect) {
    manager_election = std::make_unique<kiso::client::LeaderElector>(
        &client, election, start_manager, [&] { manager.reset(); });
    election.lease_name = "kube-scheduler";
    scheduler_election =
        std::make_unique<kiso::client::LeaderElector>(&client, election, start_scheduler, [&] {
          if (scheduler) scheduler->Stop();
          scheduler.reset();
        });
    manager_election->Start();
    scheduler_election->Start();
  } else {
    start_manager();
    start_scheduler();
  }
  // The cluster DNS, answering on this server's advertised address (and loopback).
  auto service_range = kiso::Ipv4Cidr::Parse(flags.service_cidr);
  std::string dns_ip = flags.cluster_dns.empty() && service_range.ok() ? service_range->Address(10)
                                                                       : flags.cluster_dns;
  std::unique_ptr<kiso::dns::ClusterDns> cluster_dns;
  if (!flags.disable_dns) {
    kiso::dns::ClusterDnsOptions d;
    d.domain = flags.cluster_domain;
    d.service_ip = dns_ip;
    d.advertise_address = (*server)->advertise_address();
    d.server.addresses = {d.advertise_address};
    if (d.advertise_address != "127.0.0.1") d.server.addresses.emplace_back("127.0.0.1");
    d.server.port = flags.dns_port;
    d.server.upstreams = kiso::dns::DnsServer::UpstreamsOf(flags.resolv_conf);
    // Answered: pods (every node's range, this node's own), this host; not the world.
    for (const std::string& range : {flags.node.cluster_cidr, flags.node.agent.pod_cidr}) {
      if (auto c = kiso::Ipv4Cidr::Parse(range); c.ok()) d.server.clients.push_back(*c);
    }
    for (const auto& a : kiso::HostAddresses()) {
      if (auto ip = kiso::ParseIpv4(a)) d.server.clients.push_back({*ip, 32});
    }
    auto started = kiso::dns::ClusterDns::Start(&client, &informers, d);
    if (started.ok()) {
      cluster_dns = std::move(*started);
      spdlog::info("cluster DNS: {} (kube-system/kube-dns) on {}:{}, forwarding to {}", dns_ip,
                   d.advertise_address, cluster_dns->port(), fmt::join(d.server.upstreams, ", "));
    } else {
      spdlog::error("cluster DNS not started: {}", started.status().ToString());
    }
  }
  flags.node.agent.cluster_dns = cluster_dns ? dns_ip : "";
  flags.node.agent.cluster_domain = flags.cluster_domain;
  flags.node.agent.resolv_conf = flags.resolv_conf;
  // The node agent: this machine as a node, unless disabled or impossible here.
  kiso::client::Client agent_client(
      std::make_shared<kiso::client::InProcessTransport>(server->get()), "kiso-agent");
  std::unique_ptr<kiso::agent::EmbeddedNode> node;
  if (!flags.disable_agent) {
    flags.node.agent.data_dir = options.data_dir + "/agent";
    flags.node.images_dir = options.data_dir + "/images";
    if (flags.node.registries.empty())
      flags.node.registries = options.data_dir + "/registries.yaml";
    std::filesystem::create_directories(flags.node.agent.data_dir, ec);
    flags.node.shim_binary = kiso::cmd::Beside("kiso-shim", "../runtime/kiso-shim");
    flags.node.wasm_binary = kiso::cmd::Beside("kiso-wasm", "../runtime/kiso-wasm");
    auto created = kiso::agent::EmbeddedNode::Create(&agent_client, flags.node);
    kiso::Status started = created.ok() ? (*created)->Start() : created.status();
    if (started.ok()) {
      node = std::move(*created);
      kiso::agent::Agent* agent = node->agent();
      (*server)->ServeNodeStreams(agent->node_name(),
                                  [agent](const boost::json::value& pod, std::string_view sub,
                                          const kiso::apiserver::Request& req) {
                                    return agent->ServeStream(pod, sub, req);
                                  });
    } else {
      spdlog::warn("node agent not started: {} (this server has no node of its own)",
                   started.ToString());
    }
  }
  std::cout << "kiso server is up at https://" << (address == "0.0.0.0" ? "127.0.0.1" : address)
            << ":" << (*server)->port() << "\n"
            << "Use kubectl:\n  export KUBECONFIG=" << (*server)->kubeconfig_path() << "\n"
            << "  kubectl get namespaces\n"
            << std::flush;
  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("signal {}: shutting down", sig);
  // Each part stops in turn; one that takes long says so (a slow stop is a bug to find).
  auto timed = [](const char* part, const auto& stop_part) {
    auto start = std::chrono::steady_clock::now();
    stop_part();
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (took > std::chrono::milliseconds(500))
      spdlog::warn("stopping {} took {} ms", part, took.count());
  };
  if (node) timed("the node agent", [&] { node->Stop(); });  // Containers keep running.
  if (cluster_dns) timed("the cluster DNS", [&] { cluster_dns->Stop(); });
  timed("this server's endpoints", [&] {
    cluster_servers.Stop();
    endpoints_of_servers.Stop();
  });
  timed("the API server", [&] { (*server)->Stop(); });
  timed("the scheduler", [&] {
    if (scheduler_election) scheduler_election->Stop();  // Stops it, then hands its Lease on.
    if (scheduler) scheduler->Stop();
    scheduler.reset();
  });
  timed("the controllers", [&] {
    if (manager_election) manager_election->Stop();
    manager.reset();
  });
  timed("the informers", [&] { informers.Stop(); });
  timed("the API server's connections and store", [&] { server->reset(); });
  spdlog::info("stopped");
  return 0;
}

int RunHollow(const std::string& kubeconfig, const kiso::agent::HollowOptions& options) {
  sigset_t stop = kiso::cmd::BlockStopSignals();
  auto config = kiso::client::LoadKubeConfig(kubeconfig);
  if (!config.ok()) {
    spdlog::error("{}", config.status().ToString());
    return 1;
  }
  auto transport = kiso::client::HttpsTransport::Create(*config);
  if (!transport.ok()) {
    spdlog::error("{}", transport.status().ToString());
    return 1;
  }
  kiso::client::Client client(*transport, "kiso-hollow");
  kiso::agent::HollowNodes nodes(&client, options);
  if (kiso::Status s = nodes.Start(); !s.ok()) {
    spdlog::error("hollow nodes: {}", s.ToString());
    return 1;
  }
  std::cout << "registered " << options.count << " hollow nodes (" << options.prefix << "-"
            << options.first << "…) with " << config->server << "\n"
            << std::flush;
  int sig = 0;
  sigwait(&stop, &sig);
  nodes.Stop();
  return 0;
}

// `kiso agent`: this machine as a node of a cluster elsewhere, through HTTPS.

// The node's images, as its agent sees them (mirrors from `registries`).
kiso::Result<std::unique_ptr<kiso::image::LocalImageService>> OpenImages(
    const std::string& data_dir, const std::string& registries = "") {
  return kiso::image::LocalImageService::Open(data_dir + "/images", registries);
}

int RunImageImport(const std::string& data_dir, const std::string& file, const std::string& name) {
  auto store = OpenImages(data_dir);
  if (!store.ok()) {
    std::cerr << "kiso image import: " << store.status().ToString() << "\n";
    return 1;
  }
  auto images = (*store)->store().Import(file, name);
  if (!images.ok()) {
    std::cerr << "kiso image import: " << images.status().ToString() << "\n";
    return 1;
  }
  for (const auto& i : *images)
    std::cout << "imported " << i.name << " " << i.config_digest << "\n";
  return 0;
}

int RunImagePull(const std::string& data_dir, const std::string& ref_text,
                 const std::string& registries) {
  auto images = OpenImages(data_dir, registries);
  if (!images.ok()) {
    std::cerr << "kiso image pull: " << images.status().ToString() << "\n";
    return 1;
  }
  bool tty = isatty(STDERR_FILENO) != 0;
  auto image = (*images)->PullImage(ref_text, [tty](const kiso::image::PullProgress& p) {
    // A progress bar per blob: 30 cells, bytes done of total.
    if (!tty) return;
    int cells = p.total > 0 ? static_cast<int>(30 * p.done / p.total) : 0;
    std::cerr << fmt::format("\r{} [{:<30}] {:.1f}/{:.1f} MB", p.digest.substr(7, 12),
                             std::string(static_cast<size_t>(cells), '#'),
                             static_cast<double>(p.done) / 1e6, static_cast<double>(p.total) / 1e6)
              << (p.done == p.total ? "\n" : "") << std::flush;
  });
  if (!image.ok()) {
    std::cerr << "kiso image pull: " << image.status().message() << "\n";
    return 1;
  }
  std::cout << "pulled " << image->name << " " << image->config_digest << "\n";
  return 0;
}

int RunImageList(const std::string& data_dir) {
  auto store = OpenImages(data_dir);
  if (!store.ok()) {
    std::cerr << "kiso image ls: " << store.status().ToString() << "\n";
    return 1;
  }
  std::cout << fmt::format("{:<50} {:<14} {:>10}\n", "IMAGE", "IMAGE ID", "SIZE");
  for (const auto& i : (*store)->ListImages()) {
    std::cout << fmt::format("{:<50} {:<14} {:>8.1f}MB\n", i.name, i.config_digest.substr(7, 12),
                             static_cast<double>(i.size) / 1e6);
  }
  return 0;
}

int RunImageRemove(const std::string& data_dir, const std::string& ref) {
  auto store = OpenImages(data_dir);
  kiso::Status s = store.ok() ? (*store)->RemoveImage(ref) : store.status();
  if (!s.ok()) {
    std::cerr << "kiso image rm: " << s.ToString() << "\n";
    return 1;
  }
  std::cout << "removed " << ref << "\n";
  return 0;
}

int RunNodeReset(const std::optional<std::string>& data_dir) {
  if (geteuid() != 0) {
    std::cerr << "kiso node reset: needs root (it kills containers, unmounts and deletes links)\n";
    return 1;
  }
  kiso::agent::ResetReport report = kiso::agent::ResetNodes(data_dir);
  for (const auto& r : report.removed) std::cout << "removed " << r << "\n";
  for (const auto& f : report.failed) std::cout << "could not remove " << f << "\n";
  std::cout << fmt::format(
      "kiso node reset: {} removed, {} left{}\n", report.removed.size(), report.failed.size(),
      report.removed.empty() && report.failed.empty() ? " (nothing to do)" : "");
  return report.failed.empty() ? 0 : 1;
}

// Writes a kubeconfig for a new user: a client certificate (CN the user, O
// each group) signed by the cluster CA, for the server of DATA_DIR's admin
// kubeconfig. What the user may do is RBAC's to say (kubectl create
// rolebinding … --user NAME).
int RunKubeconfig(const std::string& data_dir, const std::string& user,
                  const std::vector<std::string>& groups, int days, const std::string& output) {
  auto admin = kiso::client::LoadKubeConfig(data_dir + "/kubeconfig.yaml");
  if (!admin.ok()) {
    std::cerr << "kiso kubeconfig: " << admin.status().message()
              << " (start `kiso server --data-dir " << data_dir << "` once first)\n";
    return 1;
  }
  auto cert = kiso::apiserver::IssueClientCertificate(data_dir, user, groups, days);
  if (!cert.ok()) {
    std::cerr << "kiso kubeconfig: " << cert.status().message() << "\n";
    return 1;
  }
  // The entry's name, as a YAML double-quoted scalar (a user name may hold
  // ':' or quotes).
  std::string name = "\"kiso-";
  for (char c : user) {
    if (c == '"' || c == '\\') name += '\\';
    name += c;
  }
  name += '"';
  std::string config = fmt::format(
      "apiVersion: v1\n"
      "kind: Config\n"
      "clusters:\n"
      "- name: kiso\n"
      "  cluster:\n"
      "    server: {}\n"
      "    certificate-authority-data: {}\n"
      "users:\n"
      "- name: {}\n"
      "  user:\n"
      "    client-certificate-data: {}\n"
      "    client-key-data: {}\n"
      "contexts:\n"
      "- name: {}\n"
      "  context:\n"
      "    cluster: kiso\n"
      "    user: {}\n"
      "    namespace: default\n"
      "current-context: {}\n",
      admin->server, kiso::Base64Encode(cert->ca_cert_pem), name,
      kiso::Base64Encode(cert->cert_pem), kiso::Base64Encode(cert->key_pem), name, name, name);
  if (!admin->servers.empty()) {  // The cluster's other servers too, as the admin's lists them.
    auto listed = kiso::client::WithServers(config, admin->servers);
    if (!listed.ok()) {
      std::cerr << "kiso kubeconfig: " << listed.status().message() << "\n";
      return 1;
    }
    config = std::move(*listed);
  }
  if (output.empty() || output == "-") {
    std::cout << config;
    return 0;
  }
  if (auto st = kiso::WriteFileAtomic(output, config, 0600); !st.ok()) {
    std::cerr << "kiso kubeconfig: " << st.message() << "\n";
    return 1;
  }
  return 0;
}

// Creates a bootstrap token (kubeadm's and K3s' `token create`): the Secret
// kube-system/bootstrap-token-<id>, usable for authentication until `ttl`
// ends (0: never), through the admin kubeconfig of DATA_DIR; prints ID.SECRET
// for `kiso agent --token`.
int RunTokenCreate(const std::string& data_dir, std::chrono::seconds ttl,
                   const std::string& description) {
  auto admin = kiso::client::LoadKubeConfig(data_dir + "/kubeconfig.yaml");
  if (!admin.ok()) {
    std::cerr << "kiso token create: " << admin.status().message() << "\n";
    return 1;
  }
  auto transport = kiso::client::HttpsTransport::Create(*admin);
  if (!transport.ok()) {
    std::cerr << "kiso token create: " << transport.status().message() << "\n";
    return 1;
  }
  kiso::client::Client client(*transport, "kiso-token");
  auto random = [](size_t n) {
    static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string out;
    std::random_device device;
    std::uniform_int_distribution<size_t> pick(0, kAlphabet.size() - 1);
    for (size_t i = 0; i < n; ++i) out += kAlphabet[pick(device)];
    return out;
  };
  std::string id = random(6), secret = random(16);
  boost::json::object data{{"token-id", kiso::Base64Encode(id)},
                           {"token-secret", kiso::Base64Encode(secret)},
                           {"usage-bootstrap-authentication", kiso::Base64Encode("true")},
                           {"usage-bootstrap-signing", kiso::Base64Encode("true")}};
  if (ttl.count() > 0) {
    kiso::WallTime until{static_cast<int64_t>(time(nullptr)) + ttl.count(), 0};
    data["expiration"] = kiso::Base64Encode(kiso::FormatRfc3339(until));
  }
  if (!description.empty()) data["description"] = kiso::Base64Encode(description);
  boost::json::value secret_obj = boost::json::object{
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"type", "bootstrap.kubernetes.io/token"},
      {"metadata",
       boost::json::object{{"name", "bootstrap-token-" + id}, {"namespace", "kube-system"}}},
      {"data", std::move(data)}};
  const kiso::api::ResourceType* secrets = kiso::api::FindResource("", "v1", "secrets");
  auto created = client.Create(*secrets, "kube-system", secret_obj);
  if (!created.ok()) {
    std::cerr << "kiso token create: " << created.status().message() << "\n";
    return 1;
  }
  std::cout << id << "." << secret << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "agent") {
    std::string agent = kiso::cmd::Beside("kiso-agent", "kiso-agent");
    argv[1] = agent.data();
    execv(agent.c_str(), argv + 1);
    std::cerr << "kiso agent: cannot run " << agent << ": " << strerror(errno) << "\n";
    return 1;
  }
  kiso::cmd::SetUpProcess();
  CLI::App app{"kiso: a Kubernetes-compatible container platform in one binary"};
  app.require_subcommand(1);

  app.add_subcommand("version", "Print the kiso version")->callback([] {
    std::cout << "kiso " << KISO_VERSION << "\n";
  });

  auto* server = app.add_subcommand("server", "Run the control plane: store and Kubernetes API");
  std::string data_dir = "/var/lib/kiso";
  std::string store_url;
  // Every address, as K3s binds: pods reach the API through the kubernetes Service.
  std::string address = "0.0.0.0";
  uint16_t port = 6443;
  server->add_option("--data-dir", data_dir, "State directory")->capture_default_str();
  server->add_option("--store", store_url,
                     "Store URL: sqlite:///path/kiso.db (default: DATA_DIR/kiso.db) or "
                     "etcd://host:port[,host:port]");
  server->add_option("--address", address, "Listen address")->capture_default_str();
  server->add_option("--https-port,--port", port, "HTTPS port of the Kubernetes API")
      ->capture_default_str();
  ServerFlags flags;
  server
      ->add_option("--service-cidr", flags.service_cidr,
                   "Services' cluster IPs (the first is the kubernetes Service's, the tenth the "
                   "cluster DNS's)")
      ->capture_default_str();
  server->add_option("--cluster-dns", flags.cluster_dns,
                     "The cluster DNS Service's address (default: the tenth of the service range)");
  server->add_option("--cluster-domain", flags.cluster_domain, "The cluster's DNS domain")
      ->capture_default_str();
  server
      ->add_option("--resolv-conf", flags.resolv_conf,
                   "Resolvers the cluster DNS forwards other names to, and pods with dnsPolicy "
                   "Default use")
      ->capture_default_str();
  server
      ->add_option("--dns-port", flags.dns_port,
                   "Port the cluster DNS listens on (the kube-dns Service's target; 0 picks one)")
      ->capture_default_str();
  server->add_flag("--disable-dns", flags.disable_dns, "Do not run the cluster DNS");
  server
      ->add_option("--leader-elect", flags.leader_elect,
                   "Run the scheduler and the controllers only while this server holds their "
                   "Leases in kube-system (several servers on one store)")
      ->capture_default_str();
  server
      ->add_option("--leader-elect-lease-duration", flags.lease_duration,
                   "How long a candidate waits after the leader's last renewal before taking "
                   "its Lease (a Go duration)")
      ->capture_default_str();
  server
      ->add_option("--leader-elect-renew-deadline", flags.renew_deadline,
                   "How long a leader keeps trying to renew before it stops acting (shorter "
                   "than the lease duration)")
      ->capture_default_str();
  server
      ->add_option("--apiserver-lease-duration", flags.apiserver_lease_seconds,
                   "Seconds after its last renewal that a server leaves the kubernetes "
                   "Service's endpoints (it renews every third of them)")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  server
      ->add_option("--leader-elect-retry-period", flags.retry_period,
                   "How often candidates try to take, and the leader to renew, a Lease")
      ->capture_default_str();
  server->add_option("--advertise-address", flags.advertise_address,
                     "Address of the API server in the kubernetes Service's endpoints (default: "
                     "the listen address unless loopback or any, else the host's primary IPv4)");
  server->add_option("--token", flags.token,
                     "The cluster's server token (servers on one etcd): the first server makes "
                     "one unless given, in DATA_DIR/tls/server-token; another joins with it");
  server->add_flag("--join", flags.join,
                   "Join the cluster whose secrets the etcd store holds (refuse to begin a new "
                   "one)");
  server
      ->add_option("--allocate-node-cidrs", flags.allocate_node_cidrs,
                   "Give each Node without one a pod range (spec.podCIDR) from --cluster-cidr")
      ->capture_default_str();
  server
      ->add_option("--node-cidr-mask-size", flags.node_cidr_mask_size,
                   "Prefix length of each Node's pod range taken from --cluster-cidr")
      ->capture_default_str();
  server
      ->add_option("--terminated-pod-gc-threshold", flags.terminated_pod_gc_threshold,
                   "Terminated pods kept before the oldest are deleted (0: keep all)")
      ->capture_default_str();
  server
      ->add_option("--horizontal-pod-autoscaler-sync-period", flags.hpa_sync_period,
                   "How often each HorizontalPodAutoscaler is evaluated (a Go duration)")
      ->check([](const std::string& text) -> std::string {
        auto ns = kiso::ParseGoDuration(text);
        return ns && *ns >= 100'000'000 ? "" : "must be a duration of at least 100ms (15s, 1m)";
      })
      ->capture_default_str();
  server
      ->add_option("--node-monitor-grace-period", flags.node_grace_seconds,
                   "Seconds without a heartbeat before a node is marked unreachable")
      ->capture_default_str();
  server
      ->add_option("--max-requests-inflight", flags.fairness.max_inflight,
                   "Non-mutating requests in flight at once; more get 429 (long-running "
                   "requests are not counted)")
      ->capture_default_str();
  server
      ->add_option("--max-mutating-requests-inflight", flags.fairness.max_mutating_inflight,
                   "Mutating requests in flight at once; more get 429")
      ->capture_default_str();
  server
      ->add_option("--max-connections-per-client", flags.max_connections_per_client,
                   "Open connections one client address may hold")
      ->capture_default_str();
  server
      ->add_option("--http-idle-timeout", flags.http_idle_timeout_seconds,
                   "Seconds a connection may take over its TLS handshake or a request's "
                   "head and body, or stay idle (HTTP/1.1 between requests, HTTP/2 with no "
                   "stream open), before the server closes it")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  server
      ->add_option("--http2-max-streams-per-connection", flags.http2_max_streams,
                   "Streams (requests, watches) one HTTP/2 connection may have open at once")
      ->check(CLI::Range(1U, 1000000U))
      ->capture_default_str();
  int exit_code = 0;
  server->add_flag("--disable-agent", flags.disable_agent,
                   "Do not run the node agent (this machine is then not a node)");
  kiso::cmd::AddNodeFlags(*server, flags.node);
  server->add_option(
      "--registries", flags.node.registries,
      "Registry mirrors, K3s' registries.yaml shape (default: DATA_DIR/registries.yaml)");
  server->callback([&] { exit_code = RunServer(data_dir, store_url, address, port, flags); });

  auto* hollow = app.add_subcommand(
      "hollow", "Register simulated nodes that run bound pods without containers (kubemark)");
  std::string kubeconfig;
  kiso::agent::HollowOptions hollow_options;
  hollow->add_option("--kubeconfig", kubeconfig, "kubeconfig of the cluster to join")->required();
  hollow->add_option("--count", hollow_options.count, "Number of nodes")->capture_default_str();
  hollow->add_option("--prefix", hollow_options.prefix, "Node name prefix")->capture_default_str();
  hollow->add_option("--first", hollow_options.first, "Index of the first node")
      ->capture_default_str();
  hollow->add_option("--cpu", hollow_options.cpu, "CPU per node")->capture_default_str();
  hollow->add_option("--memory", hollow_options.memory, "Memory per node")->capture_default_str();
  hollow->add_option("--pods", hollow_options.pods, "Pods per node")->capture_default_str();
  int heartbeat_seconds = 10;
  hollow->add_option("--heartbeat", heartbeat_seconds, "Seconds between Lease renewals")
      ->capture_default_str();
  hollow->callback([&] {
    hollow_options.heartbeat = std::chrono::seconds(heartbeat_seconds);
    exit_code = RunHollow(kubeconfig, hollow_options);
  });

  // `kiso agent …` runs kiso-agent (main() hands it over before parsing): a
  // node needs no store, so that executable maps none of its libraries.
  app.add_subcommand("agent",
                     "Run this machine as a node of a kiso cluster elsewhere (needs root; "
                     "`kiso agent --help` for its flags)")
      ->allow_extras();

  auto* kubeconfig_cmd = app.add_subcommand(
      "kubeconfig",
      "Write a kubeconfig for a new user: a client certificate signed by the cluster CA "
      "(grant it rights with RBAC)");
  std::string kc_data_dir = "/var/lib/kiso";
  std::string kc_user;
  std::vector<std::string> kc_groups;
  int kc_days = 365;
  std::string kc_output;
  kubeconfig_cmd->add_option("--data-dir", kc_data_dir, "The server's state directory")
      ->capture_default_str();
  kubeconfig_cmd->add_option("--user", kc_user, "User name (the certificate's CN)")->required();
  kubeconfig_cmd->add_option("--group", kc_groups,
                             "A group the user is in (the certificate's O); repeatable");
  kubeconfig_cmd->add_option("--days", kc_days, "Days the certificate is valid")
      ->capture_default_str();
  kubeconfig_cmd->add_option("-o,--output", kc_output, "File to write (default: standard output)");
  kubeconfig_cmd->callback(
      [&] { exit_code = RunKubeconfig(kc_data_dir, kc_user, kc_groups, kc_days, kc_output); });

  auto* token_cmd = app.add_subcommand("token", "Manage bootstrap tokens (for `kiso agent`)");
  token_cmd->require_subcommand(1);
  std::string token_data_dir = "/var/lib/kiso";
  int token_ttl_hours = 24;
  std::string token_description;
  auto* token_create = token_cmd->add_subcommand(
      "create",
      "Create a bootstrap token and print it (ID.SECRET): `kiso agent --token` with it "
      "asks for the node's own certificate");
  token_create->add_option("--data-dir", token_data_dir, "The server's state directory")
      ->capture_default_str();
  token_create->add_option("--ttl-hours", token_ttl_hours, "Hours the token works (0: forever)")
      ->capture_default_str();
  token_create->add_option("--description", token_description, "What the token is for");
  token_create->callback([&] {
    exit_code =
        RunTokenCreate(token_data_dir, std::chrono::hours(token_ttl_hours), token_description);
  });

  auto* image = app.add_subcommand("image", "Manage the node's images");
  image->require_subcommand(1);
  std::string image_data_dir = "/var/lib/kiso";
  image->add_option("--data-dir", image_data_dir, "State directory")->capture_default_str();
  auto* image_import = image->add_subcommand(
      "import", "Import an OCI image layout tar or a docker-archive (docker save) tar");
  std::string import_file;
  std::string import_name;
  image_import->add_option("FILE", import_file, "The archive")->required();
  image_import->add_option("--name", import_name,
                           "Name for images the archive does not name fully");
  image_import->callback(
      [&] { exit_code = RunImageImport(image_data_dir, import_file, import_name); });
  image->add_subcommand("ls", "List images")->callback([&] {
    exit_code = RunImageList(image_data_dir);
  });
  auto* image_pull = image->add_subcommand("pull", "Pull an image from its registry (or a mirror)");
  std::string pull_ref;
  std::string pull_registries;
  image_pull->add_option("REF", pull_ref)->required();
  image_pull->add_option("--registries", pull_registries,
                         "registries.yaml with mirrors (default: DATA_DIR/registries.yaml)");
  image_pull->callback([&] {
    exit_code = RunImagePull(
        image_data_dir, pull_ref,
        pull_registries.empty() ? image_data_dir + "/registries.yaml" : pull_registries);
  });
  auto* image_rm = image->add_subcommand("rm", "Remove an image by name or ID");
  std::string rm_ref;
  image_rm->add_option("REF", rm_ref)->required();
  image_rm->callback([&] { exit_code = RunImageRemove(image_data_dir, rm_ref); });

  auto* node_cmd = app.add_subcommand("node", "Manage this machine as a node");
  node_cmd->require_subcommand(1);
  auto* reset = node_cmd->add_subcommand(
      "reset",
      "Remove everything kiso's nodes made on this machine: the agent, containers and shims, "
      "mounts, network namespaces, links, cgroups, CNI state and kernel rules (K3s' "
      "killall script); with --data-dir only that node's");
  std::string reset_dir;
  reset->add_option("--data-dir", reset_dir,
                    "The node's data directory (as given to `kiso server` "
                    "or `kiso agent`); default: every node");
  reset->callback([&] {
    exit_code = RunNodeReset(reset_dir.empty() ? std::nullopt : std::optional(reset_dir));
  });

  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
