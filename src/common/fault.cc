#include "common/fault.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>

namespace kiso {

namespace {

// The points named in KISO_CRASH_AT, read once; never destroyed.
const std::set<std::string, std::less<>>* Points() {
  static const auto* points = [] {
    auto* out = new std::set<std::string, std::less<>>();
    const char* env = std::getenv("KISO_CRASH_AT");
    std::string_view list = env ? env : "";
    while (!list.empty()) {
      size_t comma = list.find(',');
      out->emplace(list.substr(0, comma));
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    return out;
  }();
  return points;
}

}  // namespace

void CrashPoint(std::string_view name) {
  const auto* points = Points();
  if (points->empty() || !points->contains(name)) return;
  constexpr std::string_view kSays = "kiso: crash point ";
  (void)!write(STDERR_FILENO, kSays.data(), kSays.size());
  (void)!write(STDERR_FILENO, name.data(), name.size());
  (void)!write(STDERR_FILENO, "\n", 1);
  kill(getpid(), SIGKILL);
}

}  // namespace kiso
