// EmbeddedNode: a whole node from one data directory — image store, OCI
// runtime with its shims, CNI network and the Agent over them — as `kiso
// server` runs it (and `--disable-agent` skips it).
#pragma once

#include <memory>
#include <string>

#include "agent/agent.h"
#include "agent/ingress_controller.h"
#include "agent/local_path_provisioner.h"
#include "agent/pod_network.h"
#include "agent/policy_controller.h"
#include "agent/service_proxy.h"
#include "image/image_service.h"
#include "network/cni.h"
#include "runtime/oci_runtime.h"

namespace kiso::agent {

struct NodeOptions {
  AgentOptions agent;            // agent.data_dir: where everything lives.
  std::string runtime = "runc";  // The default RuntimeClass handler's OCI runtime.
  // RuntimeClass handlers beside the default, each the OCI runtime of its
  // name, offered when installed (K3s likewise adds the runtimes it finds).
  std::vector<std::string> runtime_handlers = {"runc", "crun", "wasm"};
  std::string shim_binary;  // The kiso-shim executable.
  std::string wasm_binary;  // The kiso-wasm executable (RuntimeClass handler "wasm").
  std::string cni_bridge = "kiso0";
  std::string cluster_cidr =
      "10.42.0.0/16";      // Every node's pods: not masqueraded among themselves.
  std::string images_dir;  // Default: <data_dir>/../images (shared with `kiso image`).
  std::string registries;  // registries.yaml (mirrors); absent: none.
  // The built-in ingress controller (Traefik's role): on unless disabled.
  bool disable_ingress = false;
  network::ingress::ProxyOptions ingress;
  // The local-path provisioner (K3s' local-storage): on unless disabled; its
  // volumes' directories under local_storage_path (default <data_dir>/storage).
  bool disable_local_storage = false;
  // NetworkPolicy enforcement: "nftables", "ebpf" or "none".
  std::string network_policy = "nftables";
  // The pod network across nodes (K3s' --flannel-backend): "vxlan", "host-gw"
  // or "none" (this node's pods reach only its own).
  std::string network_backend = "vxlan";
  std::string local_storage_path;
};

class EmbeddedNode {
 public:
  // Fails with the cause (no runtime, no CNI plugins, not root…).
  static Result<std::unique_ptr<EmbeddedNode>> Create(client::Client* client,
                                                      const NodeOptions& options);
  Status Start();
  void Stop();
  Agent* agent() { return agent_.get(); }

 private:
  EmbeddedNode() = default;
  std::unique_ptr<image::LocalImageService> images_;
  std::unique_ptr<runtime::OciRuntime> runtime_;
  std::unique_ptr<network::CniNetwork> network_;
  std::unique_ptr<Agent> agent_;
  std::unique_ptr<ServiceProxy> proxy_;
  std::unique_ptr<IngressController> ingress_;         // Null when disabled or its ports are taken.
  std::unique_ptr<LocalPathProvisioner> local_path_;   // Null when disabled.
  std::unique_ptr<PolicyController> policy_;           // Null under --network-policy none.
  std::unique_ptr<PodNetworkController> pod_network_;  // Null under --flannel-backend none.
};

}  // namespace kiso::agent
