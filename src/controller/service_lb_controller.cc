#include "controller/service_lb_controller.h"

#include <algorithm>
#include <boost/json.hpp>
#include <set>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Services() { return *api::FindResource("", "v1", "services"); }
const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }

bool Ready(const json::value& node) {
  for (const auto& c : api::GetArray(node, {"status", "conditions"})) {
    if (api::GetString(c, {"type"}) == "Ready") return api::GetString(c, {"status"}) == "True";
  }
  return false;
}

bool Ours(const json::value& svc) {
  return api::GetString(svc, {"spec", "type"}) == "LoadBalancer" &&
         api::GetString(svc, {"spec", "loadBalancerClass"}).empty();
}

}  // namespace

std::set<std::string> ReadyInternalIps(const std::vector<json::value>& nodes) {
  std::set<std::string> addresses;
  for (const auto& node : nodes) {
    if (!Ready(node)) continue;
    for (const auto& a : api::GetArray(node, {"status", "addresses"})) {
      if (api::GetString(a, {"type"}) == "InternalIP")
        addresses.insert(std::string(api::GetString(a, {"address"})));
    }
  }
  return addresses;
}

bool ChangesReadyIps(const json::value* old, const json::value& node, bool deleted) {
  if (!old || deleted || Ready(*old) != Ready(node)) return true;
  const json::value* was = api::Find(*old, {"status", "addresses"});
  const json::value* is = api::Find(node, {"status", "addresses"});
  return (was == nullptr) != (is == nullptr) || (was && *was != *is);  // Values, not pointers.
}

Status WriteLoadBalancerIngress(client::Client* client, const api::ResourceType& type,
                                const json::value& obj, json::array ingress) {
  json::value next = obj;
  auto& lb = api::Child(api::Child(next.as_object(), "status"), "loadBalancer");
  if (ingress.empty()) {
    lb.erase("ingress");
  } else {
    lb["ingress"] = std::move(ingress);
  }
  auto res = client->Update(type, api::GetString(obj, {"metadata", "namespace"}), next, "status");
  return res.ok() || res.status().code() == Code::kNotFound ? Status::Ok() : res.status();
}

ServiceLbController::ServiceLbController(client::Client* client, client::SharedInformers* shared)
    : Controller(client, "service-lb-controller", 1, shared) {
  services_ = Watch(Services(), [this](const json::value*, const json::value& svc, bool) {
    Enqueue(KeyOf(svc));
  });
  nodes_ = Watch(Nodes(), [this](const json::value* old, const json::value& node, bool deleted) {
    // Only a node's readiness or address changes what Services list.
    if (!ChangesReadyIps(old, node, deleted)) return;
    for (const auto& svc : services_->List()) {
      if (Ours(svc)) Enqueue(KeyOf(svc));
    }
  });
}

Status ServiceLbController::Reconcile(const std::string& key) {
  auto [ns, name] = SplitKey(key);
  auto svc = services_->Get(ns, name);
  if (!svc) return Status::Ok();
  const bool ours = Ours(*svc);
  const auto* have = api::Find(*svc, {"status", "loadBalancer", "ingress"});
  json::array want;
  if (ours) {
    for (const auto& ip : ReadyInternalIps(nodes_->List()))
      want.push_back(json::object{{"ip", ip}, {"ipMode", "VIP"}});
  } else if (!have || !have->is_array() || have->get_array().empty() ||
             !api::GetString(*svc, {"spec", "loadBalancerClass"}).empty()) {
    return Status::Ok();  // Not ours, and nothing of ours to clear.
  }
  if (have && have->is_array() && have->get_array() == want) return Status::Ok();
  if (!have && want.empty()) return Status::Ok();
  return WriteLoadBalancerIngress(client(), Services(), *svc, std::move(want));
}

}  // namespace kiso::controller
