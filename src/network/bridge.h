// BridgeNetwork: what the CNI bridge plugin with host-local IPAM does for
// kiso's own network list (cni.h), done in the agent over rtnetlink (rtnl.h)
// rather than by two plugin processes per pod: a bridge holding the gateway
// address, a veth pair per pod with its node end a hairpin port of the
// bridge, the pod's "eth0" with its address and a default route through the
// gateway. Addresses are kept where and as host-local keeps them (a file per
// address under <dataDir>/<network>, holding "<container id>\r\n<ifname>",
// and last_reserved_ip.0, under an flock of "lock"), so attachments the
// plugins made are released by it and the other way round. Its result is the
// plugin's CNI 1.0 result, which the portmap plugin and DEL's prevResult take.
#pragma once

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <mutex>
#include <string>

#include "common/cidr.h"
#include "common/status.h"

namespace kiso::network {

class HostLocalIpam {
 public:
  HostLocalIpam(std::string dir, Ipv4Cidr range) : dir_(std::move(dir)), range_(range) {}

  // The address held by (id, ifname), else the next free one after the last
  // reserved (round robin, as host-local: the network, gateway and broadcast
  // addresses are never given). ResourceExhausted when none is free.
  Result<uint32_t> Allocate(const std::string& id, const std::string& ifname);
  // Frees what (id, ifname) holds; `hint`, when known, is checked first. Idempotent.
  Status Release(const std::string& id, const std::string& ifname, uint32_t hint = 0);
  uint32_t gateway() const { return range_.base + 1; }
  const Ipv4Cidr& range() const { return range_; }

 private:
  std::string dir_;
  Ipv4Cidr range_;
};

struct BridgeOptions {
  std::string bridge;    // "kiso0"
  Ipv4Cidr range;        // The node's pod range; its first address is the gateway.
  int mtu = 0;           // 0: the kernel's.
  std::string ipam_dir;  // host-local's <dataDir>/<network name>.
};

class BridgeNetwork {
 public:
  explicit BridgeNetwork(BridgeOptions options)
      : options_(std::move(options)), ipam_(options_.ipam_dir, options_.range) {}

  // Attaches `netns` as "eth0"; returns the CNI result (the bridge plugin's).
  // What it made is undone when it fails.
  Result<boost::json::value> Add(const std::string& id, const std::string& netns);
  // Deletes the pod's veth pair (when its namespace is still there) and frees
  // its address (`ip`: the cached result's, when known). Idempotent.
  Status Del(const std::string& id, const std::string& netns, const std::string& ip = "");

 private:
  Result<int> EnsureBridge();

  BridgeOptions options_;
  HostLocalIpam ipam_;
  std::mutex mu_;         // Guards the bridge's set-up.
  int bridge_index_ = 0;  // Guarded by mu_: the bridge set up last (0: none yet).
};

}  // namespace kiso::network
