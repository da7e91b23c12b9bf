#include "runtime/wasm/oci.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/file.h"
#include "runtime/wasm/engine.h"

namespace kiso::runtime::wasm {

namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kVersion = "kiso-wasm version 1 (wabt's interpreter, WASI preview 1)";
// The cgroup controllers a wasm container joins (v1 hierarchies, or the
// unified hierarchy on a v2 host): what its limits and statistics need.
constexpr const char* kControllers[] = {"cpu", "cpuacct", "memory", "pids"};

struct Globals {
  std::string root = "/run/kiso-wasm";
  std::string log;
};

// An error as runc reports it: on stderr, and as a JSON line in --log.
int Fail(const Globals& g, const std::string& message) {
  if (!g.log.empty()) {
    std::ofstream log(g.log, std::ios::app);
    log << json::serialize(json::object{{"level", "error"}, {"msg", message}}) << "\n";
  }
  std::fprintf(stderr, "kiso-wasm: %s\n", message.c_str());
  return 1;
}

// A file's bytes, "" when it cannot be read (a state file not written yet).
std::string Contents(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? std::move(*r) : std::string();
}

bool WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return static_cast<bool>(out.flush());
}

// Alive and not a zombie waiting for its parent.
bool Alive(pid_t pid) {
  if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM)) return false;
  std::string stat = Contents(fmt::format("/proc/{}/stat", pid));
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

// The value at a JSON pointer ("/process/args"), or null.
const json::value* At(const json::value& v, std::string_view pointer) {
  std::error_code ec;
  return v.find_pointer(pointer, ec);
}

std::string StringAt(const json::value& v, std::string_view pointer) {
  const auto* s = At(v, pointer);
  return s && s->is_string() ? std::string(s->get_string()) : "";
}

int64_t IntAt(const json::value& v, std::string_view pointer) {
  const auto* n = At(v, pointer);
  if (!n) return 0;
  if (n->is_int64()) return n->get_int64();
  if (n->is_uint64()) return static_cast<int64_t>(n->get_uint64());
  return 0;
}

struct Container {
  pid_t pid = 0;
  std::string bundle;
  std::vector<std::string> cgroups;
};

std::optional<Container> Load(const Globals& g, const std::string& id) {
  boost::system::error_code ec;
  auto v = json::parse(Contents(g.root + "/" + id + "/state.json"), ec);
  if (ec || !v.is_object()) return std::nullopt;
  Container c;
  c.pid = static_cast<pid_t>(IntAt(v, "/pid"));
  c.bundle = StringAt(v, "/bundle");
  if (const auto* cgs = At(v, "/cgroups"); cgs && cgs->is_array()) {
    for (const auto& cg : cgs->get_array()) {
      if (cg.is_string()) c.cgroups.emplace_back(cg.get_string());
    }
  }
  return c;
}

// The cgroups of `path` ("/kiso/<id>") in the hierarchies kiso-wasm joins.
std::vector<std::string> CgroupDirs(const std::string& path) {
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::exists("/sys/fs/cgroup/cgroup.controllers", ec)) {  // cgroup v2 only.
    out.push_back("/sys/fs/cgroup" + path);
    return out;
  }
  for (const char* c : kControllers) {
    std::string h = std::string("/sys/fs/cgroup/") + c;
    if (fs::exists(h + "/cgroup.procs", ec)) out.push_back(fs::canonical(h, ec).string() + path);
  }
  std::sort(out.begin(), out.end());  // cpu and cpuacct may be one hierarchy.
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Makes the container's cgroups and writes the spec's CPU limits into them.
// The memory limit is the engine's (the module's maximum memory): a cgroup
// limit would kill the process while the interpreter copies a growing memory,
// where the module should see memory.grow fail.
std::string MakeCgroups(const json::value& spec, const std::vector<std::string>& dirs) {
  int64_t shares = IntAt(spec, "/linux/resources/cpu/shares");
  int64_t quota = IntAt(spec, "/linux/resources/cpu/quota");
  int64_t period = IntAt(spec, "/linux/resources/cpu/period");
  for (const auto& dir : dirs) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return fmt::format("cgroup {}: {}", dir, ec.message());
    auto write = [&](const char* file, const std::string& value) {
      std::string p = dir + "/" + file;
      if (fs::exists(p, ec)) WriteText(p, value);
    };
    if (shares > 0) {
      write("cpu.shares", std::to_string(shares));
      // cgroup v2's weight from shares, as runc converts it.
      write("cpu.weight", std::to_string(1 + ((shares - 2) * 9999) / 262142));
    }
    if (quota > 0) {
      if (period <= 0) period = 100000;
      write("cpu.cfs_period_us", std::to_string(period));
      write("cpu.cfs_quota_us", std::to_string(quota));
      write("cpu.max", fmt::format("{} {}", quota, period));
    }
  }
  return "";
}

