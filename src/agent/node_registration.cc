#include "agent/node_registration.h"

#include <boost/json.hpp>
#include <tuple>

#include "api/object.h"
#include "common/clock.h"

namespace kiso::agent {

namespace json = boost::json;

namespace {

const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }
const api::ResourceType& Leases() {
  return *api::FindResource("coordination.k8s.io", "v1", "leases");
}

}  // namespace

namespace {

// What a healthy node says of itself.
json::array HealthyConditions(const std::string& message) {
  std::string now = api::NowRfc3339();
  json::array conditions;
  for (auto [type, status, reason] :
       {std::tuple{"MemoryPressure", "False", "KubeletHasSufficientMemory"},
        std::tuple{"DiskPressure", "False", "KubeletHasNoDiskPressure"},
        std::tuple{"PIDPressure", "False", "KubeletHasSufficientPID"},
        std::tuple{"Ready", "True", "KubeletReady"}}) {
    conditions.push_back(json::object{{"type", type},
                                      {"status", status},
                                      {"lastHeartbeatTime", now},
                                      {"lastTransitionTime", now},
                                      {"reason", reason},
                                      {"message", message}});
  }
  return conditions;
}

}  // namespace

Status ReassertNodeReady(client::Client* client, const std::string& name,
                         const std::string& message) {
  auto node = client->Get(Nodes(), "", name);
  if (!node.ok()) return node.status();
  const auto* conditions = api::Find(*node, {"status", "conditions"});
  if (conditions && conditions->is_array()) {
    for (const auto& c : conditions->get_array()) {
      if (api::GetString(c, {"type"}) == "Ready" && api::GetString(c, {"status"}) == "True")
        return Status::Ok();
    }
  }
  json::value updated = *node;
  api::Child(updated.as_object(), "status")["conditions"] = HealthyConditions(message);
  auto res = client->Update(Nodes(), "", updated, "status");
  return res.ok() ? Status::Ok() : res.status();
}

Status RegisterNode(client::Client* client, const NodeDescription& d,
                    std::chrono::seconds lease_duration) {
  json::object resources;
  for (const auto& [k, v] : d.capacity) resources[k] = v;
  json::array conditions = HealthyConditions(d.message);
  json::object labels{{"kubernetes.io/hostname", d.name},
                      {"kubernetes.io/os", "linux"},
                      {"kubernetes.io/arch", "amd64"}};
  for (const auto& [k, v] : d.labels) labels[k] = v;
  json::array addresses{json::object{{"type", "Hostname"}, {"address", d.name}}};
  if (!d.internal_ip.empty()) {
    addresses.insert(addresses.begin(),
                     json::object{{"type", "InternalIP"}, {"address", d.internal_ip}});
  }
  json::object spec;
  if (!d.pod_cidr.empty()) {
    spec["podCIDR"] = d.pod_cidr;
    spec["podCIDRs"] = json::array{json::value(d.pod_cidr)};
  }
  json::value node = json::object{
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", json::object{{"name", d.name}, {"labels", std::move(labels)}}},
      {"spec", std::move(spec)},
      {"status",
       json::object{{"capacity", resources},
                    {"allocatable", resources},
                    {"conditions", std::move(conditions)},
                    {"addresses", std::move(addresses)},
                    {"nodeInfo", json::object{{"machineID", d.name},
                                              {"systemUUID", d.name},
                                              {"bootID", d.name},
                                              {"kernelVersion", d.kernel_version},
                                              {"osImage", d.os_image},
                                              {"containerRuntimeVersion", d.runtime_version},
                                              {"kubeletVersion", d.kubelet_version},
                                              {"kubeProxyVersion", ""},
                                              {"operatingSystem", "linux"},
                                              {"architecture", "amd64"}}},
                    {"runtimeHandlers", RuntimeHandlers(d)}}}};
  auto created = client->Create(Nodes(), "", node);
  if (!created.ok() && created.status().code() != Code::kAlreadyExists) return created.status();
  // Status is a subresource: the create dropped it; write it (also for an existing node).
  // Others write the new Node meanwhile (the node IPAM controller its range): a
  // conflict is read again and retried.
  for (int attempt = 0;; ++attempt) {
    auto current = client->Get(Nodes(), "", d.name);
    if (!current.ok()) return current.status();
    json::value updated = *current;
    updated.as_object()["status"] = node.at("status");
    auto res = client->Update(Nodes(), "", updated, "status");
    if (res.ok()) break;
    if (res.status().code() != Code::kConflict || attempt == 9) return res.status();
  }
  return RenewNodeLease(client, d.name, lease_duration);
}

std::string RuntimeHandlerOf(std::string_view runtime_version) {
  return std::string(runtime_version.substr(0, runtime_version.find("://")));
}

json::array RuntimeHandlers(const NodeDescription& node) {
  json::object features{{"recursiveReadOnlyMounts", false}, {"userNamespaces", false}};
  json::array out{json::object{{"name", ""}, {"features", features}}};
  std::vector<std::string> handlers = node.runtime_handlers;
  if (handlers.empty()) handlers.push_back(RuntimeHandlerOf(node.runtime_version));
  for (const auto& h : handlers) {
    if (!h.empty()) out.push_back(json::object{{"name", h}, {"features", features}});
  }
  return out;
}

Status RenewNodeLease(client::Client* client, const std::string& name,
                      std::chrono::seconds lease_duration) {
  json::value patch =
      json::object{{"apiVersion", "coordination.k8s.io/v1"},
                   {"kind", "Lease"},
                   {"metadata", json::object{{"name", name}, {"namespace", "kube-node-lease"}}},
                   {"spec", json::object{{"holderIdentity", name},
                                         {"leaseDurationSeconds", lease_duration.count()},
                                         {"renewTime", NowRfc3339Micro()}}}};
  auto res = client->Patch(Leases(), "kube-node-lease", name, client::PatchType::kApply, patch);
  return res.ok() ? Status::Ok() : res.status();
}

}  // namespace kiso::agent
