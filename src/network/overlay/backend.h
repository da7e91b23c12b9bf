// The pod network across nodes (flannel's role): each node's pods are in its
// own range (its Node's spec.podCIDR); a backend makes every other node's
// range reachable from this one. Two implementations of one interface, held
// to one conformance suite (tests/cluster/test_pod_network.py):
//   vxlan   — a kernel VXLAN device (VNI 1, UDP 8472, flannel's), with a route
//             per remote range through it, an ARP entry for the remote end
//             and a forwarding entry to the remote node's address; works
//             across any IP underlay; pods' MTU is the underlay's less 50.
//   host-gw — a route per remote range via the remote node's address; nodes
//             must share a link; no encapsulation, the underlay's MTU.
// What a node tells the others goes in annotations of its Node; kiso's routes
// carry protocol 75, so that they can be listed and removed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiso::network::overlay {

// Node annotations (flannel's, in kiso's domain).
inline constexpr const char* kBackendAnnotation = "kiso.dev/network-backend";
inline constexpr const char* kPublicIpAnnotation = "kiso.dev/public-ip";
inline constexpr const char* kVtepMacAnnotation = "kiso.dev/vtep-mac";

struct RemoteNode {
  std::string name;
  std::string pod_cidr;  // Its spec.podCIDR.
  std::map<std::string, std::string> annotations;
};

struct OverlayOptions {
  std::string backend = "vxlan";  // vxlan | host-gw
  std::string public_ip;          // This node's address on the underlay (its InternalIP).
  std::string pod_cidr;           // This node's range.
  std::string device = "kiso.1";  // The VXLAN device's name.
};

class OverlayBackend {
 public:
  virtual ~OverlayBackend() = default;
  virtual std::string_view name() const = 0;
  // What this node publishes for the others.
  virtual std::map<std::string, std::string> Annotations() const = 0;
  // The MTU pods get on this backend.
  virtual int PodMtu() const = 0;
  // Makes exactly `remotes`' ranges reachable (others this node reached
  // before are removed); nodes of another backend are skipped, and named
  // in the error. Idempotent.
  virtual Status Sync(const std::vector<RemoteNode>& remotes) = 0;
};

// InvalidArgument for an unknown backend or a malformed address or range.
Result<std::unique_ptr<OverlayBackend>> CreateOverlay(const OverlayOptions& options);

// What `kiso node reset` does: every route of kiso's protocol and the VXLAN
// device `device`, gone. Appends what it removed and what it could not.
void ResetOverlay(const std::string& device, std::vector<std::string>* removed,
                  std::vector<std::string>* failed);

}  // namespace kiso::network::overlay