void RemoveCgroups(const std::vector<std::string>& dirs) {
  for (const auto& dir : dirs) rmdir(dir.c_str());
}

int Signal(const std::string& s) {
  if (!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit)) return std::atoi(s.c_str());
  std::string name = s.starts_with("SIG") ? s.substr(3) : s;
  static const std::pair<const char*, int> kNames[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"STOP", SIGSTOP},
      {"CONT", SIGCONT}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"WINCH", SIGWINCH}};
  for (const auto& [n, sig] : kNames) {
    if (name == n) return sig;
  }
  return -1;
}

// The module inside the image's root file system, looked up as the
// container would see it (symbolic links resolved within the root).
Result<int> OpenModule(const std::string& rootfs, const std::string& path) {
  int root = open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return MakeStatus(Code::kNotFound, "root {}: {}", rootfs, strerror(errno));
  struct open_how how {};
  how.flags = O_RDONLY;  // Inherited by the container's process: no close-on-exec needed there.
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, root, path.c_str(), &how, sizeof(how));
  int e = errno;
  close(root);
  if (fd < 0) {
    return MakeStatus(Code::kNotFound, "the module {} is not in the image: {}", path, strerror(e));
  }
  char magic[4] = {};
  if (pread(static_cast<int>(fd), magic, 4, 0) != 4 || std::memcmp(magic, "\0asm", 4) != 0) {
    close(static_cast<int>(fd));
    return MakeStatus(Code::kInvalidArgument,
                      "{} is not a WebAssembly module (the wasm runtime runs WASI modules only)",
                      path);
  }
  return static_cast<int>(fd);
}

