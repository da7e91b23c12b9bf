// Enforcer: the kernel side of NetworkPolicy — one node's compiled model
// (model.h) made into verdicts on its pods' packets. Two implementations,
// as Calico and Cilium are two: `nftables` (a table of its own: sets of
// addresses per rule, a chain per policy and per isolated pod, changed
// incrementally) and `ebpf` (tc programs on the pods' bridge ports and the
// bridge, deciding from BPF maps). Both decide a packet after Service
// translation (the destination is the pod, not the cluster IP), let replies
// of allowed flows pass by the kernel's conntrack, allow the node's own
// traffic to its pods, and refuse with a reset or ICMP "administratively
// prohibited" so that a forbidden connection fails at once.
//
// Not thread-safe: one caller at a time (the policy controller's thread).
// Programming survives the enforcer and the process (a restarted agent
// takes it over with Full()); Remove() takes it all away.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"
#include "network/policy/model.h"

namespace kiso::network::policy {

struct EnforcerOptions {
  std::string bridge = "kiso0";  // The node's pods hang off it.
};

class Enforcer {
 public:
  virtual ~Enforcer() = default;
  virtual std::string_view name() const = 0;
  // Programs `model`, replacing whatever kiso programmed before (also that
  // of an earlier process) in one step.
  virtual Status Full(const Model& model) = 0;
  // Takes the kernel from `from` (what it holds) to `to`, where only the
  // policies named in `changed` differ; work in proportion to the change.
  virtual Status Update(const Model& from, const Model& to,
                        const std::set<std::string>& changed) = 0;
  // The node's pods came or went (the eBPF enforcer attaches to new bridge ports).
  virtual Status Refresh() { return Status::Ok(); }
  // Removes everything the enforcer (or an earlier one) programmed.
  virtual Status Remove() = 0;
};

// "nftables" or "ebpf"; InvalidArgument naming the choices for another name,
// the cause when the kernel lacks what it needs.
Result<std::unique_ptr<Enforcer>> NewEnforcer(std::string_view name,
                                              const EnforcerOptions& options);

// The names NewEnforcer() accepts.
inline constexpr std::string_view kEnforcers[] = {"nftables", "ebpf"};

// Removes every enforcer's programming for `bridge` (kiso node reset), or
// every one's but `keep`'s (a node started with another choice than before).
Status RemoveAll(const EnforcerOptions& options, std::string_view keep = "");

}  // namespace kiso::network::policy
