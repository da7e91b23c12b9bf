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
    auto operator<=>(const Peer&) const = default;
  };
  struct Port {
    uint32_t set = 0;
    uint8_t protocol = 0;
    uint16_t port = 0;
    uint8_t bits = 16;
    auto operator<=>(const Port&) const = default;
  };
  std::map<uint32_t, std::pair<uint32_t, uint32_t>> pods;  // Address → (ingress, egress) slot.
  std::map<Peer, uint32_t> peers;                          // → port set (0: every port).
  std::set<Port> ports;
};

// Slot and port-set numbers, kept across changes so that a change rewrites
// only what it touches.
struct BpfNumbering {
  std::map<std::pair<uint32_t, bool>, uint32_t> slots;  // (address, ingress) → slot.
  std::map<std::vector<PortRange>, uint32_t> port_sets;
  uint32_t next_slot = 1, next_set = 1;
};

// The entries for `model`; numbers come from (and new ones go into) `numbering`,
// and those no longer used leave it.
BpfEntries EntriesOf(const Model& model, BpfNumbering& numbering);

// The CIDR blocks covering [first, last] exactly, widest first: (address, bits).
std::vector<std::pair<uint32_t, uint8_t>> Blocks(uint32_t first, uint32_t last, int width);

Result<std::unique_ptr<Enforcer>> NewEbpfEnforcer(const EnforcerOptions& options);
// Detaches the program from `bridge` and its ports.
Status DetachEbpf(std::string_view bridge);

}  // namespace kiso::network::policy
