// Crash points for fault-injection tests: a process started with
// KISO_CRASH_AT=name[,name…] kills itself (SIGKILL, as a crash or a power cut
// of the process would) the first time it reaches a point of that name. The
// node's pod start names each step ("sandbox", "cni", "cni-cached",
// "container-created", "container-started"), so tests can check that a
// restarted agent converges from any of them with nothing leaked. Without
// the variable a point costs one load of a flag.
#pragma once

#include <string_view>

namespace kiso {

void CrashPoint(std::string_view name);

}  // namespace kiso
