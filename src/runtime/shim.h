// The shim (conmon's role): one small process per container, outliving the
// agent. It creates the container through the OCI runtime with pipes as its
// stdout and stderr, becomes the container's parent (a child subreaper), copies
// its output into a CRI-format log file, reaps it, and records the exit code,
// time and OOM kill in <bundle>/exit.json.
#pragma once

#include <string>

namespace kiso::runtime {

struct ShimOptions {
  std::string id;
  std::string bundle;
  std::string runtime_path;  // /usr/sbin/runc
  std::string runtime_root;  // --root for the runtime's state.
  std::string log_path;
  std::string cgroup;  // cgroupsPath, to read OOM kills from.
  int sync_fd = -1;    // "ok PID\n" or "error MESSAGE\n" once created, then closed.
};

// Runs the shim in this process; returns its exit code.
int RunShim(const ShimOptions& options);

}  // namespace kiso::runtime
