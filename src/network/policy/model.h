// NetworkPolicy compiled for one node (networking.k8s.io/v1; the "policy" of
// the seed's network tuple N, 07.2.4): the policies, pods and namespaces of
// the cluster go in; what comes out is, per policy, the node's own pods it
// selects per direction and each rule's peers (address ranges, merged) and
// ports. Both enforcers (nftables and eBPF, enforcer.h) program exactly this
// model, and Allowed() is its truth table: the reference the tests compare
// the kernel's verdicts with, and what decides which established flows a
// change cuts.
//
// Upstream's semantics: a pod selected by some policy for a direction is
// isolated in it and allows only what one of those policies' rules allows
// (additive); a rule with no peers allows every peer and one with no ports
// every port and protocol; podSelector peers are pods of the policy's
// namespace, namespaceSelector peers pods of the namespaces it selects, both
// together pods matching both; ipBlock is its CIDR less its exceptions; a
// named port is the destination pod's container port of that name; endPort
// makes a range. Traffic from the node itself to its pods is always allowed
// (kubelet probes), host-network pods are neither selected nor peers (their
// address is the node's), and replies to allowed connections pass.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "api/object.h"
#include "common/status.h"

namespace kiso::network::policy {

// IPv4 addresses in host order; ranges inclusive.
struct IpRange {
  uint32_t first = 0, last = 0;
  bool operator==(const IpRange&) const = default;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy misreads a defaulted <=>
  auto operator<=>(const IpRange&) const = default;
};
// Sorted, disjoint and not adjacent (merged).
using IpRanges = std::vector<IpRange>;

Result<uint32_t> ParseIp(std::string_view text);
std::string FormatIp(uint32_t ip);
// "10.0.0.0/8" → [10.0.0.0, 10.255.255.255]; a host part is masked off, as upstream allows.
Result<IpRange> ParseCidr(std::string_view text);
// Sorts and merges overlapping and adjacent ranges.
IpRanges Merge(std::vector<IpRange> ranges);
// `from` less every address in `minus` (both merged).
IpRanges Subtract(const IpRanges& from, const IpRanges& minus);
bool Contains(const IpRanges& ranges, uint32_t ip);

// IANA protocol numbers.
inline constexpr uint8_t kTcp = 6, kUdp = 17, kSctp = 132;
std::optional<uint8_t> ParseProtocol(std::string_view name);  // "TCP", "UDP", "SCTP".
std::string_view ProtocolName(uint8_t protocol);              // "tcp", "udp", "sctp".

struct PortRange {
  uint8_t protocol = kTcp;
  uint16_t first = 0, last = 0;  // first = 0, last = 65535: every port of the protocol.
  bool operator==(const PortRange&) const = default;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy misreads a defaulted <=>
  auto operator<=>(const PortRange&) const = default;
};

// A named port resolved at one destination pod.
struct PodPort {
  uint32_t ip = 0;
  uint8_t protocol = kTcp;
  uint16_t port = 0;
  bool operator==(const PodPort&) const = default;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy misreads a defaulted <=>
  auto operator<=>(const PodPort&) const = default;
};

struct Ports {
  bool any = true;                // No ports listed: every port and protocol.
  std::vector<PortRange> ranges;  // Sorted, unique.
  std::vector<PodPort> named;     // Sorted, unique.
  bool operator==(const Ports&) const = default;
  bool Matches(uint32_t dst, uint8_t protocol, uint16_t port) const;
};

struct Rule {
  bool any_peer = true;  // No peers listed.
  IpRanges peers;
  Ports ports;
  bool operator==(const Rule&) const = default;
};

// One direction of one policy: the node's pods it isolates and its rules.
struct Direction {
  std::vector<uint32_t> pods;  // Sorted.
  std::vector<Rule> rules;     // None: deny everything.
  bool operator==(const Direction&) const = default;
};

struct Compiled {
  std::optional<Direction> ingress, egress;
  bool operator==(const Compiled&) const = default;
};

// Policies by "ns/name".
using Model = std::map<std::string, Compiled>;

// A pod as policy sees it.
struct Pod {
  std::string ns;
  api::Labels labels;
  uint32_t ip = 0;
  bool local = false;  // On this node: its policies are enforced here.
  // Named container ports: name → (protocol, number).
  std::map<std::string, std::pair<uint8_t, uint16_t>, std::less<>> ports;
  // A numbered port that reaches this pod at another (Service port → target),
  // for a peer that is not a pod: kiso's cluster DNS answers the kube-dns
  // Service's port 53 on the node at a port of its own, and a policy that
  // allows port 53 to it allows that port.
  std::map<uint16_t, uint16_t> aliases;
  bool operator==(const Pod&) const = default;
};

// Pods and namespaces by name, as the caches hold them.
struct Cluster {
  std::map<std::string, Pod, std::less<>> pods;  // By "ns/name".
  std::map<std::string, api::Labels, std::less<>> namespaces;
};

// The pod `pod` (JSON) as policy sees it; nullopt for one without an
// address, terminal, or on the host's network.
std::optional<Pod> PodOf(const boost::json::value& pod, std::string_view node_name);

// Compiles one NetworkPolicy; InvalidArgument for one that does not parse
// (the API server's validation refuses those, so only a stored object from
// before it can be one: it then selects nothing here and the caller says so).
Result<Compiled> Compile(const boost::json::value& policy, const Cluster& cluster);

// The truth table: whether a packet opening a flow from `src` to `dst`
// (protocol, destination port) passes the node whose model this is.
// `from_node`: the flow starts at the node itself (always allowed).
bool Allowed(const Model& model, uint32_t src, uint32_t dst, uint8_t protocol, uint16_t port,
             bool from_node = false);

// The node's pods isolated per direction under `model`.
std::set<uint32_t> Isolated(const Model& model, bool ingress);

}  // namespace kiso::network::policy
