// An IPv4 range in CIDR notation ("10.43.0.0/16"): the service and pod ranges.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso {

// A dotted quad as a number; nullopt for anything else.
std::optional<uint32_t> ParseIpv4(std::string_view text);
std::string FormatIpv4(uint32_t address);

struct Ipv4Cidr {
  uint32_t base = 0;  // The network address (host bits zero).
  int prefix = 32;

  // "a.b.c.d/n" with 8 <= n <= 30; the host bits must be zero.
  static Result<Ipv4Cidr> Parse(std::string_view text);
  uint64_t Size() const { return uint64_t{1} << (32 - prefix); }
  bool Contains(uint32_t address) const {
    return prefix == 0 || (address >> (32 - prefix)) == (base >> (32 - prefix));
  }
  bool Contains(std::string_view address) const;
  // The n-th address of the range (0 is the network address).
  std::string Address(uint64_t n) const { return FormatIpv4(base + static_cast<uint32_t>(n)); }
  std::string ToString() const;
};

}  // namespace kiso
