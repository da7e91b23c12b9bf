// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4): a lookup table of
// a prime size M in which each backend fills the slots of its own permutation
// in turn, so every backend holds M/N slots (±1) and removing one backend
// moves mostly its own slots. The data plane hashes a client's address to a
// slot (seed 07.6.3's consistent hashing).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiso::network::proxy {

// The table size for n backends: a prime of at least 1000·n, which keeps
// the share of keys that move when one of n backends goes within 1/n + 1%
// (the first 1/n are its own; the rest is Maglev's disruption, which shrinks
// as the table grows). Sizes come in three steps (8191 up to 8 backends,
// 32749 up to 32, then 131071), so that a backend going or coming changes
// the size, and with it every key's slot, only where it crosses a step.
uint32_t MaglevSize(size_t backends);

// The table: for each of MaglevSize(names.size()) slots, the index of its
// backend in `names`. Names identify backends (their address and port): the
// same name keeps its permutation whatever else is in the list. Empty when
// `names` is.
std::vector<uint32_t> MaglevTable(const std::vector<std::string>& names);

}  // namespace kiso::network::proxy
