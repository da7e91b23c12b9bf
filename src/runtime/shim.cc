#include "runtime/shim.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/unix_socket.h"

namespace kiso::runtime {

namespace {

int g_sigchld_pipe = -1;

void OnSigchld(int /*sig*/) {
  char c = 0;
  [[maybe_unused]] ssize_t n = write(g_sigchld_pipe, &c, 1);
}

void Report(int fd, const std::string& line) {
  if (fd < 0) return;
  [[maybe_unused]] ssize_t n = write(fd, line.data(), line.size());
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The runtime's last error, from its --log file (logrus JSON lines or text).
std::string RuntimeError(const std::string& log, const std::string& stderr_text) {
  std::istringstream lines(Slurp(log));
  std::string line;
  std::string last;
  while (std::getline(lines, line)) {
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (!ec && v.is_object() && v.as_object().contains("msg") &&
        v.as_object().at("msg").is_string()) {
      last = std::string(v.as_object().at("msg").get_string());
    } else if (!line.empty()) {
      last = line;
    }
  }
  if (last.empty()) last = stderr_text;
  while (!last.empty() && (last.back() == '\n' || last.back() == '\r')) last.pop_back();
  return last.empty() ? "the OCI runtime failed without a message" : last;
}

// CRI log lines: "<RFC3339Nano> <stream> <F|P> <text>\n"; P marks a partial
// line. Rotated as the kubelet rotates container logs (see ShimOptions).
class LogWriter {
 public:
  LogWriter(std::string path, int64_t max_size, int max_files)
      : path_(std::move(path)), max_size_(max_size), max_files_(max_files) {
    Open();
  }
  ~LogWriter() {
    if (fd_ >= 0) close(fd_);
  }
  void Add(const char* stream, std::string& pending, std::string_view data, bool eof) {
    pending.append(data);
    size_t start = 0;
    while (true) {
      size_t nl = pending.find('\n', start);
      if (nl == std::string::npos) break;
      Line(stream, "F", std::string_view(pending).substr(start, nl - start));
      start = nl + 1;
    }
    pending.erase(0, start);
    // What came without a newline is logged at once as partial lines (a
    // prompt shows in attach and logs -f without waiting for its line's end).
    constexpr size_t kMaxLine = size_t{16} * 1024;
    for (size_t at = 0; at < pending.size(); at += kMaxLine) {
      std::string_view piece = std::string_view(pending).substr(at, kMaxLine);
      Line(stream, eof && at + kMaxLine >= pending.size() ? "F" : "P", piece);
    }
    pending.clear();
  }
  // A line of the shim's own (a failure after the container started): in the log, as stderr.
  void Note(std::string_view text) { Line("stderr", "F", text); }

 private:
  void Open() {
    fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st {};
    size_ = fd_ >= 0 && fstat(fd_, &st) == 0 ? st.st_size : 0;
  }

  void Line(const char* stream, const char* tag, std::string_view text) {
    std::string line = fmt::format("{} {} {} {}\n", NowRfc3339Nano(), stream, tag, text);
    if (fd_ < 0) Open();  // A failed open or rotation is tried again with the next line.
    if (fd_ < 0) return;
    size_t done = 0;
    while (done < line.size()) {
      ssize_t n = write(fd_, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // Disk full: the line is lost, the container goes on.
      done += static_cast<size_t>(n);
    }
    size_ += static_cast<int64_t>(done);
    if (max_size_ > 0 && size_ >= max_size_) Rotate();
  }

  // LOG → LOG.<time> (a counter after it if that is taken), then the oldest
  // rotated files go until max_files remain with the new LOG.
  void Rotate() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    std::string rotated = path_ + "." + stamp;
    for (int i = 1; access(rotated.c_str(), F_OK) == 0; ++i)
      rotated = fmt::format("{}.{}.{}", path_, stamp, i);
    if (rename(path_.c_str(), rotated.c_str()) != 0) return;  // Tried again after the next line.
    close(fd_);
    fd_ = -1;
    Open();
    std::string dir = path_.substr(0, path_.rfind('/'));
    std::string prefix = path_.substr(path_.rfind('/') + 1) + ".";
    std::vector<std::string> old;
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        if (std::string_view(e->d_name).starts_with(prefix)) old.emplace_back(e->d_name);
      }
      closedir(d);
    }
    std::sort(old.begin(), old.end());  // Oldest first: the time stamps sort as text.
    for (size_t i = 0; i + static_cast<size_t>(std::max(1, max_files_)) <= old.size(); ++i)
      unlink((dir + "/" + old[i]).c_str());
  }

