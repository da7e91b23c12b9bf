// Rtnl: the few rtnetlink requests kiso's pod network needs — on one node a
// bridge, veth pairs, addresses and a default route (what the CNI bridge
// plugin does, cni.h); across nodes a VXLAN device, routes, ARP and
// forwarding-database entries — sent with libmnl in the network namespace of
// the thread that opened the socket. Each waits for the kernel's answer; an
// error names the request and the kernel's reason.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiso::network {

using Mac = std::array<uint8_t, 6>;
std::string FormatMac(const Mac& mac);
// 0a:58 and the address: locally administered, stable for an address (the
// CNI plugins' old convention), so a reused address keeps its MAC.
Mac MacOf(uint32_t ipv4);
bool ParseMac(std::string_view text, Mac* mac);

// The protocol kiso's routes carry (rtm_protocol), so that they can be told
// apart from everyone else's and removed by `kiso node reset` (ip route shows
// "proto 75").
inline constexpr uint8_t kRouteProtocol = 75;

struct VxlanDevice {
  std::string name;
  uint32_t vni = 1;
  std::string local_ip;  // The underlay address packets leave from.
  uint16_t port = 8472;  // flannel's (the Linux default, not IANA's 4789).
  Mac mac{};
  int mtu = 1450;
};

struct Route {
  std::string dst;  // "10.42.1.0/24"
  std::string via;  // The gateway.
  int ifindex = 0;  // 0: the kernel finds the device for `via`.
  bool onlink = false;
  uint8_t protocol = kRouteProtocol;  // rtm_protocol.
  friend bool operator==(const Route&, const Route&) = default;
};

class Rtnl {
 public:
  static Result<Rtnl> Open();
  Rtnl(Rtnl&&) noexcept;
  Rtnl& operator=(Rtnl&&) noexcept;
  ~Rtnl();

  // Creates the device unless one of that name is there (then left as it is),
  // sets it up; returns its index.
  Result<int> EnsureVxlan(const VxlanDevice& device);
  // Creates the bridge unless one of that name is there, sets it up with `mac`
  // (set, so that it does not change as ports come and go); returns its index.
  Result<int> EnsureBridge(const std::string& name, const Mac& mac, int mtu);
  // A veth pair: `name` in this namespace (the kernel's MAC), enslaved to
  // `master`; `peer_name` with `peer_mac` in the namespace of `peer_netns_fd`.
  // Both down; 0 MTU: the kernel's. Returns the index of `name`.
  Result<int> CreateVeth(const std::string& name, const std::string& peer_name, const Mac& peer_mac,
                         int peer_netns_fd, int master, int mtu);
  Status SetUp(int ifindex);
  // Frames a bridge port receives may go back out of it (a pod reaching itself
  // through a Service).
  Status SetHairpin(int ifindex);
  Status DeleteLink(const std::string& name);  // NotFound when there is none.
  // The address (replacing one that is there); `broadcast`: with the
  // subnet's broadcast address, as `ip addr add ... brd +`.
  Status AddAddress(int ifindex, const std::string& ip, int prefix, bool broadcast = false);
  Status ReplaceRoute(const Route& route);
  Status DeleteRoute(const Route& route);
  // Every route of kiso's protocol (kRouteProtocol) in the main table.
  Result<std::vector<Route>> KisoRoutes();
  // A permanent ARP entry: `ip` is at `mac` on the device.
  Status ReplaceNeighbour(int ifindex, const std::string& ip, const Mac& mac);
  // A permanent forwarding entry of a VXLAN device: frames for `mac` go to `remote_ip`.
  Status ReplaceFdb(int ifindex, const Mac& mac, const std::string& remote_ip);

 private:
  explicit Rtnl(void* socket) : socket_(socket) {}
  Status Request(std::vector<char>& buf, const std::string& what);
  void* socket_ = nullptr;  // mnl_socket.
  uint32_t seq_ = 1;
};

// The device that holds `ip` and its MTU (ioctl, this namespace's).
Result<std::pair<std::string, int>> DeviceOf(const std::string& ip);

}  // namespace kiso::network
