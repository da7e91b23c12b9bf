// The eBPF enforcer (Cilium's way): bpf/policy.bpf.c on tc, deciding from
// maps. Each isolated pod and direction gets a slot; the model's rules for a
// slot are flattened into disjoint address ranges, each with the union of
// the ports its rules allow there (a port set, shared by every slot that
// allows the same ports), written as longest-prefix entries. A change writes
// only the entries that differ. The program is attached to the bridge
// (traffic the node routes) and to every bridge port (traffic to a pod),
// replacing an earlier process's at the same place.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "network/policy/enforcer.h"

namespace kiso::network::policy {

// The maps' contents as data, derived from a model (host order).
struct BpfEntries {
  struct Peer {
    uint32_t slot = 0, addr = 0;
    uint8_t bits = 32;
    // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy misreads a defaulted <=>
    auto operator<=>(const Peer&) const = default;
  };
  struct Port {
    uint32_t set = 0;
    uint8_t protocol = 0;
    uint16_t port = 0;
    uint8_t bits = 16;
    // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy misreads a defaulted <=>
    auto operator<=>(const Port&) const = default;
  };
  std::map<uint32_t, std::pair<uint32_t, uint32_t>> pods;  // Address → (ingress, egress) slot.
  std::map<Peer, uint32_t> peers;                          // → port set (0: every port).
  std::set<Port> ports;
};

// The maps' contents kept current slot by slot, with the slot and port-set
// numbers (kept across changes, so that a change rewrites only what it
// touches; a port set is shared by every slot allowing the same ports and
// goes with the last of them). Pure: the enforcer writes the changes.
class BpfTables {
 public:
  struct Changes {
    BpfEntries put;   // Added or changed, in this order: ports, peers, pods.
    BpfEntries gone;  // Removed after: pods, peers, ports.
  };
  // Brings the slots of `pods` ((address, ingress) pairs) to what `model`
  // says of them; other slots stay as they are.
  Changes Set(const Model& model, const std::set<std::pair<uint32_t, bool>>& pods);
  // Every slot `model` has, and none other.
  Changes Reset(const Model& model);
  const BpfEntries& entries() const { return entries_; }
  size_t port_sets() const { return sets_.size(); }

 private:
  struct Slot {
    uint32_t number = 0;
    std::map<std::pair<uint32_t, uint8_t>, uint32_t> peers;  // (address, bits) → port set.
  };
  uint32_t Intern(const std::vector<PortRange>& ports, Changes& changes);
  void Release(uint32_t set, Changes& changes);

  BpfEntries entries_;
  std::map<std::pair<uint32_t, bool>, Slot> slots_;
  std::map<std::vector<PortRange>, uint32_t> set_ids_;
  std::map<uint32_t, std::pair<std::vector<PortRange>, size_t>> sets_;  // → (ports, users).
  uint32_t next_slot_ = 1, next_set_ = 1;
};

// The CIDR blocks covering [first, last] exactly, widest first: (address, bits).
std::vector<std::pair<uint32_t, uint8_t>> Blocks(uint32_t first, uint32_t last, int width);

Result<std::unique_ptr<Enforcer>> NewEbpfEnforcer(const EnforcerOptions& options);
// Detaches the program from `bridge` and its ports.
Status DetachEbpf(std::string_view bridge);

}  // namespace kiso::network::policy