  std::string path_;
  int64_t max_size_;
  int max_files_;
  int fd_ = -1;
  int64_t size_ = 0;
};

bool OomKilled(const std::string& cgroup) {
  for (const std::string& file : {"/sys/fs/cgroup/memory" + cgroup + "/memory.oom_control",
                                  "/sys/fs/cgroup" + cgroup + "/memory.events"}) {
    std::istringstream in(Slurp(file));
    std::string key;
    long long value = 0;
    while (in >> key >> value) {
      if (key == "oom_kill" && value > 0) return true;
    }
  }
  return false;
}

// Serves attach clients. Each first gets one byte: 't' with the terminal's
// master attached (a container with a terminal: the client writes to it and
// resizes it itself), or 'p', and then what it writes goes into the
// container's stdin pipe without ever blocking the shim's loop: while bytes
// wait for the pipe, no more are read from the clients.
class StdinPump {
 public:
  StdinPump(int pipe, int listener, bool once, int master)
      : pipe_(pipe), listener_(listener), once_(once), socket_(listener >= 0), master_(master) {
    if (pipe_ >= 0) fcntl(pipe_, F_SETFL, O_NONBLOCK);
    if (listener_ >= 0) fcntl(listener_, F_SETFL, O_NONBLOCK);
  }
  ~StdinPump() {
    for (int c : clients_) close(c);
    if (listener_ >= 0) close(listener_);
    if (pipe_ >= 0) close(pipe_);
    if (socket_) unlink(kAttachSocket);  // cwd: the bundle.
  }
  void AddPollFds(std::vector<pollfd>& p) {
    first_ = p.size();
    p.push_back({listener_, POLLIN, 0});
    p.push_back({pending_.empty() ? -1 : pipe_, POLLOUT, 0});
    for (int c : clients_) p.push_back({pending_.empty() ? c : -1, POLLIN, 0});
  }
  void OnPoll(const std::vector<pollfd>& p) {
    Flush();
    std::vector<int> keep;
    for (size_t i = 0; i + first_ + 2 < p.size(); ++i) {
      int c = p[first_ + 2 + i].fd;
      if (c < 0) {
        keep.push_back(clients_[i]);
        continue;
      }
      if (!(p[first_ + 2 + i].revents & (POLLIN | POLLHUP | POLLERR))) {
        keep.push_back(c);
        continue;
      }
      char buf[16384];
      ssize_t n = read(c, buf, sizeof buf);
      if (n > 0) {
        pending_.append(buf, static_cast<size_t>(n));
        keep.push_back(c);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        keep.push_back(c);
      } else {
        close(c);
        if (once_) closing_ = true;  // stdinOnce: the first attach's end is stdin's end.
      }
    }
    clients_ = std::move(keep);
    if (listener_ >= 0 && (p[first_].revents & POLLIN)) {
      int c = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0 && master_ >= 0) {
        (void)SendFd(c, 't', master_);
        close(c);
      } else if (c >= 0) {
        (void)SendFd(c, 'p', -1);
        clients_.push_back(c);
      }
    }
    Flush();
  }

 private:
  void Flush() {
    while (!pending_.empty() && pipe_ >= 0) {
      ssize_t n = write(pipe_, pending_.data(), pending_.size());
      if (n > 0) {
        pending_.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        return;
      } else {
        pending_.clear();  // The container closed its stdin.
        closing_ = true;
      }
    }
    if (closing_ && pending_.empty()) {
      for (int c : clients_) close(c);
      clients_.clear();
      if (listener_ >= 0) close(listener_);
      if (pipe_ >= 0) close(pipe_);
      listener_ = pipe_ = -1;
    }
  }

  int pipe_;
  int listener_;
  bool once_;
  bool socket_;
  int master_;  // The terminal's master (not ours to close), or -1.
  bool closing_ = false;
  std::string pending_;
  std::vector<int> clients_;
  size_t first_ = 0;  // Its first entry in the poll set.
};

}  // namespace

