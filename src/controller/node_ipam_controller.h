// NodeIpamController: kube-controller-manager's node IPAM with the range
// allocator (--allocate-node-cidrs): each Node without spec.podCIDR gets a
// free block of --node-cidr-mask-size bits (a /24) from --cluster-cidr
// (10.42.0.0/16, as K3s and flannel), and its node agent builds the pod
// bridge from it. Blocks are handed out round-robin from the last one given
// (a block just freed is not reused at once, as upstream's CidrSet), a
// deleted Node's block is freed, a Node that came with a podCIDR of its own
// (`--pod-cidr`) keeps it and its block is taken. When none is free, the
// Node gets a CIDRNotAvailable event and waits for one to be freed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/cidr.h"
#include "controller/controller.h"

namespace kiso::controller {

struct NodeIpamOptions {
  std::string cluster_cidr = "10.42.0.0/16";
  int node_cidr_mask_size = 24;
};

// The options' error, as upstream's: the cluster range a valid IPv4 CIDR, the
// node mask within it (no more than 16 bits longer: 65,536 blocks at most).
Status ValidateNodeIpamOptions(const NodeIpamOptions& options);

class NodeIpamController : public Controller {
 public:
  // REQUIRES: ValidateNodeIpamOptions(options) is ok.
  NodeIpamController(client::Client* client, const NodeIpamOptions& options,
                     client::SharedInformers* shared = nullptr);
  ~NodeIpamController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  // Takes the block `cidr` names for `node`; false when it is not one of the
  // cluster's blocks (a --pod-cidr outside --cluster-cidr is the node's own affair).
  bool Take(const std::string& node, std::string_view cidr);
  void Free(const std::string& node);
  std::string BlockText(uint32_t index) const;

  Ipv4Cidr cluster_;
  int mask_ = 24;
  client::Informer* nodes_ = nullptr;
  // Only Reconcile touches what follows (one worker).
  bool marked_ = false;             // The cache's Nodes' blocks taken (before any is given).
  std::vector<std::string> owner_;  // Block index → the Node holding it, "" when free.
  std::map<std::string, uint32_t> block_of_;  // Node → its block index.
  uint32_t next_ = 0;                         // Where the next search starts.
};

}  // namespace kiso::controller
