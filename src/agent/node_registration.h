// What every node agent does to be a Node, real or hollow: register the Node
// object with its capacity, conditions and node info (status is a
// subresource, written after the create), and renew its Lease in
// kube-node-lease (the heartbeat the node lifecycle controller watches).
#pragma once

#include <boost/json/array.hpp>
#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"

namespace kiso::agent {

struct NodeDescription {
  std::string name;
  std::map<std::string, std::string> capacity;  // cpu, memory, pods, ephemeral-storage.
  std::map<std::string, std::string> labels;    // Beside hostname, os and arch.
  std::string internal_ip;                      // "" for none.
  std::string pod_cidr;
  std::string kernel_version = "hollow";
  std::string os_image = "hollow";
  std::string runtime_version = "hollow://0";
  // The RuntimeClass handlers it runs, the default's first; empty: the one
  // runtime_version names.
  std::vector<std::string> runtime_handlers;
  std::string kubelet_version = "v1.32.0-kiso";
  std::string message = "kiso node";  // The Ready condition's message.
};

// The RuntimeClass handler a runtime version ("runc://1.1.5") names: "runc".
std::string RuntimeHandlerOf(std::string_view runtime_version);
// The RuntimeClass handlers a node runs, as status.runtimeHandlers lists
// them: the default ("") and each handler by name.
boost::json::array RuntimeHandlers(const NodeDescription& node);

// The Lease's leaseDurationSeconds when none is given (the kubelet's
// nodeLeaseDurationSeconds); a node renews it every quarter of it.
inline constexpr std::chrono::seconds kDefaultNodeLeaseDuration{40};

// Creates or updates the Node and its status, then renews its Lease.
Status RegisterNode(client::Client* client, const NodeDescription& node,
                    std::chrono::seconds lease_duration);
Status RenewNodeLease(client::Client* client, const std::string& name,
                      std::chrono::seconds lease_duration);
// After a heartbeat: when the Node is not Ready (the node lifecycle controller
// marked it Unknown while its heartbeats did not arrive — a cut link, a
// stopped agent), the node says it is again, as the kubelet's status updates do.
Status ReassertNodeReady(client::Client* client, const std::string& name,
                         const std::string& message);

}  // namespace kiso::agent