int RunShim(const ShimOptions& o) {
  auto fail = [&](std::string_view what) {
    Report(o.sync_fd, fmt::format("error shim: {}: {}\n", what, strerror(errno)));
    return 1;
  };
  // The container's process becomes our child when runc exits: without
  // this its exit would be nobody's to record.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return fail("prctl(PR_SET_CHILD_SUBREAPER)");
  {
    std::ofstream pid_file(o.bundle + "/shim.pid");  // Who will record the exit.
    pid_file << getpid();
    if (!pid_file.flush()) return fail("write shim.pid");
  }
  int chld[2];
  if (pipe2(chld, O_CLOEXEC | O_NONBLOCK) != 0) return fail("pipe");
  g_sigchld_pipe = chld[1];
  struct sigaction sa {};
  sa.sa_handler = OnSigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  if (sigaction(SIGCHLD, &sa, nullptr) != 0) return fail("sigaction(SIGCHLD)");
  if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || signal(SIGHUP, SIG_IGN) == SIG_ERR)
    return fail("signal");

  int out[2];
  int err[2];
  int in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
      (o.stdin_open && pipe2(in, O_CLOEXEC) != 0)) {
    Report(o.sync_fd, "error pipe\n");
    return 1;
  }
  // Relative socket names from here on: bundle paths can outgrow an address.
  if (chdir(o.bundle.c_str()) != 0) {
    Report(o.sync_fd, fmt::format("error chdir {}: {}\n", o.bundle, strerror(errno)));
    return 1;
  }
  int listener = -1;
  int console = -1;
  for (auto [wanted, name, fd] : {std::tuple{o.stdin_open, kAttachSocket, &listener},
                                  std::tuple{o.tty, kConsoleSocket, &console}}) {
    if (!wanted) continue;
    auto l = ListenUnix(o.bundle, name);
    if (!l.ok()) {
      Report(o.sync_fd, "error " + l.status().message() + "\n");
      return 1;
    }
    *fd = *l;
  }
  std::string runtime_log = o.bundle + "/runtime.log";
  std::string pid_file = o.bundle + "/init.pid";
  std::vector<const char*> argv = {o.runtime_path.c_str(),
                                   "--root",
                                   o.runtime_root.c_str(),
                                   "--log",
                                   runtime_log.c_str(),
                                   "--log-format",
                                   "json",
                                   o.start ? "run" : "create",
                                   "--bundle",
                                   o.bundle.c_str(),
                                   "--pid-file",
                                   pid_file.c_str()};
  if (o.start) argv.emplace_back("--detach");
  // With a terminal, runc hands its master to us through this socket.
  if (o.tty) argv.insert(argv.end(), {"--console-socket", kConsoleSocket});
  argv.push_back(o.id.c_str());
  argv.push_back(nullptr);
  pid_t runtime = fork();
  if (runtime < 0) return fail("fork");
  if (runtime == 0) {
    dup2(o.stdin_open && !o.tty ? in[0] : open("/dev/null", O_RDONLY), 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    close_range(3, ~0U, 0);
    execv(argv[0], const_cast<char* const*>(argv.data()));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  if (in[0] >= 0) close(in[0]);
  if (o.tty && in[1] >= 0) {  // A terminal is its stdin: no pipe to hold.
    close(in[1]);
    in[1] = -1;
  }
  int status = 0;
  while (waitpid(runtime, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // Whatever the runtime printed is in the pipes; its log has the reason.
    char buf[4096];
    std::string text;
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    ssize_t n = read(err[0], buf, sizeof buf);
    if (n > 0) text.assign(buf, static_cast<size_t>(n));
    Report(o.sync_fd, "error " + RuntimeError(runtime_log, text) + "\n");
    return 1;
  }
  int master = -1;
  if (console >= 0) {
    int c = accept4(console, nullptr, nullptr, SOCK_CLOEXEC);
    auto got = c >= 0 ? ReceiveFd(c, std::chrono::seconds(10))
                      : Result<Received>(Status(Code::kUnavailable, strerror(errno)));
    if (c >= 0) close(c);
    close(console);
    unlink(kConsoleSocket);
    if (!got.ok() || got->fd < 0) {
      Report(o.sync_fd, fmt::format("error the container's terminal did not arrive: {}\n",
                                    got.ok() ? "no descriptor" : got.status().message()));
      return 1;
    }
    master = got->fd;
  }
  pid_t pid = 0;
  {
    std::ifstream in(pid_file);
    in >> pid;
  }
  if (pid <= 0) {
    // Without the process's pid its exit could never be told from any other
    // child's: the container is removed and the create fails.
    std::vector<const char*> del = {
        o.runtime_path.c_str(), "--root", o.runtime_root.c_str(), "delete", "--force",
        o.id.c_str(),           nullptr};
    if (pid_t d = fork(); d == 0) {
      close_range(3, ~0U, 0);
      execv(del[0], const_cast<char* const*>(del.data()));
      _exit(127);
    } else if (d > 0) {
      while (waitpid(d, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    Report(o.sync_fd,
           fmt::format("error the runtime created {} but wrote no pid to {}\n", o.id, pid_file));
    return 1;
  }
  Report(o.sync_fd, fmt::format("ok {}\n", pid));
  if (o.sync_fd >= 0) close(o.sync_fd);

  LogWriter log(o.log_path, o.log_max_size, o.log_max_files);
  StdinPump stdin_pump(o.tty ? -1 : in[1], listener, o.stdin_once, master);
  std::string pending_out;
  std::string pending_err;
  bool exited = false;
  int exit_status = 0;
  // With a terminal, its output is the container's stdout.
  int fds[2] = {master >= 0 ? master : out[0], err[0]};
  if (master >= 0) close(out[0]);
  while (!exited || fds[0] >= 0 || fds[1] >= 0) {
    std::vector<pollfd> p = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}, {chld[0], POLLIN, 0}};
    stdin_pump.AddPollFds(p);
    if (poll(p.data(), p.size(), -1) < 0 && errno != EINTR) break;
    stdin_pump.OnPoll(p);
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(p[i].fd, buf, sizeof buf);
      bool eof = n == 0 || (n < 0 && errno != EINTR);
      log.Add(i == 0 ? "stdout" : "stderr", i == 0 ? pending_out : pending_err,
              n > 0 ? std::string_view(buf, static_cast<size_t>(n)) : std::string_view(), eof);
      if (eof) {
        close(fds[i]);
        fds[i] = -1;
      }
    }
    if (p[2].revents & POLLIN) {
      while (read(chld[0], buf, sizeof buf) > 0) {
      }
    }
    // Reap every child (the container and anything reparented to us).
    while (true) {
      int st = 0;
      pid_t r = waitpid(-1, &st, WNOHANG);
      if (r <= 0) break;
      if (r == pid) {
        exited = true;
        exit_status = st;
      }
    }
  }
  int code = WIFEXITED(exit_status) ? WEXITSTATUS(exit_status) : 128 + WTERMSIG(exit_status);
  boost::json::object exit{{"exit_code", code},
                           {"signal", WIFSIGNALED(exit_status) ? WTERMSIG(exit_status) : 0},
                           {"finished_at", NowRfc3339()},
                           {"oom_killed", OomKilled(o.cgroup)}};
  // The exit must be recorded, or the container would stay "running" with no
  // process: written durably, and retried while the disk refuses.
  std::string text = boost::json::serialize(exit);
  std::string tmp = o.bundle + "/exit.json.tmp";
  for (int attempt = 0;; ++attempt) {
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              fsync(fd) == 0;
    if (fd >= 0) close(fd);
    if (ok && rename(tmp.c_str(), (o.bundle + "/exit.json").c_str()) == 0) return 0;
    const int why = errno;
    // The bundle is gone: the container was removed (a forced delete ends the
    // process and removes the bundle at once), and nobody is left to tell.
    if (struct stat st{}; stat(o.bundle.c_str(), &st) != 0 && errno == ENOENT) return 0;
    if (attempt == 0)
      log.Note(fmt::format("kiso-shim: recording the exit failed: {}", strerror(why)));
    if (attempt >= 600) return 1;  // Ten minutes: the agent then sees the container as unknown.
    usleep(1000 * 1000);
  }
}

}  // namespace kiso::runtime
