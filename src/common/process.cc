#include "common/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <fstream>
#include <string_view>

extern char** environ;

namespace kiso {

namespace {

// argv as posix_spawn takes it: pointers into `argv`, null-terminated.
std::vector<char*> Argv(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  return args;
}

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (pipe2(fd, O_CLOEXEC) != 0) fd[0] = fd[1] = -1;
  }
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
  void CloseRead() {
    if (fd[0] >= 0) close(fd[0]);
    fd[0] = -1;
  }
  void CloseWrite() {
    if (fd[1] >= 0) close(fd[1]);
    fd[1] = -1;
  }
};

}  // namespace

Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const CommandOptions& options) {
  if (argv.empty()) return Status(Code::kInvalidArgument, "run: empty command");
  Pipe in;
  Pipe out;
  Pipe err;
  if (in.fd[0] < 0 || out.fd[0] < 0 || err.fd[0] < 0) {
    return MakeStatus(Code::kResourceExhausted, "run {}: pipe: {}", argv[0], strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
  if (options.capture_output) {
    posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  }
  // Only stdio: descriptors without close-on-exec (sockets…) must not leak into helpers.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<char*> args = Argv(argv);
  std::vector<std::string> env_storage;
  if (!options.clear_env) {
    for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  }
  for (const auto& [k, v] : options.env) env_storage.push_back(fmt::format("{}={}", k, v));
  std::vector<char*> env;
  env.reserve(env_storage.size() + 1);
  for (auto& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return MakeStatus(Code::kNotFound, "run {}: {}", argv[0], strerror(rc));
  in.CloseRead();
  out.CloseWrite();
  err.CloseWrite();
  // Feed stdin, collect stdout and stderr, until both close or the deadline.
  CommandResult result;
  size_t written = 0;
  if (options.stdin_data.empty()) in.CloseWrite();
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  bool timed_out = false;
  while (out.fd[0] >= 0 || err.fd[0] >= 0) {
    pollfd fds[3] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}, {in.fd[1], POLLOUT, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (poll(fds, 3, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        (i == 0 ? out : err).CloseRead();
      }
    }
    if (fds[2].fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n =
          write(in.fd[1], options.stdin_data.data() + written, options.stdin_data.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == options.stdin_data.size()) in.CloseWrite();
    }
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return MakeStatus(Code::kDeadlineExceeded, "{} did not finish within {} ms", argv[0],
                      options.timeout.count());
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

Result<ChildProcess> StartCommand(const std::vector<std::string>& argv, bool with_stdin) {
  if (argv.empty()) return Status(Code::kInvalidArgument, "start: empty command");
  int in[2] = {-1, -1};
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  if ((with_stdin && pipe2(in, O_CLOEXEC) != 0) || pipe2(out, O_CLOEXEC) != 0 ||
      pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
      if (fd >= 0) close(fd);
    }
    return MakeStatus(Code::kResourceExhausted, "start {}: pipe: {}", argv[0], strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (with_stdin) {
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<char*> args = Argv(argv);
  ChildProcess child;
  int rc = posix_spawn(&child.pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  for (int fd : {in[0], out[1], err[1]}) {
    if (fd >= 0) close(fd);
  }
  if (rc != 0) {
    for (int fd : {in[1], out[0], err[0]}) {
      if (fd >= 0) close(fd);
    }
    return MakeStatus(Code::kNotFound, "start {}: {}", argv[0], strerror(rc));
  }
  child.stdin_fd = in[1];
  child.stdout_fd = out[0];
  child.stderr_fd = err[0];
  return child;
}

Result<ChildProcess> StartOnTerminal(const std::vector<std::string>& argv, uint16_t cols,
                                     uint16_t rows) {
  if (argv.empty()) return Status(Code::kInvalidArgument, "start: empty command");
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  char name[128];
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
      ptsname_r(master, name, sizeof name) != 0) {
    int error = errno;
    if (master >= 0) close(master);
    return MakeStatus(Code::kResourceExhausted, "start {}: a pseudo-terminal: {}", argv[0],
                      strerror(error));
  }
  ResizeTerminal(master, cols, rows);
  // A session leader without a terminal acquires the first one it opens.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, name, O_RDWR, 0);
  posix_spawn_file_actions_adddup2(&actions, 0, 1);
  posix_spawn_file_actions_adddup2(&actions, 0, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<char*> args = Argv(argv);
  ChildProcess child;
  int rc = posix_spawn(&child.pid, argv[0].c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    close(master);
    return MakeStatus(Code::kNotFound, "start {}: {}", argv[0], strerror(rc));
  }
  child.stdin_fd = master;
  child.stdout_fd = fcntl(master, F_DUPFD_CLOEXEC, 0);
  child.tty_fd = fcntl(master, F_DUPFD_CLOEXEC, 0);
  return child;
}

void ResizeTerminal(int tty_fd, uint16_t cols, uint16_t rows) {
  if (cols == 0 || rows == 0) return;
  winsize size{};
  size.ws_col = cols;
  size.ws_row = rows;
  ioctl(tty_fd, TIOCSWINSZ, &size);
}

int WaitProcess(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> CommandLineOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> out;
  std::string arg;
  while (std::getline(in, arg, '\0')) out.push_back(arg);
  return out;
}

std::vector<pid_t> ListProcesses() {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    std::string_view name = e->d_name;
    if (!name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c)) != 0;
        }))
      out.push_back(static_cast<pid_t>(std::stol(std::string(name))));
  }
  closedir(proc);
  return out;
}

}  // namespace kiso
