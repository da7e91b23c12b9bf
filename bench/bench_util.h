// What every benchmark here shares: milliseconds, percentiles, and the one
// output line per figure, `<part> <figure>=<value> <unit>`.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace kiso::bench {

inline double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// The p-th quantile (0..1) of `v`, nearest rank; 0 for none.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

inline void PrintFigure(const std::string& part, const std::string& figure, double value,
                        const std::string& unit) {
  fmt::print("{} {}={:.1f} {}\n", part, figure, value, unit);
  std::fflush(stdout);
}

}  // namespace kiso::bench
