#include "agent/node.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "agent/node_reset.h"
#include "common/host_addresses.h"
#include "network/rtnl.h"

namespace kiso::agent {

Result<std::unique_ptr<EmbeddedNode>> EmbeddedNode::Create(client::Client* client,
                                                           const NodeOptions& options) {
  if (geteuid() != 0) {
    return Status(Code::kUnavailable,
                  "the node agent needs root (namespaces, cgroups, mounts); run as root or pass "
                  "--disable-agent");
  }
  std::unique_ptr<EmbeddedNode> node(new EmbeddedNode());
  const std::string& dir = options.agent.data_dir;
  std::string images_dir = options.images_dir.empty() ? dir + "/../images" : options.images_dir;
  KISO_ASSIGN_OR_RETURN(node->images_,
                        image::LocalImageService::Open(images_dir, options.registries));
  runtime::OciRuntimeOptions rt;
  rt.root = dir + "/runtime";
  rt.runtime = options.runtime;
  rt.extra_handlers = options.runtime_handlers;
  rt.shim_binary = options.shim_binary;
  rt.wasm_binary = options.wasm_binary;
  KISO_ASSIGN_OR_RETURN(node->runtime_, runtime::OciRuntime::Create(rt));
  // The pod network across nodes: its backend decides the pods' MTU.
  const std::string node_ip =
      options.agent.internal_ip.empty() ? PrimaryIpv4() : options.agent.internal_ip;
  int pod_mtu = 0;
  if (options.network_backend != "none") {
    int underlay = 1500;
    if (auto device = network::DeviceOf(node_ip); device.ok()) underlay = device->second;
    pod_mtu = options.network_backend == "vxlan" ? underlay - 50 : underlay;
  }
  network::CniOptions cni;
  cni.mtu = pod_mtu;
  cni.conflist = dir + "/cni/10-kiso.conflist";
  cni.pod_cidr = options.agent.pod_cidr;
  cni.bridge = options.cni_bridge;
  cni.cache_dir = dir + "/cni";
  KISO_ASSIGN_OR_RETURN(node->network_, network::CniNetwork::Create(cni));
  // From here on this machine holds the node's state: `kiso node reset` finds it by this record.
  KISO_RETURN_IF_ERROR(WriteNodeRecord({dir, options.cni_bridge, options.runtime, getpid()}));
  node->agent_ = std::make_unique<Agent>(client, options.agent, node->runtime_.get(),
                                         node->images_.get(), node->network_.get());
  ServiceProxyOptions proxy;
  proxy.node_name = node->agent_->node_name();
  proxy.rules.table = network::proxy::TableFor(options.cni_bridge);
  proxy.rules.bridge = options.cni_bridge;
  // This node's pods are what it masquerades on their way out: the range it was
  // given explicitly, else the cluster's (its range, given by the server, is in it).
  proxy.rules.pod_cidr =
      options.agent.pod_cidr.empty() ? options.cluster_cidr : options.agent.pod_cidr;
  proxy.rules.cluster_cidr = options.cluster_cidr;
  node->proxy_ = std::make_unique<ServiceProxy>(client, proxy);
  network::policy::EnforcerOptions enforcement{options.cni_bridge};
  if (options.network_policy != "none") {
    KISO_ASSIGN_OR_RETURN(node->policy_,
                          PolicyController::Create(client, {node->agent_->node_name(),
                                                            options.network_policy, enforcement}));
  }
  // An earlier run's other choice would go on deciding beside this one's.
  if (Status s = network::policy::RemoveAll(enforcement, options.network_policy); !s.ok())
    spdlog::warn("network policy: what an earlier run programmed stays: {}", s.ToString());
  if (options.network_backend != "none") {
    network::overlay::OverlayOptions overlay;
    overlay.backend = options.network_backend;
    overlay.public_ip = node_ip;
    node->pod_network_ =
        std::make_unique<PodNetworkController>(client, node->agent_->node_name(), overlay);
  }
  if (!options.disable_ingress)
    node->ingress_ = std::make_unique<IngressController>(client, options.ingress);
  if (!options.disable_local_storage) {
    std::string storage =
        options.local_storage_path.empty() ? dir + "/storage" : options.local_storage_path;
    node->local_path_ =
        std::make_unique<LocalPathProvisioner>(client, node->agent_->node_name(), storage);
  }
  return node;
}

Status EmbeddedNode::Start() {
  KISO_RETURN_IF_ERROR(proxy_->Start());
  if (policy_) policy_->Start();
  if (ingress_) {
    // A node whose ports are taken still runs pods: the ingress is what is missing.
    if (Status s = ingress_->Start(); s.ok()) {
      spdlog::info("ingress controller: HTTP on port {}, HTTPS on port {}", ingress_->http_port(),
                   ingress_->https_port());
    } else {
      spdlog::error(
          "ingress controller not started: {} (--ingress-http-port and "
          "--ingress-https-port choose others, --disable-ingress turns it off)",
          s.message());
      ingress_.reset();
    }
  }
  if (local_path_) local_path_->Start();
  KISO_RETURN_IF_ERROR(agent_->Start());
  if (pod_network_) pod_network_->Start();
  return Status::Ok();
}

void EmbeddedNode::Stop() {
  if (pod_network_) pod_network_->Stop();
  agent_->Stop();
  if (local_path_) local_path_->Stop();
  if (ingress_) ingress_->Stop();
  if (policy_) policy_->Stop();
  proxy_->Stop();
}

}  // namespace kiso::agent
