// The service data plane in nftables, the way kube-proxy's nftables mode
// does it: one table owned by kiso; maps from (address, protocol, port) and
// (protocol, node port) to one chain per Service port; in that chain the
// seed's load-balancing algorithm (07.6.3) picks an endpoint chain, which
// DNATs to the pod. Everything is decided by the kernel at connection time
// (conntrack keeps the choice for the connection's life): round robin and
// weighted round robin with `numgen inc`, source-IP hash and Maglev
// consistent hashing with `jhash ip saddr`, upstream's default with `numgen
// random`, ClientIP affinity with a timed set per endpoint. Least
// connections needs live counts nftables does not have: the node's own and
// its pods' connections are balanced in their sockets (socket_balancer.h);
// here, for what reaches such a port from elsewhere, round robin. A port without
// usable endpoints is rejected at once (ICMP port unreachable: "connection
// refused"), never black-holed. Traffic to an endpoint from itself (hairpin),
// from the node's loopback and from outside to node ports is masqueraded; so
// is pod traffic leaving the cluster's pod range (flannel's role), and the
// node's loopback-sourced connections that a socket hook sent to a pod.
//
// Ruleset only writes nft scripts: Full() for the whole table in one
// transaction (after a start: conntrack keeps established connections going
// across it), Update() for what changed in one transaction, touching only
// the changed Service ports' chains and map elements.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace kiso::network::proxy {

enum class Algorithm {
  kRandom,  // Unset: upstream's random choice.
  kRoundRobin,
  kLeastConnections,
  kSourceIpHash,
  kWeightedRoundRobin,
  kConsistentHash,
};

// The kiso.dev/load-balancer annotation's value ("" is kRandom); nullopt for
// an unknown name.
std::optional<Algorithm> ParseAlgorithm(std::string_view name);

struct Endpoint {
  std::string ip;
  int port = 0;
  int64_t weight = 1;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  bool local = true;  // On this node.
  bool operator==(const Endpoint&) const = default;
};

// One port of one Service, as the data plane sees it.
struct ServicePort {
  std::string protocol = "tcp";  // tcp, udp or sctp.
  std::string cluster_ip;        // Empty for headless and ExternalName Services.
  int port = 0;
  int node_port = 0;                      // 0: none.
  std::vector<std::string> external_ips;  // spec.externalIPs, status.loadBalancer.ingress[].ip.
  Algorithm algorithm = Algorithm::kRandom;
  int affinity_seconds = 0;     // sessionAffinity ClientIP's timeout; 0: none.
  bool internal_local = false;  // internalTrafficPolicy: Local.
  bool external_local = false;  // externalTrafficPolicy: Local.
  std::vector<Endpoint> endpoints;
  bool operator==(const ServicePort&) const = default;
};

// The endpoints a path uses: local ones only under a Local policy; the ready
// ones, or when none is ready the serving terminating ones (upstream's
// fallback, so connections still land while a rollout drains).
std::vector<const Endpoint*> UsableEndpoints(const ServicePort& p, bool local_only);

// Service ports by a stable name ("ns/name:port/tcp").
using ServicePorts = std::map<std::string, ServicePort>;

struct RulesOptions {
  std::string table = "kiso";
  std::string bridge = "kiso0";  // Pods' traffic comes in here.
  std::string pod_cidr = "10.42.0.0/24";
  std::string cluster_cidr = "10.42.0.0/16";
};

class Ruleset {
 public:
  explicit Ruleset(RulesOptions options) : options_(std::move(options)) {}

  // Replaces the table (or creates it) with one serving `ports`.
  std::string Full(const ServicePorts& ports) const;
  // Takes the table from serving `from` to serving `to`, where only the
  // ports named in `changed` differ.
  std::string Update(const ServicePorts& from, const ServicePorts& to,
                     const std::set<std::string>& changed) const;
  // Removes the table.
  std::string Delete() const;
  const RulesOptions& options() const { return options_; }

 private:
  struct Parts;
  Parts PartsOf(const std::string& name, const ServicePort& port) const;

  RulesOptions options_;
};

}  // namespace kiso::network::proxy

namespace kiso::network::proxy {

// The table of the node whose pods hang off `bridge`: "kiso" for the default
// bridge kiso0, "kiso-<bridge>" otherwise (several nodes on one machine, as
// tests run them, keep apart).
std::string TableFor(std::string_view bridge);

}  // namespace kiso::network::proxy
