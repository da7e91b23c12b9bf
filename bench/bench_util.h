// What every benchmark here shares: milliseconds, percentiles, and the one
// output line per figure, `<part> <figure>=<value> <unit>`.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
  // Ratios with two decimals: a goal such as "≤ 0.5×" is not read from "0.5".
  if (unit == "x") {
    fmt::print("{} {}={:.2f} {}\n", part, figure, value, unit);
  } else {
    fmt::print("{} {}={:.1f} {}\n", part, figure, value, unit);
  }
  std::fflush(stdout);
}

// Figures taken beside another run's leftovers are not figures: false (with
// what tests/leak_check found, on stderr) when the machine is not clean.
inline bool CleanMachine() {
  std::string command = std::string(KISO_SOURCE_DIR) + "/tests/leak_check";
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return false;
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  if (status == 0) return true;
  fmt::print(stderr, "refusing to measure on a dirty machine:\n{}", out);
  return false;
}

}  // namespace kiso::bench
