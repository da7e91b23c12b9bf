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
// Ruleset decides, nftables.h applies: Full() is an nft script for the whole
// table in one transaction (after a start: conntrack keeps established
// connections going across it); Update() is what changed as a Transaction,
// touching only the changed Service ports' chains, sets and map elements,
// which Nftables::Apply() sends as one netlink batch (Script() writes the
// same transaction as nft text, which Full() is made of).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
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

// Whether `port` is balanced by live connection counts in the kernel (the
// socket balancer and its tc programs, socket_balancer.h): TCP least
// connections without ClientIP affinity, which nftables keeps.
bool BalancedInSockets(const ServicePort& port);

// Service ports by a stable name ("ns/name:port/tcp").
using ServicePorts = std::map<std::string, ServicePort>;

// The rules of a Service's chains, as data. Each is one nft statement; the
// comment gives its text.
namespace rule {
// ip saddr IP jump CHAIN
struct JumpIfSource {
  std::string ip, chain;
};
// fib saddr type local jump CHAIN
struct JumpIfLocalSource {
  std::string chain;
};
// jump CHAIN
struct Jump {
  std::string chain;
};
// goto CHAIN
struct Goto {
  std::string chain;
};
// update @SET { ip saddr }
struct RememberSource {
  std::string set;
};
// ip saddr @SET goto CHAIN
struct GotoIfRemembered {
  std::string set, chain;
};
// meta l4proto PROTOCOL dnat to IP:PORT
struct Dnat {
  std::string protocol, ip;
  int port = 0;
};
// numgen random|inc mod M, or jhash ip saddr mod M seed S, then
// vmap { FIRST[-LAST] : goto CHAIN, … } over slots covering 0…M-1; or
// (kMark) meta mark and kBalancerMarkMask vmap { MARK : goto CHAIN, … },
// where a mark no slot has goes on to the next rule.
struct Pick {
  enum class By { kRandom, kCounter, kSourceHash, kMark };
  struct Slot {
    uint32_t first = 0, last = 0;
    std::string chain;
  };
  By by = By::kRandom;
  uint32_t modulus = 1;
  std::vector<Slot> slots;
};
}  // namespace rule

using Rule = std::variant<rule::JumpIfSource, rule::JumpIfLocalSource, rule::Jump, rule::Goto,
                          rule::RememberSource, rule::GotoIfRemembered, rule::Dnat, rule::Pick>;

// The seed of every node's hashes (source-IP hash, Maglev): "kiso".
inline constexpr uint32_t kHashSeed = 0x6b69736f;

// The packet mark by which the least-connections tc program (socket_balancer.h)
// names the endpoint it chose for a connection from another node: kBalancerMark
// with the endpoint's index in the port's external endpoints (UsableEndpoints'
// order) in the bits from kBalancerMarkShift; the bits of kBalancerMarkMask
// say it. (bpf/least_conn.h has them as KISO_LB_MARK*.)
inline constexpr uint32_t kBalancerMark = 0x6b000000;
inline constexpr uint32_t kBalancerMarkMask = 0xffff0000;
inline constexpr int kBalancerMarkShift = 16;
// The most endpoints one least-connections entry holds (KISO_LB_MAX_BACKENDS).
inline constexpr size_t kBalancerMaxBackends = 64;

// One element of a verdict map: (ip . protocol . port) or, where `ip` is
// empty, (protocol . port), pointing at `chain` (goto).
struct MapElement {
  std::string map, ip, protocol;
  int port = 0;
  std::string chain;  // Unused when the element is deleted.
};

struct RuleChain {
  std::string name;
  std::vector<Rule> rules;
};

// A ClientIP affinity set: source addresses, each remembered for `timeout_seconds`.
struct AffinitySet {
  std::string name;
  int timeout_seconds = 0;
};

// One atomic change of the table, applied in this order: `removed`
// elements go; `sets` and `chains` are added (chains flushed if they exist)
// and the chains filled; `added` elements point at them; `gone_chains` are
// flushed and deleted, then `gone_sets` deleted.
struct Transaction {
  std::vector<MapElement> removed;
  std::vector<AffinitySet> sets;
  std::vector<RuleChain> chains;
  std::vector<MapElement> added;
  std::vector<std::string> gone_chains;
  std::vector<std::string> gone_sets;
  bool empty() const {
    return removed.empty() && sets.empty() && chains.empty() && added.empty() &&
           gone_chains.empty() && gone_sets.empty();
  }
};

// The nft statement of `r` ("goto ep-…").
std::string RuleText(const Rule& r);
// `tx` as an nft script on `table` (family ip).
std::string Script(std::string_view table, const Transaction& tx);

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
  Transaction Update(const ServicePorts& from, const ServicePorts& to,
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
