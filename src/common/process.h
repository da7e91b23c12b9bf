// Running helper programs (runc, unshare, CNI plugins): argv in, exit status
// and captured output back, with a deadline. The seam through which the
// runtime and the network touch other programs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiso {

struct CommandResult {
  int exit_code = 0;  // 128 + signal when killed by one.
  std::string out;
  std::string err;
};

struct CommandOptions {
  std::string stdin_data;
  std::chrono::milliseconds timeout{30000};  // Then SIGKILL, DeadlineExceeded.
  std::map<std::string, std::string> env;    // Added to the environment.
  bool clear_env = false;                    // Start from an empty environment.
  // Whether to collect stdout and stderr. Without, they go to /dev/null, and a
  // child that leaves a process holding them (runc run -d) does not hold us up.
  bool capture_output = true;
};

// Runs argv[0] (a path) to completion. Fails only if it could not be run or
// timed out; a non-zero exit is in the result.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const CommandOptions& options = {});

// A started child with pipes on its standard streams (the caller owns the fds).
struct ChildProcess {
  pid_t pid = -1;
  int stdin_fd = -1;  // -1 when started without stdin (/dev/null).
  int stdout_fd = -1;
  int stderr_fd = -1;
  int tty_fd = -1;  // StartOnTerminal: the terminal's master, to resize it.
};
Result<ChildProcess> StartCommand(const std::vector<std::string>& argv, bool with_stdin);
// Starts argv[0] in a new session whose controlling terminal is a fresh
// pseudo-terminal of `cols` x `rows`: stdin and stdout are the master's
// (stderr is merged into stdout, as on any terminal; stderr_fd is -1).
Result<ChildProcess> StartOnTerminal(const std::vector<std::string>& argv, uint16_t cols,
                                     uint16_t rows);
// Sets a terminal's size (its session's foreground gets SIGWINCH).
void ResizeTerminal(int tty_fd, uint16_t cols, uint16_t rows);
// Waits for `pid`; its exit code, or 128 + the signal that ended it.
int WaitProcess(pid_t pid);

// The command line of a running process (/proc/PID/cmdline); empty if it is gone.
std::vector<std::string> CommandLineOf(pid_t pid);
// Every process running now.
std::vector<pid_t> ListProcesses();

}  // namespace kiso
