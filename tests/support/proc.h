// Facts about running processes that tests and benchmarks read from /proc.
#pragma once

#include <sys/types.h>

#include <string>

namespace kiso::testing {

// Resident set size of `pid` (0: this process) in MiB; 0 if it cannot be read.
double RssMb(pid_t pid = 0);
// Threads of `pid` (0: this process); 0 if it cannot be read.
int Threads(pid_t pid = 0);
// A field of /proc/PID/smaps_rollup (0: this process) in MB ("Pss",
// "Private_Dirty"): the process's share of the pages it maps, and the pages
// only it has written.
double SmapsMb(pid_t pid, const std::string& field);
// The pages only the process has (Private_Clean + Private_Dirty), in MB.
double PrivateMb(pid_t pid);
// CPU time (user + system) `pid` has used so far, in milliseconds; 0 if it cannot be read.
double CpuMs(pid_t pid);

}  // namespace kiso::testing
