#include "agent/pod_network.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::agent {

namespace json = boost::json;

namespace {
const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }
}  // namespace

PodNetworkController::PodNetworkController(client::Client* client, std::string node_name,
                                           network::overlay::OverlayOptions options)
    : client_(client), node_name_(std::move(node_name)), options_(std::move(options)) {
  nodes_ = std::make_unique<client::Informer>(
      client_, &Nodes(), [this](const json::value*, const json::value&, bool) { Resync(); });
}

PodNetworkController::~PodNetworkController() { Stop(); }

void PodNetworkController::Start() { nodes_->Start(); }
void PodNetworkController::Stop() { nodes_->Stop(); }

void PodNetworkController::Resync() {
  std::lock_guard lock(mu_);
  auto own = nodes_->Get("", node_name_);
  if (!own) return;
  if (!backend_) {
    std::string range(api::GetString(*own, {"spec", "podCIDR"}));
    if (range.empty()) return;  // It comes from the node IPAM controller.
    auto options = options_;
    options.pod_cidr = range;
    auto created = network::overlay::CreateOverlay(options);
    if (!created.ok()) {
      spdlog::error("pod network: {}", created.status().ToString());
      return;
    }
    backend_ = std::move(*created);
    spdlog::info("pod network: {} backend, node {} range {} at {}", backend_->name(), node_name_,
                 range, options.public_ip);
  }
  // What the others need of this node, on its Node.
  json::object want;
  for (const auto& [k, v] : backend_->Annotations()) {
    if (api::GetString(*own, {"metadata", "annotations", k}) != v) want[k] = v;
  }
  if (!want.empty()) {
    json::value patch = json::object{{"metadata", json::object{{"annotations", want}}}};
    auto res = client_->Patch(Nodes(), "", node_name_, client::PatchType::kMerge, patch);
    if (!res.ok())
      spdlog::warn("pod network: annotate node {}: {}", node_name_, res.status().ToString());
  }
  std::vector<network::overlay::RemoteNode> remotes;
  for (const auto& n : nodes_->Items()) {
    std::string name(api::GetString(*n, {"metadata", "name"}));
    if (name == node_name_) continue;
    network::overlay::RemoteNode r{name, std::string(api::GetString(*n, {"spec", "podCIDR"})), {}};
    if (const auto* a = api::Find(*n, {"metadata", "annotations"}); a && a->is_object()) {
      for (const auto& [k, v] : a->get_object()) {
        if (v.is_string()) r.annotations[std::string(k)] = std::string(v.get_string());
      }
    }
    remotes.push_back(std::move(r));
  }
  Status s = backend_->Sync(remotes);
  std::string error = s.ok() ? "" : s.ToString();
  if (error != last_error_) {
    if (s.ok()) {
      spdlog::info("pod network: routes to every other node's pods in place");
    } else {
      spdlog::warn("pod network: {}", error);
    }
    last_error_ = error;
  }
}

}  // namespace kiso::agent