int Create(const Globals& g, const std::vector<std::string>& args) {
  std::string bundle = ".", pid_file, id;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() { return i + 1 < args.size() ? args[++i] : std::string(); };
    if (a == "--bundle" || a == "-b") {
      bundle = value();
    } else if (a == "--pid-file") {
      pid_file = value();
    } else if (a == "--console-socket") {
      return Fail(g, "a terminal (tty: true) is not supported by the wasm runtime");
    } else if (a.starts_with("-")) {
      return Fail(g, "create: unknown flag " + a);
    } else {
      id = a;
    }
  }
  if (id.empty()) return Fail(g, "create: no container id");
  boost::system::error_code ec;
  json::value spec = json::parse(Contents(bundle + "/config.json"), ec);
  if (ec || !spec.is_object()) return Fail(g, "create: " + bundle + "/config.json is not JSON");
  if (const auto* t = At(spec, "/process/terminal"); t && t->is_bool() && t->get_bool())
    return Fail(g, "a terminal (tty: true) is not supported by the wasm runtime");

  WasmOptions options;
  if (const auto* a = At(spec, "/process/args"); a && a->is_array()) {
    for (const auto& s : a->get_array()) {
      if (s.is_string()) options.wasi.args.emplace_back(s.get_string());
    }
  }
  if (options.wasi.args.empty()) return Fail(g, "create: process.args is empty: no module to run");
  if (const auto* e = At(spec, "/process/env"); e && e->is_array()) {
    for (const auto& s : e->get_array()) {
      if (s.is_string()) options.wasi.env.emplace_back(s.get_string());
    }
  }
  // Directory bind mounts are the pod's volumes: the module's preopened
  // directories. Those mounted "ro" are made read-only for the container's
  // process by the kernel (a bind mount of each onto itself, remounted
  // read-only, in a mount namespace of its own), so that no WASI call writes
  // there, as none does in a runc container's read-only volume.
  std::vector<std::string> read_only;
  if (const auto* mounts = At(spec, "/mounts"); mounts && mounts->is_array()) {
    for (const auto& m : mounts->get_array()) {
      std::string type = StringAt(m, "/type"), source = StringAt(m, "/source");
      std::error_code fec;
      if (type != "bind" || !fs::is_directory(source, fec)) continue;
      options.wasi.preopens.push_back({source, StringAt(m, "/destination")});
      if (const auto* o = At(m, "/options"); o && o->is_array()) {
        const auto& opts = o->get_array();
        if (std::find(opts.begin(), opts.end(), json::value("ro")) != opts.end())
          read_only.push_back(source);
      }
    }
  }
  int64_t memory = IntAt(spec, "/linux/resources/memory/limit");
  if (memory > 0) options.max_memory_bytes = static_cast<uint64_t>(memory);
  std::string rootfs = StringAt(spec, "/root/path");
  if (!rootfs.starts_with("/")) rootfs = bundle + "/" + rootfs;
  auto module = OpenModule(rootfs, options.wasi.args[0]);
  if (!module.ok()) return Fail(g, module.status().message());
  options.module = fmt::format("/proc/self/fd/{}", *module);
  // The sandbox's namespaces, opened now so that a missing one fails the create.
  std::vector<int> namespaces;
  if (const auto* ns = At(spec, "/linux/namespaces"); ns && ns->is_array()) {
    for (const auto& n : ns->get_array()) {
      std::string type = StringAt(n, "/type"), path = StringAt(n, "/path");
      if (path.empty() || (type != "network" && type != "ipc" && type != "uts")) continue;
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Fail(g, fmt::format("{} namespace {}: {}", type, path, strerror(errno)));
      namespaces.push_back(fd);
    }
  }
  auto uid = static_cast<uid_t>(IntAt(spec, "/process/user/uid"));
  auto gid = static_cast<gid_t>(IntAt(spec, "/process/user/gid"));
  std::vector<gid_t> groups;
  if (const auto* extra = At(spec, "/process/user/additionalGids"); extra && extra->is_array()) {
    for (const auto& x : extra->get_array()) {
      if (x.is_int64()) groups.push_back(static_cast<gid_t>(x.get_int64()));
    }
  }

  std::string dir = g.root + "/" + id;
  std::error_code fec;
  fs::create_directories(g.root, fec);
  if (mkdir(dir.c_str(), 0700) != 0) {
    return Fail(g, errno == EEXIST ? "container " + id + " already exists"
                                   : fmt::format("state {}: {}", dir, strerror(errno)));
  }
  std::string fifo = dir + "/exec.fifo";
  std::vector<std::string> cgroups = CgroupDirs(StringAt(spec, "/linux/cgroupsPath"));
  auto undo = [&](const std::string& why) {
    RemoveCgroups(cgroups);
    fs::remove_all(dir, fec);
    return Fail(g, why);
  };
  if (mkfifo(fifo.c_str(), 0600) != 0) return undo(fmt::format("fifo: {}", strerror(errno)));
  if (std::string why = MakeCgroups(spec, cgroups); !why.empty()) return undo(why);

  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return undo(fmt::format("pipe: {}", strerror(errno)));
  pid_t pid = fork();
  if (pid < 0) return undo(fmt::format("fork: {}", strerror(errno)));
  if (pid == 0) {
    // The container's process: set up, say so, wait for start, run.
    close(ready[0]);
    auto fail = [&](const std::string& what) {
      std::string line = fmt::format("{}: {}", what, strerror(errno));
      (void)!write(ready[1], line.data(), line.size());
      _exit(125);
    };
    setsid();
    for (int fd : namespaces) {
      if (setns(fd, 0) != 0) fail("setns");
      close(fd);
    }
    if (!read_only.empty()) {
      // Private to this process: nothing propagates back to the host.
      if (unshare(CLONE_NEWNS) != 0) fail("unshare mount namespace");
      if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) fail("mount / slave");
      for (const auto& dir : read_only) {
        if (mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
            mount(nullptr, dir.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0)
          fail("read-only volume " + dir);
      }
    }
    std::string self = std::to_string(getpid());
    for (const auto& cg : cgroups) {
      if (!WriteText(cg + "/cgroup.procs", self)) fail("join cgroup " + cg);
    }
    if (setgroups(groups.size(), groups.data()) != 0) fail("setgroups");
    if (setgid(gid) != 0) fail("setgid");
    if (setuid(uid) != 0) fail("setuid");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs");
    // Open for reading before saying ready, so that a `start` never finds no
    // reader (ENXIO) however late this process runs. Read and write (Linux's
    // fifo(7)): the open does not wait for a writer, and the read waits for
    // `start`'s byte rather than seeing end of file while there is none.
    int f = open(fifo.c_str(), O_RDWR | O_CLOEXEC);
    if (f < 0) fail("open " + fifo);
    close(ready[1]);  // Ready: the parent reads end of file.
    char go = 0;
    if (read(f, &go, 1) != 1) _exit(125);
    close(f);
    auto exit = RunWasm(options);
    if (!exit.ok()) {
      std::fprintf(stderr, "kiso-wasm: %s\n", exit.status().message().c_str());
      _exit(125);
    }
    if (!exit->trap.empty()) std::fprintf(stderr, "wasm trap: %s\n", exit->trap.c_str());
    _exit(static_cast<int>(exit->code & 0xff));
  }
  close(ready[1]);
  for (int fd : namespaces) close(fd);
  close(*module);
  std::string why;
  char buf[512];
  ssize_t n;
  while ((n = read(ready[0], buf, sizeof buf)) > 0) why.append(buf, static_cast<size_t>(n));
  close(ready[0]);
  if (!why.empty()) {
    kill(pid, SIGKILL);
    return undo("the container's process: " + why);
  }
  json::array cgs;
  for (const auto& cg : cgroups) cgs.emplace_back(cg);
  json::object state{{"id", id},
                     {"pid", pid},
                     {"bundle", fs::absolute(bundle, fec).string()},
                     {"cgroups", std::move(cgs)}};
  if (!WriteText(dir + "/state.json", json::serialize(state))) {
    kill(pid, SIGKILL);
    return undo("state.json: " + std::string(strerror(errno)));
  }
  if (!pid_file.empty() && !WriteText(pid_file, std::to_string(pid))) {
    kill(pid, SIGKILL);
    return undo("pid file " + pid_file + ": " + std::string(strerror(errno)));
  }
  return 0;
}

