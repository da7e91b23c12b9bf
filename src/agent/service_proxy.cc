#include "agent/service_proxy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "api/object.h"
#include "api/resources.h"
#include "common/file.h"
#include "common/host_addresses.h"
#include "common/process.h"
#include "network/proxy/conntrack.h"

namespace kiso::agent {

namespace json = boost::json;
namespace proxy = network::proxy;

namespace {

using api::KeyOf;

// Writes `value` to a /proc/sys file unless it holds it already; says whether it changed.
Result<bool> Sysctl(const std::string& path, std::string_view value) {
  auto have = ReadFile(path);
  if (!have.ok()) return have.status();
  if (have->substr(0, have->find('\n')) == value) return false;
  std::ofstream out(path);
  out << value;
  out.close();
  if (!out) return MakeStatus(Code::kInternal, "write {}: failed", path);
  return true;
}

}  // namespace

ServiceProxy::ServiceProxy(client::Client* client, ServiceProxyOptions options)
    : client_(client), options_(std::move(options)), rules_(options_.rules) {}

ServiceProxy::~ServiceProxy() { Stop(); }

Status ServiceProxy::Start() {
  const std::string& bridge = options_.rules.bridge;
  // The pods' bridge, before the first pod: node ports on 127.0.0.1 need
  // route_localnet on it (kube-proxy sets it on every interface; kiso on this one).
  if (!std::filesystem::exists("/sys/class/net/" + bridge)) {
    KISO_ASSIGN_OR_RETURN(
        auto r, RunCommand({"/usr/sbin/ip", "link", "add", "name", bridge, "type", "bridge"}));
    if (r.exit_code != 0 && !std::filesystem::exists("/sys/class/net/" + bridge))
      return MakeStatus(Code::kInternal, "create bridge {}: {}", bridge, r.err);
    (void)RunCommand({"/usr/sbin/ip", "link", "set", bridge, "up"});
  }
  KISO_RETURN_IF_ERROR(
      Sysctl(fmt::format("/proc/sys/net/ipv4/conf/{}/route_localnet", bridge), "1").status());
  // Pod-to-pod replies through a Service cross the bridge, not the host's IP
  // layer: conntrack must see them (br_netfilter), or they would not be un-DNATed.
  const std::string brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
  if (!std::filesystem::exists(brnf)) (void)RunCommand({"/usr/sbin/modprobe", "br_netfilter"});
  auto changed = Sysctl(brnf, "1");
  if (!changed.ok()) return changed.status();
  if (*changed)
    spdlog::info("service proxy: set {} to 1 (bridged pod traffic through conntrack)", brnf);
  // Node ports from other nodes and pods' traffic leaving the node (masqueraded)
  // are forwarded between the node's interfaces and the bridge (K3s sets it too).
  const std::string forward = "/proc/sys/net/ipv4/ip_forward";
  changed = Sysctl(forward, "1");
  if (!changed.ok()) return changed.status();
  if (*changed)
    spdlog::info("service proxy: set {} to 1 (routing for pods and node ports)", forward);

  // Least connections, in the sockets of the node and its pods (eBPF).
  auto balancer = proxy::SocketBalancer::Open(HostAddresses());
  if (balancer.ok()) {
    sockets_ = std::move(*balancer);
  } else {
    spdlog::warn("service proxy: least-connections Services get round robin: {}",
                 balancer.status().ToString());
  }

  services_ = std::make_unique<client::Informer>(
      client_, api::FindResource("", "v1", "services"),
      [this](const json::value*, const json::value& svc, bool) { Dirty(KeyOf(svc)); });
  slices_ = std::make_unique<client::Informer>(
      client_, api::FindResource("discovery.k8s.io", "v1", "endpointslices"),
      [this](const json::value* old, const json::value& slice, bool deleted) {
        for (const auto& key : slice_index_.Observe(old, slice, deleted)) Dirty(key);
      });
  services_->Start();
  slices_->Start();
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void ServiceProxy::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (services_) services_->Stop();
  if (slices_) slices_->Stop();
  sockets_.reset();  // Its programs go; nftables' round robin takes those ports.
}

void ServiceProxy::ForgetUdpFlows(const proxy::ServicePorts& before,
                                  const proxy::ServicePorts& after,
                                  const std::set<std::string>& changed) {
  // A UDP port's endpoints that served before and do not now: their flows go.
  std::set<std::pair<std::string, int>> gone;
  for (const auto& name : changed) {
    auto was = before.find(name);
    if (was == before.end() || was->second.protocol != "udp") continue;
    auto is = after.find(name);
    for (const auto& e : was->second.endpoints) {
      if (!e.ready) continue;
      bool still = false;
      if (is != after.end()) {
        for (const auto& n : is->second.endpoints)
          still = still || (n.ip == e.ip && n.port == e.port && n.ready);
      }
      if (!still) gone.emplace(e.ip, e.port);
    }
  }
  for (const auto& [ip, port] : gone) {
    auto deleted = proxy::DeleteUdpFlowsTo(ip, static_cast<uint16_t>(port));
    if (!deleted.ok()) {
      spdlog::warn("service proxy: UDP flows to {}:{} stay: {}", ip, port,
                   deleted.status().ToString());
    } else if (*deleted > 0) {
      spdlog::info("service proxy: {} UDP flows to {}:{} (no longer an endpoint) forgotten",
                   *deleted, ip, port);
    }
  }
}

void ServiceProxy::Housekeeping() {
  if (!sockets_) return;
  auto attached = sockets_->AttachInterfaces(options_.rules.bridge);
  std::string problem = attached.ok() ? "" : attached.status().ToString();
  if (problem != tc_problem_ && !problem.empty())
    spdlog::warn("service proxy: least connections from other nodes: {}", problem);
  tc_problem_ = std::move(problem);
  // Node ports answer on the node's addresses as they are now (an interface
  // that came; its tc programs are on by now).
  if (sockets_->SetNodeAddresses(HostAddresses())) {
    if (Status b = sockets_->Full(applied_); !b.ok())
      spdlog::warn("service proxy: socket balancer: {}", b.ToString());
  }
  if (auto now = std::chrono::steady_clock::now(); now >= next_sweep_) {
    next_sweep_ = now + kSweepPeriod;
    auto swept = sockets_->SweepRemotes(kSweepPeriod);
    if (!swept.ok()) {
      spdlog::warn("service proxy: sweeping connections from other nodes: {}",
                   swept.status().ToString());
    } else if (*swept > 0) {
      spdlog::info("service proxy: {} connections from other nodes ended unseen, counted off",
                   *swept);
    }
  }
}

void ServiceProxy::Dirty(const std::string& key) {
  {
    std::lock_guard lock(mu_);
    dirty_.insert(key);
  }
  cv_.notify_all();
}

proxy::ServicePorts ServiceProxy::CurrentPorts(const std::string& key) {
  auto [ns, name] = api::SplitKey(key);
  auto svc = services_->Get(ns, name);
  if (!svc) return {};
  std::vector<json::value> slices;
  for (const auto& n : slice_index_.Of(key)) {
    if (auto s = slices_->Get(ns, n)) slices.push_back(std::move(*s));
  }
  return PortsOf(*svc, slices, options_.node_name);
}

proxy::ServicePorts ServiceProxy::PortsOf(const json::value& service,
                                          const std::vector<json::value>& slices,
                                          const std::string& node_name) {
  proxy::ServicePorts out;
  const json::value* spec = api::Find(service, {"spec"});
  if (!spec || !spec->is_object()) return out;
  std::string_view type = api::GetString(*spec, {"type"});
  if (type == "ExternalName") return out;
  std::string cluster_ip(api::GetString(*spec, {"clusterIP"}));
  if (cluster_ip == "None") return out;  // Headless: DNS names the pods; nothing to route.
  proxy::ServicePort base;
  base.cluster_ip = cluster_ip;
  base.algorithm = proxy::ParseAlgorithm(api::GetString(service, {"metadata", "annotations",
                                                                  "kiso.dev/load-balancer"}))
                       .value_or(proxy::Algorithm::kRandom);
  if (api::GetString(*spec, {"sessionAffinity"}) == "ClientIP") {
    const auto* t = api::Find(*spec, {"sessionAffinityConfig", "clientIP", "timeoutSeconds"});
    base.affinity_seconds = t && t->is_int64() ? static_cast<int>(t->get_int64()) : 10800;
  }
  base.internal_local = api::GetString(*spec, {"internalTrafficPolicy"}) == "Local";
  base.external_local = api::GetString(*spec, {"externalTrafficPolicy"}) == "Local";
  if (const auto* ips = api::Find(*spec, {"externalIPs"}); ips && ips->is_array()) {
    for (const auto& ip : ips->get_array())
      if (ip.is_string()) base.external_ips.emplace_back(ip.get_string());
  }
  if (type == "LoadBalancer") {
    if (const auto* in = api::Find(service, {"status", "loadBalancer", "ingress"});
        in && in->is_array()) {
      for (const auto& i : in->get_array()) {
        std::string_view ip = api::GetString(i, {"ip"});
        if (!ip.empty()) base.external_ips.emplace_back(ip);
      }
    }
  }
  const auto* ports = api::Find(*spec, {"ports"});
  if (!ports || !ports->is_array()) return out;
  std::string_view ns = api::GetString(service, {"metadata", "namespace"});
  std::string_view name = api::GetString(service, {"metadata", "name"});
  // Each slice read once, whatever number of ports looks into it.
  std::vector<std::vector<client::SliceEndpoint>> read;
  read.reserve(slices.size());
  for (const auto& slice : slices) read.push_back(client::EndpointsOf(slice));
  for (const auto& sp : ports->get_array()) {
    proxy::ServicePort p = base;
    std::string protocol(api::GetString(sp, {"protocol"}));
    if (protocol.empty()) protocol = "TCP";
    std::string port_name(api::GetString(sp, {"name"}));
    const auto* number = api::Find(sp, {"port"});
    const auto* node_port = api::Find(sp, {"nodePort"});
    p.port = number && number->is_int64() ? static_cast<int>(number->get_int64()) : 0;
    p.node_port =
        node_port && node_port->is_int64() && (type == "NodePort" || type == "LoadBalancer")
            ? static_cast<int>(node_port->get_int64())
            : 0;
    std::transform(protocol.begin(), protocol.end(), protocol.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    p.protocol = protocol;
    for (size_t k = 0; k < slices.size(); ++k) {
      const json::value& slice = slices[k];
      int target = 0;
      if (const auto* sps = api::Find(slice, {"ports"}); sps && sps->is_array()) {
        for (const auto& s : sps->get_array()) {
          std::string_view proto = api::GetString(s, {"protocol"});
          const auto* n = api::Find(s, {"port"});
          if (api::GetString(s, {"name"}) == port_name &&
              (proto.empty() ? std::string_view("TCP") : proto) ==
                  api::GetString(sp, {"protocol"}) &&
              n && n->is_int64())
            target = static_cast<int>(n->get_int64());
        }
      }
      if (target == 0) continue;
      for (const auto& e : read[k]) {
        proxy::Endpoint ep;
        ep.ip = e.ip;
        ep.port = target;
        ep.ready = e.ready;
        ep.serving = e.serving;
        ep.terminating = e.terminating;
        ep.local = e.node_name == node_name;
        ep.weight = e.weight;
        p.endpoints.push_back(std::move(ep));
      }
    }
    // In a stable order: a slice's order is no change to program.
    std::sort(p.endpoints.begin(), p.endpoints.end(), [](const auto& a, const auto& b) {
      return std::tie(a.ip, a.port) < std::tie(b.ip, b.port);
    });
    if (p.cluster_ip.empty() && p.node_port == 0 && p.external_ips.empty()) continue;
    out[fmt::format("{}/{}:{}/{}", ns, name, port_name.empty() ? std::to_string(p.port) : port_name,
                    p.protocol)] = std::move(p);
  }
  return out;
}

void ServiceProxy::Run() {
  // The whole table once the caches are complete: an empty cache would
  // program "no endpoints" for every Service that has some.
  while (
      !services_->WaitForSync(std::chrono::steady_clock::now() + std::chrono::milliseconds(200)) ||
      !slices_->WaitForSync(std::chrono::steady_clock::now() + std::chrono::milliseconds(200))) {
    std::lock_guard lock(mu_);
    if (stop_) return;
  }
  bool full = true;
  auto tick = std::chrono::steady_clock::now();
  while (true) {
    std::set<std::string> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, tick, [&] { return stop_ || full || !dirty_.empty(); });
      if (stop_) return;
      batch.swap(dirty_);
    }
    if (std::chrono::steady_clock::now() >= tick) {
      Housekeeping();
      tick = std::chrono::steady_clock::now() + kHousekeepingPeriod;
    }
    if (full) {
      proxy::ServicePorts all;
      for (const auto& svc : services_->List()) all.merge(CurrentPorts(KeyOf(svc)));
      Status s = nft_.Run(rules_.Full(all));
      if (!s.ok()) {
        spdlog::error("service proxy: programming table {}: {}", options_.rules.table,
                      s.ToString());
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
        continue;
      }
      if (sockets_) {
        if (Status b = sockets_->Full(all); !b.ok())
          spdlog::warn("service proxy: socket balancer: {}", b.ToString());
      }
      applied_ = std::move(all);
      full = false;
      generation_.fetch_add(1);
      continue;
    }
    // Only the changed Services' ports, before and after: work in proportion to the change.
    proxy::ServicePorts before, after;
    for (const auto& key : batch) {
      const std::string prefix = key + ":";
      for (auto it = applied_.lower_bound(prefix);
           it != applied_.end() && it->first.starts_with(prefix); ++it)
        before.insert(*it);
      after.merge(CurrentPorts(key));
    }
    std::set<std::string> changed;
    for (const auto& [name, port] : before) {
      auto it = after.find(name);
      if (it == after.end() || !(it->second == port)) changed.insert(name);
    }
    for (const auto& [name, port] : after) {
      if (!before.count(name)) changed.insert(name);
    }
    if (changed.empty()) continue;
    auto start = std::chrono::steady_clock::now();
    Status s = nft_.Apply(options_.rules.table, rules_.Update(before, after, changed));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (took > std::chrono::milliseconds(100)) {
      spdlog::info("service proxy: {} Service ports took {} ms to program", changed.size(),
                   took.count());
    }
    if (!s.ok()) {
      spdlog::warn("service proxy: update refused ({}); rebuilding table {}", s.ToString(),
                   options_.rules.table);
      full = true;
      std::lock_guard lock(mu_);
      dirty_.insert(batch.begin(), batch.end());
      continue;
    }
    if (sockets_) {
      if (Status b = sockets_->Update(before, after, changed); !b.ok())
        spdlog::warn("service proxy: socket balancer: {}", b.ToString());
    }
    ForgetUdpFlows(before, after, changed);
    for (const auto& name : changed) {
      if (auto it = after.find(name); it != after.end()) {
        applied_[name] = std::move(it->second);
      } else {
        applied_.erase(name);
      }
    }
    generation_.fetch_add(1);
  }
}

}  // namespace kiso::agent
