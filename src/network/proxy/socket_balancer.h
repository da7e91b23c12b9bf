// SocketBalancer: least connections (seed 07.6.3) in the kernel at
// connection time, for the Service ports whose algorithm is
// least-connections. nftables keeps no live connection counts and IPVS is not
// in this kernel, so this is eBPF (bpf/least_conn.bpf.c, loaded with
// Debian's libbpf): cgroup socket hooks on the machine's cgroup2 root, as
// Cilium balances in sockets. A TCP connect() from the node or any of its
// pods to a Service address goes to the endpoint with the fewest open
// connections; closing the socket counts it off; getpeername() still names
// the Service. No packet is rewritten afterwards: the connection is the
// pod's.
//
// What no socket of this node opens (a connection from another node to a
// node port or an external IP) is chosen for by tc programs on the node's
// Ethernet interfaces (tcx links; every one but kiso's bridge and bridge
// ports), from the same counts: the SYN's packet is marked with the
// endpoint that has the fewest connections, nftables' chain for the port
// DNATs a marked connection there (rules.h), and the first FIN or RST either
// way counts it off; a sweep counts off connections whose conntrack entry
// went without either being seen. Ports with ClientIP affinity (nftables
// keeps it) and ports with more endpoints than one entry holds
// (KISO_LB_MAX_BACKENDS, 64) are nftables' round robin; a UDP or SCTP port is
// never counted.
//
// The programs stay attached while this object lives and go with it (or
// with the process: every attachment is a BPF link): nothing of them
// outlives the agent, and a restarted agent counts anew (connections already
// open are not counted).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "network/proxy/rules.h"

struct least_conn_bpf;
struct kiso_lb_addr;
struct kiso_lb_service;

namespace kiso::network::proxy {

using SocketAddress = std::pair<std::string, int>;  // IPv4 address, port.

// What one Service address leads to.
struct BalancerEntry {
  std::vector<SocketAddress> backends;  // In nftables' order for the path (rules.cc).
  // Connections from other nodes reach it (an external IP, a node port).
  bool from_outside = false;
  bool operator==(const BalancerEntry&) const = default;
};

// The Service addresses of `port` and the endpoints each leads to: the
// cluster IP to the internal endpoints; external IPs and, for a node port,
// each of `node_addresses` to the external ones. Empty unless BalancedInSockets(port);
// addresses without usable endpoints, or with more than the kernel entry
// holds, are left out (nftables has them).
std::map<SocketAddress, BalancerEntry> SocketBalancerEntries(
    const ServicePort& port, const std::vector<std::string>& node_addresses);

class SocketBalancer {
 public:
  // Loads the programs and attaches them to the cgroup2 hierarchy's root;
  // node ports answer on `node_addresses` (IPv4 ones: the hooks are IPv4's).
  // Needs CAP_BPF and CAP_NET_ADMIN (root).
  static Result<std::unique_ptr<SocketBalancer>> Open(std::vector<std::string> node_addresses);
  ~SocketBalancer();
  SocketBalancer(const SocketBalancer&) = delete;
  SocketBalancer& operator=(const SocketBalancer&) = delete;

  // Node ports answer on `addresses` from the next Full() on; false when
  // they are those already (IPv6 ones aside).
  bool SetNodeAddresses(std::vector<std::string> addresses);
  // Serves exactly `ports` (what is there for other ports goes).
  Status Full(const ServicePorts& ports);
  // Takes the entries from `from` to `to`, where only `changed` ports differ.
  Status Update(const ServicePorts& from, const ServicePorts& to,
                const std::set<std::string>& changed);
  // Open connections counted to ip:port now.
  int64_t Active(const std::string& ip, int port) const;
  // The Service addresses served now.
  std::vector<SocketAddress> Addresses() const;

  // Attaches the tc programs to the node's interfaces that lack them (those
  // that came since the last call) and lets go of the gone ones. Interfaces
  // are Ethernet ones other than `bridge` and bridge ports. Returns how many
  // have them now; 0 when this kernel has no tcx links.
  Result<int> AttachInterfaces(const std::string& bridge);
  // Counts off the connections from other nodes counted longer than `age`
  // whose conntrack entry has gone (their FIN or RST was not seen: a
  // conntrack timeout, a route change). Returns how many.
  Result<int> SweepRemotes(std::chrono::seconds age);
  // Connections from other nodes counted now.
  int64_t Remotes() const;

 private:
  SocketBalancer() = default;
  Status Put(const SocketAddress& service, const BalancerEntry& entry);
  Status Remove(const SocketAddress& service);
  // Calls `visit` with every Service entry in the kernel.
  void ForEachEntry(
      const std::function<void(const kiso_lb_addr&, const kiso_lb_service&)>& visit) const;
  // Drops the counts of `endpoints` that no entry has and no connection uses.
  void ForgetIdle(std::set<SocketAddress> endpoints);

  std::vector<std::string> node_addresses_;
  least_conn_bpf* skel_ = nullptr;
  // The tc links of an interface (descriptors; closing one detaches it).
  struct TcLinks {
    std::string name;  // An index given to another interface later is not this one.
    int ingress = -1, egress = -1;
  };
  std::map<int, TcLinks> tc_links_;  // By interface index.
  bool tcx_unsupported_ = false;
};

}  // namespace kiso::network::proxy
