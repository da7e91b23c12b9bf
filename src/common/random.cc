#include "common/random.h"

#include <memory>
#include <string_view>

namespace kiso {

std::mt19937_64& ThreadRng() {
  thread_local std::unique_ptr<std::mt19937_64> rng;
  if (!rng) rng = std::make_unique<std::mt19937_64>(std::random_device{}());
  return *rng;
}

uint64_t RandomBelow(uint64_t bound) {
  if (bound == 0) return 0;
  return std::uniform_int_distribution<uint64_t>(0, bound - 1)(ThreadRng());
}

std::string RandomNameSuffix(size_t n) {
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out += kAlphabet[RandomBelow(kAlphabet.size())];
  return out;
}

}  // namespace kiso