int Start(const Globals& g, const std::string& id) {
  if (!Load(g, id)) return Fail(g, "container " + id + " does not exist");
  std::string fifo = g.root + "/" + id + "/exec.fifo";
  int f = open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (f < 0) {
    return Fail(
        g, errno == ENOENT
               ? "container " + id + " was started already"
               : "container " + id + " is not waiting to start: " + std::string(strerror(errno)));
  }
  char go = 1;
  bool ok = write(f, &go, 1) == 1;
  close(f);
  unlink(fifo.c_str());
  return ok ? 0 : Fail(g, "start " + id + ": " + std::string(strerror(errno)));
}

int State(const Globals& g, const std::string& id) {
  auto c = Load(g, id);
  if (!c) return Fail(g, "container " + id + " does not exist");
  std::error_code ec;
  std::string status = !Alive(c->pid)                                     ? "stopped"
                       : fs::exists(g.root + "/" + id + "/exec.fifo", ec) ? "created"
                                                                          : "running";
  json::object out{{"ociVersion", "1.0.2"},
                   {"id", id},
                   {"pid", status == "stopped" ? 0 : c->pid},
                   {"status", status},
                   {"bundle", c->bundle}};
  std::printf("%s\n", json::serialize(out).c_str());
  return 0;
}

int Kill(const Globals& g, const std::vector<std::string>& args) {
  std::vector<std::string> rest;
  for (const auto& a : args) {
    if (a != "--all" && a != "-a") rest.push_back(a);
  }
  if (rest.empty()) return Fail(g, "kill: no container id");
  auto c = Load(g, rest[0]);
  if (!c) return Fail(g, "container " + rest[0] + " does not exist");
  int sig = Signal(rest.size() > 1 ? rest[1] : "TERM");
  if (sig <= 0) return Fail(g, "kill: unknown signal " + rest[1]);
  if (!Alive(c->pid)) return Fail(g, "container " + rest[0] + " is not running");
  if (kill(c->pid, sig) != 0) return Fail(g, fmt::format("kill: {}", strerror(errno)));
  return 0;
}

