#include "agent/policy_controller.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <utility>

#include "api/object.h"
#include "api/resources.h"
#include "common/host_addresses.h"
#include "network/proxy/conntrack.h"

namespace kiso::agent {

namespace json = boost::json;
namespace policy = network::policy;

namespace {

// The cluster DNS's endpoint as a peer: kiso's DNS is not a pod, so a
// policy that allows the kube-dns pods (k8s-app: kube-dns in kube-system, as
// CoreDNS is labelled) allows it.
constexpr std::string_view kDnsPrefix = "kube-system/kube-dns endpoint ";

// Whether a policy's peers can be pods outside its namespace (or any
// address): a pod changing elsewhere, or a namespace's labels, can change it.
bool ReachesOtherNamespaces(const json::value& policy) {
  const json::value* spec = api::Find(policy, {"spec"});
  if (!spec) return false;
  for (const char* dir : {"ingress", "egress"}) {
    for (const auto& rule : api::GetArray(*spec, {dir})) {
      const auto& peers = api::GetArray(rule, {dir[0] == 'i' ? "from" : "to"});
      if (peers.empty()) return true;  // Every peer: named ports resolve anywhere.
      for (const auto& p : peers) {
        if (api::Find(p, {"namespaceSelector"}) || api::Find(p, {"ipBlock"})) return true;
      }
    }
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<PolicyController>> PolicyController::Create(
    client::Client* client, PolicyControllerOptions options) {
  KISO_ASSIGN_OR_RETURN(auto enforcer, policy::NewEnforcer(options.enforcer, options.enforcement));
  return std::unique_ptr<PolicyController>(
      new PolicyController(client, std::move(options), std::move(enforcer)));
}

PolicyController::PolicyController(client::Client* client, PolicyControllerOptions options,
                                   std::unique_ptr<policy::Enforcer> enforcer)
    : client_(client), options_(std::move(options)), enforcer_(std::move(enforcer)) {}

PolicyController::~PolicyController() { Stop(); }

void PolicyController::Start() {
  pods_ = std::make_unique<client::Informer>(client_, api::FindResource("", "v1", "pods"),
                                             [this](const json::value* old, const json::value& pod,
                                                    bool deleted) { OnPod(old, pod, deleted); });
  namespaces_ =
      std::make_unique<client::Informer>(client_, api::FindResource("", "v1", "namespaces"),
                                         [this](const json::value* old, const json::value& ns,
                                                bool deleted) { OnNamespace(old, ns, deleted); });
  policies_ = std::make_unique<client::Informer>(
      client_, api::FindResource("networking.k8s.io", "v1", "networkpolicies"),
      [this](const json::value*, const json::value& p, bool deleted) { OnPolicy(p, deleted); });
  dns_ = std::make_unique<client::Informer>(
      client_, api::FindResource("", "v1", "endpoints"),
      [this](const json::value*, const json::value& e, bool deleted) { OnDns(e, deleted); });
  dns_->SetFieldSelector("metadata.namespace=kube-system,metadata.name=kube-dns");
  for (auto* i : {pods_.get(), namespaces_.get(), policies_.get(), dns_.get()}) i->Start();
  thread_ = std::thread([this] { Run(); });
}

void PolicyController::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto* i : {pods_.get(), namespaces_.get(), policies_.get(), dns_.get()})
    if (i) i->Stop();
}

void PolicyController::OnPod(const json::value* old, const json::value& pod, bool deleted) {
  std::optional<policy::Pod> was = old ? policy::PodOf(*old, options_.node_name) : std::nullopt;
  std::optional<policy::Pod> is = deleted ? std::nullopt : policy::PodOf(pod, options_.node_name);
  if (deleted) was = policy::PodOf(pod, options_.node_name);
  if (old && !deleted && was == is) return;  // A status change policy does not see.
  std::string key = api::KeyOf(pod);
  {
    std::lock_guard lock(mu_);
    if (is) {
      cluster_.pods[key] = *is;
    } else if (cluster_.pods.erase(key) == 0 && !was) {
      return;
    }
    dirty_namespaces_.insert(std::string(api::GetString(pod, {"metadata", "namespace"})));
    if ((is && is->local) || (was && was->local)) local_pods_changed_ = true;
  }
  cv_.notify_all();
}

void PolicyController::OnNamespace(const json::value* old, const json::value& ns, bool deleted) {
  api::Labels labels = api::GetLabels(ns);
  if (old && !deleted && api::GetLabels(*old) == labels) return;
  {
    std::lock_guard lock(mu_);
    std::string name(api::GetString(ns, {"metadata", "name"}));
    if (deleted) {
      cluster_.namespaces.erase(name);
    } else {
      cluster_.namespaces[name] = std::move(labels);
    }
    namespaces_changed_ = true;
  }
  cv_.notify_all();
}

void PolicyController::OnPolicy(const json::value& p, bool deleted) {
  std::string key = api::KeyOf(p);
  {
    std::lock_guard lock(mu_);
    if (deleted) {
      policy_objects_.erase(key);
    } else {
      policy_objects_[key] = p;
    }
    dirty_policies_.insert(key);
  }
  cv_.notify_all();
}

void PolicyController::OnDns(const json::value& endpoints, bool deleted) {
  std::lock_guard lock(mu_);
  for (auto it = cluster_.pods.lower_bound(kDnsPrefix);
       it != cluster_.pods.end() && it->first.starts_with(kDnsPrefix);)
    it = cluster_.pods.erase(it);
  if (!deleted) {
    for (const auto& subset : api::GetArray(endpoints, {"subsets"})) {
      policy::Pod dns;
      dns.ns = "kube-system";
      dns.labels = api::GetLabels(endpoints);
      for (const auto& p : api::GetArray(subset, {"ports"})) {
        auto protocol = policy::ParseProtocol(api::GetString(p, {"protocol"}));
        int64_t port = api::GetInt(p, {"port"});
        if (!protocol || port <= 0 || port > 65535) continue;
        dns.ports[std::string(api::GetString(p, {"name"}))] = {*protocol,
                                                               static_cast<uint16_t>(port)};
        dns.aliases[53] = static_cast<uint16_t>(port);
      }
      for (const auto& a : api::GetArray(subset, {"addresses"})) {
        auto ip = policy::ParseIp(api::GetString(a, {"ip"}));
        if (!ip.ok()) continue;
        dns.ip = *ip;
        cluster_.pods[fmt::format("{}{}", kDnsPrefix, api::GetString(a, {"ip"}))] = dns;
      }
    }
  }
  dirty_namespaces_.insert("kube-system");
  namespaces_changed_ = true;  // The endpoint is a peer of namespaceSelector rules.
  cv_.notify_all();
}

std::set<std::string> PolicyController::Affected() {
  std::set<std::string> out = std::move(dirty_policies_);
  dirty_policies_.clear();
  if (dirty_namespaces_.empty() && !namespaces_changed_) return out;
  for (const auto& [key, p] : policy_objects_) {
    if (out.count(key)) continue;
    auto ns = api::SplitKey(key).first;
    if (dirty_namespaces_.count(ns) ||
        ((namespaces_changed_ || !dirty_namespaces_.empty()) && ReachesOtherNamespaces(p)))
      out.insert(key);
  }
  dirty_namespaces_.clear();
  namespaces_changed_ = false;
  return out;
}

void PolicyController::CutFlows(const policy::Model& model) {
  std::set<uint32_t> node;
  for (const auto& a : HostAddresses()) {
    if (auto ip = policy::ParseIp(a); ip.ok()) node.insert(*ip);
  }
  // Only flows from or to an isolated pod can have lost their allowance; an
  // ended TCP connection has nothing left to cut.
  const std::set<uint32_t> ingress = policy::Isolated(model, true);
  const std::set<uint32_t> egress = policy::Isolated(model, false);
  auto cut = network::proxy::DeleteFlows([&](const network::proxy::Flow& f) {
    if (f.closed || (!egress.count(f.src) && !ingress.count(f.reply_src))) return false;
    return !policy::Allowed(model, f.src, f.reply_src, f.protocol, f.reply_sport,
                            node.count(f.src) > 0);
  });
  if (!cut.ok()) {
    spdlog::warn("network policy: established flows stay: {}", cut.status().ToString());
  } else if (*cut > 0) {
    spdlog::info("network policy: {} established flows no longer allowed were cut", *cut);
  }
}

void PolicyController::Run() {
  // Everything once the caches are complete: a partial one would isolate
  // pods with half their allowances.
  for (auto* i : {pods_.get(), namespaces_.get(), policies_.get(), dns_.get()}) {
    while (!i->WaitForSync(std::chrono::steady_clock::now() + std::chrono::milliseconds(200))) {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
  }
  bool full = true;
  while (true) {
    policy::Model next;
    std::set<std::string> changed;
    bool refresh = false;
    std::chrono::steady_clock::time_point began;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] {
        return stop_ || full || !dirty_policies_.empty() || !dirty_namespaces_.empty() ||
               namespaces_changed_ || local_pods_changed_;
      });
      if (stop_) return;
      began = std::chrono::steady_clock::now();
      refresh = std::exchange(local_pods_changed_, false);
      changed = Affected();
      if (full) {  // Everything is compiled now.
        for (const auto& [key, p] : policy_objects_) changed.insert(key);
        next.clear();
      } else {
        next = applied_;
      }
      for (const auto& key : changed) {
        auto it = policy_objects_.find(key);
        if (it == policy_objects_.end()) {
          next.erase(key);
          continue;
        }
        auto compiled = policy::Compile(it->second, cluster_);
        if (!compiled.ok()) {
          spdlog::warn("network policy {}: not enforced: {}", key, compiled.status().ToString());
          next.erase(key);
          continue;
        }
        next[key] = std::move(*compiled);
      }
    }
    if (!full) {
      std::set<std::string> differ;
      for (const auto& key : changed) {
        auto a = applied_.find(key);
        auto b = next.find(key);
        if ((a == applied_.end()) != (b == next.end()) ||
            (a != applied_.end() && !(a->second == b->second)))
          differ.insert(key);
      }
      if (differ.empty()) {
        if (refresh) {
          if (Status s = enforcer_->Refresh(); !s.ok())
            spdlog::warn("network policy ({}): {}", enforcer_->name(), s.ToString());
          generation_.fetch_add(1);
        }
        continue;
      }
      changed = std::move(differ);
    }
    auto start = std::chrono::steady_clock::now();
    Status s = full ? enforcer_->Full(next) : enforcer_->Update(applied_, next, changed);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (!s.ok()) {
      spdlog::error("network policy ({}): programming {} policies failed: {}; starting over",
                    enforcer_->name(), changed.size(), s.ToString());
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
      full = true;
      continue;
    }
    if (full)
      spdlog::info("network policy ({}): {} policies in force", enforcer_->name(), next.size());
    applied_ = std::move(next);
    full = false;
    auto cut_start = std::chrono::steady_clock::now();
    CutFlows(applied_);
    generation_.fetch_add(1);
    auto ms = [](auto d) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    auto done = std::chrono::steady_clock::now();
    if (done - began > std::chrono::milliseconds(100)) {
      spdlog::info(
          "network policy ({}): {} policies took {} ms: {} ms to compile, {} ms to program, {} "
          "ms to cut flows",
          enforcer_->name(), changed.size(), ms(done - began), ms(start - began), took.count(),
          ms(done - cut_start));
    }
  }
}

}  // namespace kiso::agent
