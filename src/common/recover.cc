#include "common/recover.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

namespace kiso {

void ReportRecovered(std::string_view where, std::string_view what) {
  spdlog::error("{}: recovered from a failure (a bug; the work is retried): {}", where, what);
#ifdef KISO_FUZZ
  fmt::print(stderr, "{}: recovered from a failure: {}\n", where, what);
  std::abort();
#endif
}

std::string_view CurrentExceptionMessage() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception of an unknown type";
  }
}

}  // namespace kiso
