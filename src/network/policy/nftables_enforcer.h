// The nftables enforcer (Calico's and kube-router's way): one table of its
// own per bridge ("kiso-policy", "kiso-policy-<bridge>"). Its filter chains on
// the forward and input hooks let established and related packets pass
// (conntrack) and send a new flow from an egress-isolated pod through the
// verdict map eg-pods to that pod's chain, one from anywhere to an
// ingress-isolated pod through in-pods to its chain. A pod's chain jumps to
// the chain of each policy that selects it and refuses what none allowed; a
// policy's chain has one rule per port kind of each of its rules, matching
// sets of its own: the rule's peers (address intervals), its port ranges
// (protocol . port interval) and its named ports resolved to (pod address .
// protocol . port). A change is a transaction that touches only what
// differs: set elements added and deleted as pods and labels change, the
// chains of the pods and policies whose rules changed.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "network/policy/enforcer.h"

namespace kiso::network::policy {

// The table's contents as data, derived from a model; two states' difference
// is the transaction that takes the kernel from one to the other.
struct NftState {
  struct Set {
    std::string type;  // "ipv4_addr", "inet_proto . inet_service", …
    bool interval = false;
    std::set<std::string> elements;
    bool operator==(const Set&) const = default;
  };
  std::map<std::string, Set> sets;
  std::map<std::string, std::vector<std::string>> chains;  // Name → rules.
  // Verdict-map elements: pod address → its chain, per direction.
  std::map<std::string, std::string> eg_pods, in_pods;
};

// The table name for `bridge`.
std::string PolicyTable(std::string_view bridge);
NftState StateOf(const Model& model);
// The nft script that replaces the table with one holding `state`.
std::string FullScript(std::string_view table, std::string_view bridge, const NftState& state);
// The nft script (one transaction) taking the table from `from` to `to`;
// empty when they are the same.
std::string UpdateScript(std::string_view table, const NftState& from, const NftState& to);
// The same for models `from` and `to` that differ only in the policies named
// in `changed`: it derives and compares only what those policies touch.
std::string UpdateScriptFor(std::string_view table, const Model& from, const Model& to,
                            const std::set<std::string>& changed);

Result<std::unique_ptr<Enforcer>> NewNftablesEnforcer(const EnforcerOptions& options);

}  // namespace kiso::network::policy
