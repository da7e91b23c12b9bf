// A child process for tests: started with a pipe on its stdout, killed
// (SIGKILL) and reaped when the object goes away, and killed by the kernel if
// the test process itself dies (PR_SET_PDEATHSIG), so nothing is left behind.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace kiso::testing {

class Subprocess {
 public:
  // Starts argv[0] (searched in PATH) with `argv`. stdout is piped when
  // `capture_stdout`; stderr goes to `stderr_path` if given, else is inherited.
  Subprocess(const std::vector<std::string>& argv, bool capture_stdout,
             const std::string& stderr_path = "");
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // Reads one line of the child's stdout (without '\n'); false at EOF.
  bool ReadLine(std::string* line);
  // Sends `signal` and reaps the child. Returns the wait status.
  int Kill(int signal);
  // Waits for the child to exit. Returns the wait status.
  int Wait();
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
};

}  // namespace kiso::testing
