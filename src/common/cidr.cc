#include "common/cidr.h"

#include <fmt/format.h>

#include <charconv>

namespace kiso {

std::optional<uint32_t> ParseIpv4(std::string_view text) {
  uint32_t out = 0;
  for (int i = 0; i < 4; ++i) {
    unsigned part = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), part);
    size_t used = static_cast<size_t>(end - text.data());
    if (ec != std::errc() || part > 255 || used == 0 || used > 3) return std::nullopt;
    out = (out << 8) | part;
    text.remove_prefix(used);
    if (i < 3) {
      if (text.empty() || text[0] != '.') return std::nullopt;
      text.remove_prefix(1);
    }
  }
  if (!text.empty()) return std::nullopt;
  return out;
}

std::string FormatIpv4(uint32_t a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

Result<Ipv4Cidr> Ipv4Cidr::Parse(std::string_view text) {
  size_t slash = text.find('/');
  auto bad = [&] {
    return MakeStatus(Code::kInvalidArgument, "{:?} is not an IPv4 range (a.b.c.d/8 to /30)",
                      std::string(text));
  };
  if (slash == std::string_view::npos) return bad();
  auto base = ParseIpv4(text.substr(0, slash));
  int prefix = 0;
  std::string_view p = text.substr(slash + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (!base || ec != std::errc() || end != p.data() + p.size() || prefix < 8 || prefix > 30)
    return bad();
  Ipv4Cidr c{*base, prefix};
  if ((*base & ~(~uint32_t{0} << (32 - prefix))) != 0) {
    return MakeStatus(Code::kInvalidArgument, "{:?}: the host bits must be zero ({})",
                      std::string(text), c.ToString());
  }
  return c;
}

bool Ipv4Cidr::Contains(std::string_view address) const {
  auto a = ParseIpv4(address);
  return a && Contains(*a);
}

std::string Ipv4Cidr::ToString() const { return fmt::format("{}/{}", FormatIpv4(base), prefix); }

}  // namespace kiso
