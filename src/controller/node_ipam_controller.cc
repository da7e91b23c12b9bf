#include "controller/node_ipam_controller.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }

std::string_view PodCidrOf(const json::value& node) {
  return api::GetString(node, {"spec", "podCIDR"});
}

Ipv4Cidr ClusterOf(const NodeIpamOptions& o) {
  auto parsed = Ipv4Cidr::Parse(o.cluster_cidr);
  return parsed.ok() ? *parsed : Ipv4Cidr{0, o.node_cidr_mask_size};  // Validated before.
}

}  // namespace

Status ValidateNodeIpamOptions(const NodeIpamOptions& o) {
  auto cluster = Ipv4Cidr::Parse(o.cluster_cidr);
  if (!cluster.ok()) {
    return MakeStatus(Code::kInvalidArgument, "--cluster-cidr: {}", cluster.status().message());
  }
  if (o.node_cidr_mask_size < cluster->prefix || o.node_cidr_mask_size > 30) {
    return MakeStatus(Code::kInvalidArgument,
                      "--node-cidr-mask-size {} must be between the cluster CIDR's prefix ({}) "
                      "and 30",
                      o.node_cidr_mask_size, cluster->prefix);
  }
  if (o.node_cidr_mask_size - cluster->prefix > 16) {
    return MakeStatus(Code::kInvalidArgument,
                      "--node-cidr-mask-size {} is more than 16 bits longer than --cluster-cidr "
                      "{} (at most 65,536 node ranges)",
                      o.node_cidr_mask_size, o.cluster_cidr);
  }
  return Status::Ok();
}

NodeIpamController::NodeIpamController(client::Client* client, const NodeIpamOptions& options,
                                       client::SharedInformers* shared)
    : Controller(client, "node-ipam-controller", 1, shared),
      cluster_(ClusterOf(options)),
      mask_(options.node_cidr_mask_size) {
  owner_.resize(size_t{1} << (mask_ - cluster_.prefix));
  nodes_ = Watch(Nodes(), [this](const json::value* old, const json::value& obj, bool deleted) {
    // What a node's block depends on: it being there, and its spec.podCIDR.
    if (deleted || !old || PodCidrOf(*old) != PodCidrOf(obj))
      Enqueue(std::string(api::GetString(obj, {"metadata", "name"})));
  });
}

std::string NodeIpamController::BlockText(uint32_t index) const {
  return fmt::format("{}/{}", FormatIpv4(cluster_.base + (index << (32 - mask_))), mask_);
}

bool NodeIpamController::Take(const std::string& node, std::string_view cidr) {
  auto block = Ipv4Cidr::Parse(cidr);
  if (!block.ok() || block->prefix != mask_ || !cluster_.Contains(block->base)) return false;
  uint32_t index = (block->base - cluster_.base) >> (32 - mask_);
  if (auto it = block_of_.find(node); it != block_of_.end() && it->second != index) Free(node);
  if (!owner_[index].empty() && owner_[index] != node) {
    // Two Nodes claim one block (a --pod-cidr given twice): the API keeps both; say so.
    spdlog::warn("node IPAM: nodes {} and {} both have pod range {}", owner_[index], node, cidr);
    return true;
  }
  owner_[index] = node;
  block_of_[node] = index;
  return true;
}

void NodeIpamController::Free(const std::string& node) {
  auto it = block_of_.find(node);
  if (it == block_of_.end()) return;
  if (owner_[it->second] == node) owner_[it->second].clear();
  block_of_.erase(it);
}

Status NodeIpamController::Reconcile(const std::string& name) {
  if (!marked_) {
    // Every block in use, before the first is given (a new leader starts here).
    for (const auto& n : nodes_->Items()) {
      std::string_view cidr = PodCidrOf(*n);
      if (!cidr.empty()) Take(std::string(api::GetString(*n, {"metadata", "name"})), cidr);
    }
    marked_ = true;
  }
  auto node = nodes_->Get("", name);
  if (!node) {
    const bool had = block_of_.count(name) > 0;
    Free(name);
    if (had) {
      // A block is free again: Nodes that found none may have it.
      for (const auto& n : nodes_->Items()) {
        if (PodCidrOf(*n).empty()) Enqueue(std::string(api::GetString(*n, {"metadata", "name"})));
      }
    }
    return Status::Ok();
  }
  if (std::string_view cidr = PodCidrOf(*node); !cidr.empty()) {
    Take(name, cidr);
    return Status::Ok();
  }
  // A block for it: the one it was given (its write not in the cache yet), or the next free one.
  uint32_t index = 0;
  if (auto it = block_of_.find(name); it != block_of_.end()) {
    index = it->second;
  } else {
    const auto blocks = static_cast<uint32_t>(owner_.size());
    uint32_t i = 0;
    while (i < blocks && !owner_[(next_ + i) % blocks].empty()) ++i;
    if (i == blocks) {
      RecordEvent(*node, "Normal", "CIDRNotAvailable",
                  fmt::format("Node {} status is now: CIDRNotAvailable (all {} ranges of {} are "
                              "taken)",
                              name, blocks, cluster_.ToString()));
      return Status::Ok();  // Requeued when a Node goes.
    }
    index = (next_ + i) % blocks;
    next_ = (index + 1) % blocks;
    owner_[index] = name;
    block_of_[name] = index;
  }
  const std::string cidr = BlockText(index);
  Status s = UpdateFresh(Nodes(), *node, [&](json::value& n) {
    auto& spec = n.as_object()["spec"];
    if (!spec.is_object()) spec = json::object();
    if (!api::GetString(n, {"spec", "podCIDR"}).empty()) return;  // Someone gave it one.
    spec.as_object()["podCIDR"] = cidr;
    spec.as_object()["podCIDRs"] = json::array{json::value(cidr)};
  });
  if (!s.ok()) {
    Free(name);  // Retried: the next try takes whatever the Node has by then.
    return s;
  }
  spdlog::info("node IPAM: node {} gets pod range {}", name, cidr);
  return Status::Ok();
}

}  // namespace kiso::controller
