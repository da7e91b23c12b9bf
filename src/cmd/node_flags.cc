#include "cmd/node_flags.h"

#include <algorithm>

#include "common/clock.h"

namespace kiso::cmd {

void AddNodeFlags(CLI::App& app, agent::NodeOptions& node) {
  app.add_option("--node-name", node.agent.node_name, "Node name (default: host name)");
  app.add_option("--node-ip", node.agent.internal_ip,
                 "The node's InternalIP (default: the host's primary address)");
  app.add_option("--pod-cidr", node.agent.pod_cidr,
                 "This node's pod addresses (default: the range the server's node IPAM gives "
                 "the Node from --cluster-cidr, a /24 of 10.42.0.0/16)");
  app.add_option_function<int>(
         "--node-lease-duration-seconds",
         [&node](int seconds) { node.agent.lease_duration = std::chrono::seconds(seconds); },
         "The node's Lease duration; it is renewed every quarter of it (default 40)")
      ->check(CLI::Range(4, 3600));
  app.add_option("--max-pods", node.agent.max_pods,
                 "The pods this node takes (its pods capacity; mind --pod-cidr's size)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--cni-bridge", node.cni_bridge, "Bridge the pods attach to")
      ->capture_default_str();
  app.add_option("--cluster-cidr", node.cluster_cidr,
                 "Every node's pod addresses (pod traffic leaving it is masqueraded)")
      ->capture_default_str();
  app.add_option_function<std::string>(
      "--sync-frequency",
      [&node](const std::string& text) {
        auto ns = ParseGoDuration(text);
        if (!ns || *ns <= 0)
          throw CLI::ValidationError("--sync-frequency", "not a positive duration: " + text);
        node.agent.volume_sync = std::chrono::milliseconds(std::max<int64_t>(1, *ns / 1'000'000));
      },
      "How often running pods' ConfigMap, Secret and projected volumes are brought up to "
      "date with their sources (default 10s)");
  app.add_option("--runtime", node.runtime,
                 "OCI runtime of the default RuntimeClass handler: runc or crun")
      ->capture_default_str();
  app.add_option("--runtime-handlers", node.runtime_handlers,
                 "RuntimeClass handlers beside the default, each the OCI runtime of that name, "
                 "offered when installed, and wasm (WASI modules, kiso-wasm) (\"\" for none)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_flag("--disable-ingress", node.disable_ingress,
               "Do not run the built-in ingress controller (K3s: --disable traefik)");
  app.add_flag("--disable-local-storage", node.disable_local_storage,
               "Do not run the local-path provisioner nor create the local-path StorageClass "
               "(K3s: --disable local-storage)");
  app.add_option("--default-local-storage-path", node.local_storage_path,
                 "Where local-path volumes live (default: <data-dir>/agent/storage)");
  app.add_option("--flannel-backend", node.network_backend,
                 "The pod network across nodes: vxlan (a VXLAN device, any IP underlay), "
                 "host-gw (routes; nodes share a link) or none")
      ->check(CLI::IsMember({"vxlan", "host-gw", "none"}))
      ->capture_default_str();
  app.add_option("--network-policy", node.network_policy,
                 "How NetworkPolicy is enforced: nftables, ebpf, or none (not enforced)")
      ->check(CLI::IsMember({"nftables", "ebpf", "none"}))
      ->capture_default_str();
  app.add_option("--ingress-http-port", node.ingress.http_port,
                 "Port the ingress controller serves HTTP on (0: any free one)")
      ->capture_default_str();
  app.add_option("--ingress-https-port", node.ingress.https_port,
                 "Port the ingress controller serves HTTPS on (0: any free one)")
      ->capture_default_str();
}

}  // namespace kiso::cmd
