// CniNetwork: pod networking through CNI 1.0 plugins (Debian's
// containernetworking-plugins): the configured list (bridge with host-local
// IPAM, portmap for hostPorts) for "eth0", in a namespace whose "lo" the
// runtime's sandbox has brought up already. Each ADD's result is cached on
// disk so DEL gets its prevResult and so leftovers can be released after a
// crash (CNI spec: "cached result").
//
// In kiso's own list the bridge plugin's work is done in the agent
// (BridgeNetwork, bridge.h: rtnetlink, no process per pod); portmap still runs
// as the plugin, for pods with host ports. Someone else's list runs as it is.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiso::network {

class BridgeNetwork;

struct PortMapping {
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";
};

struct Attachment {
  std::string ip;       // "10.42.0.5"
  std::string gateway;  // "10.42.0.1"
};

struct CniOptions {
  std::string conflist;  // A .conflist file; kiso's own (named "kiso") is written from pod_cidr.
  // Empty: not known yet (SetPodCidr gives it; until then Add is Unavailable).
  std::string pod_cidr = "10.42.0.0/24";
  std::string bridge = "kiso0";
  int mtu = 0;  // The bridge's and pods' MTU (the pod network's); 0: the plugin's default.
  std::string cache_dir;  // Cached results and host-local's allocations.
  std::vector<std::string> plugin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};
};

class CniNetwork {
 public:
  static Result<std::unique_ptr<CniNetwork>> Create(CniOptions options);

  // The node's pod range, for kiso's own list (written then); someone else's
  // list is left as it is. Idempotent.
  Status SetPodCidr(const std::string& pod_cidr);
  // Whether the list is known (kiso's needs the pod range).
  bool configured() const;

  // Attaches the sandbox's network namespace; returns its address.
  Result<Attachment> Add(const std::string& sandbox_id, const std::string& netns,
                         const std::vector<PortMapping>& ports = {});
  // Detaches it and releases its address. Idempotent; a netns that is already
  // gone still has its address released.
  Status Del(const std::string& sandbox_id, const std::string& netns);
  // The address of an attachment made earlier (after an agent restart).
  Result<Attachment> Cached(const std::string& sandbox_id) const;
  // Sandbox IDs with a cached attachment (for cleanup after a crash).
  std::vector<std::string> Attached() const;
  const std::string& name() const { return name_; }

  // What `kiso node reset` does to one node's network: every cached
  // attachment detached (CNI DEL: addresses released, host ports unmapped),
  // the bridge deleted and the CNI state (cached results, IPAM) removed.
  // Appends what it removed, and what it could not, to the lists.
  static void Reset(const CniOptions& options, std::vector<std::string>* removed,
                    std::vector<std::string>* failed);
  // Deletes the network interface `name` (a bridge, with what is enslaved
  // to it detached). NotFound when there is none.
  static Status DeleteLink(const std::string& name);
  // The iptables rules and chains the CNI plugins made (CNI-*: portmap's host
  // ports, masquerading), for when no node of this machine needs them.
  static void RemoveRules(std::vector<std::string>* removed, std::vector<std::string>* failed);

 private:
  explicit CniNetwork(CniOptions options) : options_(std::move(options)) {}
  std::string FindPlugin(const std::string& type) const;
  Result<std::string> ConflistText() const;  // Unavailable until the range is known.

  CniOptions options_;
  std::string name_;
  bool ours_ = false;
  mutable std::mutex mu_;
  std::string conflist_text_;  // Guarded by mu_; empty until the pod range is known.
  // Guarded by mu_: kiso's list's bridge for the current range (null until it
  // is known, and for someone else's list); shared by the calls using it.
  std::shared_ptr<BridgeNetwork> bridge_;
};

}  // namespace kiso::network
