// PolicyController: the NetworkPolicy part of every node agent (K3s' embedded
// kube-router policy controller's role). It watches NetworkPolicies, pods and
// namespaces (and the cluster DNS's Endpoints, a peer that is not a pod),
// compiles the policies for this node's pods (network/policy/model.h) and
// keeps the chosen enforcer (nftables or eBPF, network/policy/enforcer.h)
// programming them: all of it once the caches have synced, then one change
// per batch of events, recompiling only the policies an event can concern. A
// change that takes an allowance away also cuts the established flows it no
// longer allows (their conntrack entries go, as upstream's implementations
// do). Stop() leaves the programming in place (a restarted agent takes it
// over; `kiso node reset` removes it).
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "client/client.h"
#include "client/informer.h"
#include "network/policy/enforcer.h"
#include "network/policy/model.h"

namespace kiso::agent {

struct PolicyControllerOptions {
  std::string node_name;
  std::string enforcer = "nftables";  // network::policy::kEnforcers.
  network::policy::EnforcerOptions enforcement;
};

class PolicyController {
 public:
  // Fails for an unknown enforcer or one the kernel cannot run.
  static Result<std::unique_ptr<PolicyController>> Create(client::Client* client,
                                                          PolicyControllerOptions options);
  ~PolicyController();
  PolicyController(const PolicyController&) = delete;
  PolicyController& operator=(const PolicyController&) = delete;

  void Start();
  void Stop();
  // Changes programmed so far (tests and benchmarks wait on it).
  uint64_t generation() const { return generation_.load(); }

 private:
  PolicyController(client::Client* client, PolicyControllerOptions options,
                   std::unique_ptr<network::policy::Enforcer> enforcer);
  void OnPod(const boost::json::value* old, const boost::json::value& pod, bool deleted);
  void OnNamespace(const boost::json::value* old, const boost::json::value& ns, bool deleted);
  void OnPolicy(const boost::json::value& policy, bool deleted);
  void OnDns(const boost::json::value& endpoints, bool deleted);
  void Run();
  // The policies to recompile for what changed since the last batch (under mu_).
  std::set<std::string> Affected();
  // Deletes conntrack entries of flows `model` no longer allows.
  void CutFlows(const network::policy::Model& model);

  client::Client* client_;
  PolicyControllerOptions options_;
  std::unique_ptr<network::policy::Enforcer> enforcer_;
  std::unique_ptr<client::Informer> pods_, namespaces_, policies_, dns_;

  std::mutex mu_;
  std::condition_variable cv_;
  network::policy::Cluster cluster_;                          // guarded by mu_
  std::map<std::string, boost::json::value> policy_objects_;  // guarded by mu_
  std::set<std::string> dirty_policies_;                      // guarded by mu_
  std::set<std::string> dirty_namespaces_;  // Pods changed in them. guarded by mu_
  bool namespaces_changed_ = false;         // guarded by mu_
  bool local_pods_changed_ = false;         // guarded by mu_
  bool stop_ = false;                       // guarded by mu_
  std::thread thread_;
  std::atomic<uint64_t> generation_{0};

  // The sync thread's own: what the enforcer holds.
  network::policy::Model applied_;
};

}  // namespace kiso::agent
