#include "network/proxy/maglev.h"

#include <algorithm>

#include "common/hash.h"

namespace kiso::network::proxy {

namespace {

// FNV-1a, 64-bit, with a different offset basis for each of the two hashes.
uint64_t Fnv(const std::string& s, uint64_t basis) {
  uint64_t h = Fnv1a64(s, basis);
  // A final mix (splitmix64's), so near names land far apart.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

}  // namespace

uint32_t MaglevSize(size_t backends) {
  if (backends <= 8) return 8191;
  if (backends <= 32) return 32749;
  return 131071;
}

std::vector<uint32_t> MaglevTable(const std::vector<std::string>& names) {
  if (names.empty()) return {};
  const uint32_t m = MaglevSize(names.size());
  const size_t n = names.size();
  // Backends take turns in the order of their names, so that the table does
  // not depend on the order they are listed in (every node builds the same).
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return names[a] < names[b]; });
  std::vector<uint64_t> offset(n), skip(n), next(n, 0);
  for (size_t i = 0; i < n; ++i) {
    offset[i] = Fnv(names[order[i]], 14695981039346656037ULL) % m;
    skip[i] = Fnv(names[order[i]], 0x84222325cbf29ce4ULL) % (m - 1) + 1;
  }
  constexpr uint32_t kEmpty = UINT32_MAX;
  std::vector<uint32_t> table(m, kEmpty);
  uint32_t filled = 0;
  while (true) {
    for (size_t i = 0; i < n; ++i) {
      // The backend's next preferred slot that is still free.
      uint64_t slot = (offset[i] + next[i] * skip[i]) % m;
      while (table[slot] != kEmpty) {
        ++next[i];
        slot = (offset[i] + next[i] * skip[i]) % m;
      }
      table[slot] = order[i];
      ++next[i];
      if (++filled == m) return table;
    }
  }
}

}  // namespace kiso::network::proxy