int Delete(const Globals& g, const std::vector<std::string>& args) {
  bool force = false;
  std::string id;
  for (const auto& a : args) {
    if (a == "--force" || a == "-f") {
      force = true;
    } else {
      id = a;
    }
  }
  auto c = Load(g, id);
  std::error_code ec;
  if (!c) {
    if (!fs::exists(g.root + "/" + id, ec)) return Fail(g, "container " + id + " does not exist");
    fs::remove_all(g.root + "/" + id, ec);  // Half made: nothing runs.
    return 0;
  }
  if (Alive(c->pid)) {
    if (!force) return Fail(g, "cannot delete container " + id + ": it is running");
    kill(c->pid, SIGKILL);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (Alive(c->pid) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  RemoveCgroups(c->cgroups);
  fs::remove_all(g.root + "/" + id, ec);
  return 0;
}

}  // namespace

bool IsOciCommand(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "create" || a == "start" || a == "state" || a == "kill" || a == "delete" ||
        a == "exec" || a == "--version" || a == "-v")
      return true;
    if (a == "--root" || a == "--log" || a == "--log-format") {
      ++i;  // Its value.
    } else if (a != "--systemd-cgroup" && a != "--debug") {
      return false;  // The run form's flags, or its module.
    }
  }
  return false;
}

int OciMain(const std::vector<std::string>& args) {
  Globals g;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool has_value = i + 1 < args.size();
    if (a == "--root" && has_value) {
      g.root = args[++i];
    } else if (a == "--log" && has_value) {
      g.log = args[++i];
    } else if (a == "--log-format" && has_value) {
      ++i;  // Errors in --log are JSON lines whatever is asked.
    } else if (a == "--systemd-cgroup" || a == "--debug") {
      continue;
    } else {
      break;
    }
  }
  if (i == args.size()) return Fail(g, "no command");
  const std::string& command = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
  if (command == "--version" || command == "-v") {
    std::printf("%s\n", std::string(kVersion).c_str());
    return 0;
  }
  if (command == "create") return Create(g, rest);
  if (command == "start" && !rest.empty()) return Start(g, rest.back());
  if (command == "state" && !rest.empty()) return State(g, rest.back());
  if (command == "kill") return Kill(g, rest);
  if (command == "delete" && !rest.empty()) return Delete(g, rest);
  if (command == "exec") {
    return Fail(g,
                "exec is not supported by the wasm runtime: a WebAssembly module has no "
                "processes to start");
  }
  return Fail(g, "unknown command " + command);
}

}  // namespace kiso::runtime::wasm
