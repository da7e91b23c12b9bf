// kiso-wasm as an OCI runtime (the command line runc and crun have), so that
// RuntimeClass `wasm` runs through the same shim, logs, exit records and
// reset as every other handler: `create` reads the bundle's config.json —
// process.args[0] is the module, found inside the image's root file system
// (openat2 RESOLVE_IN_ROOT), the other args its arguments, process.env its
// environment, process.user its identity, every directory bind mount (the
// pod's volumes) a preopened directory (an "ro" one read-only to the kernel,
// in the process's own mount namespace), linux.resources its memory limit
// (the engine's maximum pages) and CPU (the cgroup's) —
// and forks the container's process: in the sandbox's network, IPC and UTS
// namespaces and its own cgroups, it waits for `start` on a FIFO, then runs
// the module. `state`, `kill` and `delete` as runc's; `exec` is refused
// (a WebAssembly module has no processes to start), as is a terminal.
// State lives in --root/<id>: state.json and, until started, exec.fifo.
#pragma once

#include <string>
#include <vector>

namespace kiso::runtime::wasm {

// Whether `args` (argv without the program) is an OCI runtime command line.
bool IsOciCommand(const std::vector<std::string>& args);

// Runs one OCI runtime command; returns the process's exit code.
int OciMain(const std::vector<std::string>& args);

}  // namespace kiso::runtime::wasm
