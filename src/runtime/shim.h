// The shim (conmon's role): one small process per container, outliving the
// agent. It creates (or creates and starts) the container through the OCI
// runtime with pipes as its stdout and stderr, becomes the container's parent
// (a child subreaper), copies its output into a CRI-format log file, reaps it,
// and records the exit code, time and OOM kill in <bundle>/exit.json. For a container with stdin
// (spec.containers[].stdin) it holds the write end of the container's stdin
// pipe and takes writers on <bundle>/attach.sock (mode 0600): pods/attach.
// With stdin_once the pipe closes when the first writer leaves. With tty the
// container runs on a terminal whose master the shim holds: its output is
// logged as stdout, and attach clients are handed the master itself.
// Every system call's failure is reported: before the container runs, on the
// sync pipe (the create fails with the cause); after, to the log file.
#pragma once

#include <cstdint>
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
  bool stdin_open = false;
  bool stdin_once = false;
  bool tty = false;  // The container has a terminal: its master is held here.
  // Create and start the container in one runtime process (`run --detach`),
  // not create it only (`create`, leaving `start` to the caller).
  bool start = false;
  // Log rotation, as the kubelet's containerLogMaxSize and containerLogMaxFiles:
  // past max_size the log is renamed to LOG.<YYYYMMDD-hhmmss> and a new one
  // begun; at most max_files files are kept, the current one included.
  int64_t log_max_size = int64_t{10} << 20;
  int log_max_files = 5;
};

// The socket a stdin-enabled container's shim listens on, in its bundle.
inline constexpr const char* kAttachSocket = "attach.sock";
// Where runc sends the terminal's master during create (`--console-socket`).
inline constexpr const char* kConsoleSocket = "console.sock";

// Runs the shim in this process; returns its exit code.
int RunShim(const ShimOptions& options);

}  // namespace kiso::runtime
