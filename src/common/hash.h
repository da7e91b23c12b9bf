// FNV-1a, 64-bit: a small, stable hash for names derived from content
// (nftables chain and set names, Maglev's permutations). Not for security.
#pragma once

#include <cstdint>
#include <string_view>

namespace kiso {

inline constexpr uint64_t kFnvOffsetBasis = 14695981039346656037ULL;

constexpr uint64_t Fnv1a64(std::string_view s, uint64_t basis = kFnvOffsetBasis) {
  uint64_t h = basis;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace kiso
