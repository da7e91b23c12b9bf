// Facts about running processes that tests and benchmarks read from /proc.
#pragma once

#include <sys/types.h>

namespace kiso::testing {

// Resident set size of `pid` (0: this process) in MiB; 0 if it cannot be read.
double RssMb(pid_t pid = 0);

}  // namespace kiso::testing
