#include "runtime/oci_runtime.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "common/fault.h"
#include "common/file.h"
#include "common/process.h"
#include "common/random.h"
#include "common/unix_socket.h"
#include "runtime/oci_spec.h"
#include "runtime/shim.h"

namespace kiso::runtime {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::string RandomId() {
  auto& rng = ThreadRng();
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

// A process that still exists (a zombie too: the pid is not yet free).
bool Alive(int pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

// Whether `done` holds within `limit`, looked at every 10 ms: what the runtime
// and the shim record are files, with nothing to wait on.
bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

std::string FindInPath(const std::string& name) {
  for (const char* dir :
       {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
    std::string p = std::string(dir) + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A bundle's state files: whole or not there, not synced (a restart re-derives
// what a power loss would lose).
Status WriteFile(const std::string& path, std::string_view data) {
  return WriteFileAtomic(path, data, 0644, /*durable=*/false);
}

// Hybrid layout: cgroup v1 controllers with cgroup2 at /sys/fs/cgroup/unified.
constexpr const char* kUnifiedControllers = "/sys/fs/cgroup/unified/cgroup.controllers";

bool HybridCgroups() {
  struct stat st {};
  return stat(kUnifiedControllers, &st) == 0 && stat("/sys/fs/cgroup/memory", &st) == 0;
}

// The controllers the hybrid host's cgroup2 hierarchy lists.
std::vector<std::string> UnifiedControllers() {
  std::ifstream in(kUnifiedControllers);
  std::vector<std::string> out;
  std::string c;
  while (in >> c) out.push_back(c);
  return out;
}

// crun runs on a hybrid host only while its cgroup2 hierarchy lists no
// controller ("cgroups in hybrid mode not supported, drop all controllers
// from cgroupv2"), as systemd's hybrid hosts have it: every controller a v1
// hierarchy of its own under /sys/fs/cgroup. Those cgroup2 still lists
// (hugetlb, on this machine's kind) are mounted so, as systemd would mount
// them; runc uses them as any other v1 hierarchy. Says what it changed.
Status MoveUnifiedControllersToV1() {
  for (const auto& c : UnifiedControllers()) {
    if (c.empty() || c.find('/') != std::string::npos || c.find('.') != std::string::npos) continue;
    const std::string dir = "/sys/fs/cgroup/" + c;
    std::error_code ec;
    fs::create_directory(dir, ec);
    if (ec) return MakeStatus(Code::kUnavailable, "crun: create {}: {}", dir, ec.message());
    if (mount("cgroup", dir.c_str(), "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, c.c_str()) != 0) {
      return MakeStatus(Code::kUnavailable,
                        "crun: mounting the {} controller as a cgroup v1 hierarchy at {} (as "
                        "systemd's hybrid hosts have it, which crun needs): {}",
                        c, dir, strerror(errno));
    }
    spdlog::info(
        "crun: mounted the {} cgroup controller as a v1 hierarchy at {} (cgroup2 listed it; crun "
        "refuses a hybrid host whose cgroup2 has controllers)",
        c, dir);
  }
  return Status::Ok();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Status PrepareHostForCrun() {
  if (!HybridCgroups()) return Status::Ok();
  static std::mutex once;  // Two runtimes made at once mount each controller once.
  std::lock_guard lock(once);
  KISO_RETURN_IF_ERROR(MoveUnifiedControllersToV1());
  if (auto left = UnifiedControllers(); !left.empty()) {
    return MakeStatus(Code::kUnavailable,
                      "crun refuses this machine's hybrid cgroup layout: cgroup2 at "
                      "/sys/fs/cgroup/unified still lists {} (\"cgroups in hybrid mode not "
                      "supported\"); use runc here",
                      fmt::join(left, " "));
  }
  return Status::Ok();
}

namespace {

// Runs fn(arg) in a child process that shares this one's memory while the
// calling thread waits (clone CLONE_VM|CLONE_VFORK, as posix_spawn starts
// its children): nothing is copied, however large this process is, so fn may
// make system calls only (and posix_spawn). Every signal is blocked while it
// runs: no handler may run on its stack. Its wait status.
Result<int> RunInSharedChild(int (*fn)(void*), void* arg) {
  std::vector<char> stack(size_t{64} << 10);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(fn, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD, arg);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return MakeStatus(Code::kInternal, "clone: {}", strerror(clone_errno));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// The sandbox's child: its own network, IPC and UTS namespaces, the host
// name, the loopback interface up, each namespace bind-mounted onto its file.
// It shares the caller's memory (clone with CLONE_VM, the caller suspended
// until it exits), so it makes system calls only, and says what failed here.
struct SandboxChild {
  const char* hostname = nullptr;
  size_t hostname_size = 0;
  const char* paths[3] = {};  // net, ipc, uts.
  const char* step = nullptr;
  int error = 0;
};

int SandboxChildMain(void* arg) {
  auto* c = static_cast<SandboxChild*>(arg);
  auto fail = [c](const char* step) {
    c->step = step;
    c->error = errno;
    return 1;
  };
  if (unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0) return fail("unshare");
  if (sethostname(c->hostname, c->hostname_size) != 0) return fail("sethostname");
  // What the CNI loopback plugin does: "lo" up (the kernel gives it
  // 127.0.0.1/8 and ::1).
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return fail("socket");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, "lo", 3);
  bool up = ioctl(sock, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  up = up && ioctl(sock, SIOCSIFFLAGS, &ifr) == 0;
  close(sock);
  if (!up) return fail("loopback up");
  static constexpr const char* kOwn[] = {"/proc/self/ns/net", "/proc/self/ns/ipc",
                                         "/proc/self/ns/uts"};
  for (int i = 0; i < 3; ++i) {
    if (mount(kOwn[i], c->paths[i], nullptr, MS_BIND, nullptr) != 0) return fail(kOwn[i]);
  }
  return 0;
}

}  // namespace

Result<Sandbox> CreateSandboxNamespaces(const std::string& id, const std::string& dir,
                                        const std::string& hostname) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return MakeStatus(Code::kInternal, "sandbox {}: create {}: {}", id, dir, ec.message());
  Sandbox s{id, dir + "/net", dir + "/ipc", dir + "/uts"};
  for (const auto& f : {s.netns_path, s.ipcns_path, s.utsns_path}) std::ofstream{f};
  // One short-lived child of this process, no program executed: before, this
  // was `unshare`, `hostname` and the CNI loopback plugin, three executions.
  SandboxChild child;
  child.hostname = hostname.data();
  child.hostname_size = hostname.size();
  child.paths[0] = s.netns_path.c_str();
  child.paths[1] = s.ipcns_path.c_str();
  child.paths[2] = s.utsns_path.c_str();
  auto ran = RunInSharedChild(SandboxChildMain, &child);
  if (!ran.ok()) {
    (void)RemoveSandboxNamespaces(dir);
    return ran.status().Annotate(fmt::format("sandbox {}", id));
  }
  if (!WIFEXITED(*ran) || WEXITSTATUS(*ran) != 0) {
    // Some namespaces may be bound already.
    (void)RemoveSandboxNamespaces(dir);
    return MakeStatus(Code::kInternal, "sandbox {}: {}: {}", id,
                      child.step ? child.step : "the namespaces' child died",
                      strerror(child.error));
  }
  return s;
}

bool SandboxNamespacesHeld(const Sandbox& s) {
  constexpr long kNsfsMagic = 0x6e736673;  // NSFS_MAGIC: a bind-mounted namespace.
  for (const auto& p : {s.netns_path, s.ipcns_path, s.utsns_path}) {
    struct statfs fs {};
    if (statfs(p.c_str(), &fs) != 0 || fs.f_type != kNsfsMagic) return false;
  }
  return true;
}

Status RemoveSandboxNamespaces(const std::string& dir) {
  for (const char* ns : {"net", "ipc", "uts"}) {
    std::string p = dir + "/" + ns;
    // Not mounted (a half-made sandbox) is fine; anything else is not.
    if (umount2(p.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      return MakeStatus(Code::kInternal, "remove sandbox {}: unmount {}: {}", dir, p,
                        strerror(errno));
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return MakeStatus(Code::kInternal, "remove sandbox {}: {}", dir, ec.message());
  return Status::Ok();
}

Result<OciRuntime::Binary> OciRuntime::Find(const std::string& name,
                                            const std::string& state) const {
  if (name == "wasm") {
    if (options_.wasm_binary.empty() || access(options_.wasm_binary.c_str(), X_OK) != 0) {
      return MakeStatus(Code::kNotFound, "the wasm runtime {:?} is not there",
                        options_.wasm_binary);
    }
    return Binary{name, options_.wasm_binary, state, /*exec=*/false, /*own_root=*/false};
  }
  Binary b{name, FindInPath(name), state};
  if (b.path.empty()) {
    return MakeStatus(Code::kNotFound,
                      "OCI runtime {:?} not found in PATH (install the {} package)", name, name);
  }
  if (name == "crun") KISO_RETURN_IF_ERROR(PrepareHostForCrun());
  b.create_at_start = true;
  return b;
}

Result<std::unique_ptr<OciRuntime>> OciRuntime::Create(OciRuntimeOptions options) {
  std::unique_ptr<OciRuntime> rt(new OciRuntime(std::move(options)));
  const OciRuntimeOptions& o = rt->options_;
  KISO_ASSIGN_OR_RETURN(Binary first, rt->Find(o.runtime, o.root + "/state"));
  KISO_ASSIGN_OR_RETURN(auto v, RunCommand({first.path, "--version"}));
  // "runc version 1.1.5+ds1" → "runc://1.1.5+ds1", as nodes report their
  // runtime; the word after "version" ("kiso-wasm version 1 (…)" → "wasm://1").
  std::string line = v.out.substr(0, v.out.find('\n'));
  size_t at = line.find("version ");
  std::string number = at == std::string::npos
                           ? line.substr(line.rfind(' ') + 1)
                           : line.substr(at + 8, line.find(' ', at + 8) - at - 8);
  rt->version_ = o.runtime + "://" + number;
  rt->binaries_.push_back(std::move(first));
  for (const auto& name : o.extra_handlers) {
    if (name.empty() || name.find('/') != std::string::npos || rt->HandlerNamed(name)) {
      continue;  // Not a runtime's name, or one already here.
    }
    auto extra = rt->Find(name, o.root + "/state-" + name);
    if (!extra.ok()) {
      spdlog::warn("runtime handler {:?} left out: {}", name, extra.status().message());
      continue;
    }
    rt->binaries_.push_back(std::move(*extra));
  }
  std::error_code ec;
  std::vector<std::string> dirs = {o.root + "/sandboxes", o.root + "/containers"};
  for (const auto& b : rt->binaries_) dirs.push_back(b.state);
  for (const auto& dir : dirs) {
    fs::create_directories(dir, ec);
    if (ec) return MakeStatus(Code::kInternal, "create {}: {}", dir, ec.message());
  }
  return rt;
}

std::vector<std::string> OciRuntime::Handlers() const {
  std::vector<std::string> out;
  for (const auto& b : binaries_) out.push_back(b.name);
  return out;
}

const OciRuntime::Binary* OciRuntime::HandlerNamed(std::string_view name) const {
  for (const auto& b : binaries_) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

std::string OciRuntime::Bundle(const std::string& id) const {
  return options_.root + "/containers/" + id;
}

bool OciRuntime::Spawned(const std::string& id) const {
  // The shim records itself first thing, the runtime the container's pid.
  const std::string bundle = Bundle(id);
  return fs::exists(bundle + "/shim.pid") || fs::exists(bundle + "/init.pid");
}

const OciRuntime::Binary& OciRuntime::BinaryOf(const std::string& id) const {
  boost::system::error_code ec;
  auto meta = json::parse(Slurp(Bundle(id) + "/meta.json"), ec);
  if (!ec && meta.is_object()) {
    if (const auto* h = meta.as_object().if_contains("handler"); h && h->is_string()) {
      if (const Binary* b = HandlerNamed(h->get_string())) return *b;
    }
  }
  return binaries_.front();  // Made before handlers were recorded, or by the default.
}

Result<CommandResult> OciRuntime::Runtime(const std::string& id, std::vector<std::string> args,
                                          std::chrono::milliseconds timeout) {
  const Binary& b = BinaryOf(id);
  args.insert(args.begin(), {b.path, "--root", b.state});
  CommandOptions o;
  o.timeout = timeout;
  return RunCommand(args, o);
}

Result<Sandbox> OciRuntime::RunPodSandbox(const SandboxConfig& config) {
  const std::string& handler =
      config.runtime_handler.empty() ? binaries_.front().name : config.runtime_handler;
  if (!HandlerNamed(handler)) {
    return MakeStatus(Code::kInvalidArgument, "RuntimeHandler {:?} not supported: runs {}", handler,
                      fmt::join(Handlers(), ", "));
  }
  std::string id = RandomId();
  std::string dir = options_.root + "/sandboxes/" + id;
  std::string hostname = (config.hostname.empty() ? config.name : config.hostname).substr(0, 63);
  // Whose it is is written first: a sandbox a crash leaves half made is still
  // found (ListPodSandboxes: not ready) and removed, never forgotten.
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return MakeStatus(Code::kInternal, "sandbox {}: create {}: {}", id, dir, ec.message());
  json::object meta{{"name", config.name},
                    {"namespace", config.ns},
                    {"uid", config.uid},
                    {"hostname", hostname},
                    {"handler", handler}};
  if (Status s = WriteFile(dir + "/sandbox.json", json::serialize(meta)); !s.ok()) {
    (void)RemoveSandboxNamespaces(dir);
    return s;
  }
  auto sandbox = CreateSandboxNamespaces(id, dir, hostname);
  if (!sandbox.ok()) {
    (void)RemoveSandboxNamespaces(dir);
    return sandbox.status();
  }
  CrashPoint("sandbox");
  return sandbox;
}

std::string OciRuntime::SandboxOf(const std::string& id) {
  boost::system::error_code ec;
  auto v = json::parse(Slurp(Bundle(id) + "/meta.json"), ec);
  if (ec || !v.is_object() || !v.as_object().contains("sandbox")) return "";
  return std::string(v.as_object().at("sandbox").as_string());
}

Status OciRuntime::StopPodSandbox(const std::string& sandbox_id) {
  for (const auto& id : ListContainers()) {
    if (SandboxOf(id) == sandbox_id)
      KISO_RETURN_IF_ERROR(StopContainer(id, std::chrono::seconds(0)));
  }
  return Status::Ok();
}

Status OciRuntime::RemovePodSandbox(const std::string& sandbox_id) {
  for (const auto& id : ListContainers()) {
    if (SandboxOf(id) == sandbox_id) KISO_RETURN_IF_ERROR(RemoveContainer(id));
  }
  return RemoveSandboxNamespaces(options_.root + "/sandboxes/" + sandbox_id);
}

std::vector<RuntimeService::SandboxInfo> OciRuntime::ListPodSandboxes() {
  std::vector<SandboxInfo> out;
  for (const auto& id : ListSandboxes()) {
    std::string dir = options_.root + "/sandboxes/" + id;
    SandboxInfo info;
    info.sandbox = Sandbox{id, dir + "/net", dir + "/ipc", dir + "/uts"};
    boost::system::error_code ec;
    auto meta = json::parse(Slurp(dir + "/sandbox.json"), ec);
    if (!ec && meta.is_object()) {
      auto field = [&](std::string_view k) {
        const auto* v = meta.as_object().if_contains(k);
        return v && v->is_string() ? std::string(v->get_string()) : std::string();
      };
      info.config = {field("name"), field("namespace"), field("uid"), "", field("handler")};
    }
    info.ready = !info.config.uid.empty() && SandboxNamespacesHeld(info.sandbox);
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<std::string> OciRuntime::ListSandboxes() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.root + "/sandboxes", ec)) {
    out.push_back(e.path().filename().string());
  }
  return out;
}

Result<std::string> OciRuntime::CreateContainer(const Sandbox& sandbox,
                                                const ContainerConfig& config) {
  std::string id = RandomId();
  std::string bundle = Bundle(id);
  boost::system::error_code jec;
  auto sb = json::parse(Slurp(options_.root + "/sandboxes/" + sandbox.id + "/sandbox.json"), jec);
  auto field = [&](const char* name) -> std::string_view {
    const json::value* v = !jec && sb.is_object() ? sb.as_object().if_contains(name) : nullptr;
    return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
  };
  // The sandbox's handler runs its containers (older sandboxes: the default).
  const Binary* binary = HandlerNamed(field("handler"));
  if (!binary) binary = &binaries_.front();
  std::error_code ec;
  fs::create_directories(bundle, ec);
  if (binary->own_root) {
    for (const char* sub : {"rootfs", "upper", "work"})
      fs::create_directories(bundle + "/" + sub, ec);
  }
  if (ec) return MakeStatus(Code::kInternal, "create bundle {}: {}", bundle, ec.message());
  auto fail = [&](Status s) {
    (void)RemoveContainer(id);
    return s;
  };
  json::object meta{{"name", config.name},         {"attempt", config.attempt},
                    {"image", config.image},       {"sandbox", sandbox.id},
                    {"log_path", config.log_path}, {"created_at", NowRfc3339()},
                    {"handler", binary->name},     {"tty", config.tty},
                    {"stdin", config.stdin_open},  {"stdin_once", config.stdin_once}};
  KISO_RETURN_IF_ERROR(WriteFile(bundle + "/meta.json", json::serialize(meta)));
  // The container's root: an overlay on the image's shared, unpacked rootfs;
  // a private copy where overlayfs is unavailable; the shared one itself,
  // read-only, for a handler whose containers have no root of their own.
  std::string rootfs = config.image_rootfs;
  if (binary->own_root) {
    rootfs = bundle + "/rootfs";
    std::string data = fmt::format("lowerdir={},upperdir={}/upper,workdir={}/work",
                                   config.image_rootfs, bundle, bundle);
    if (mount("overlay", rootfs.c_str(), "overlay", 0, data.c_str()) != 0) {
      auto cp = RunCommand({"/bin/cp", "-a", config.image_rootfs + "/.", rootfs});
      if (!cp.ok() || cp->exit_code != 0) {
        return fail(MakeStatus(Code::kInternal, "container {}: copy rootfs: {}", config.name,
                               cp.ok() ? Trim(cp->err) : cp.status().message()));
      }
    }
  }
  // The sandbox's host name (older sandboxes recorded only the pod's name).
  std::string hostname(field("hostname").empty() ? field("name") : field("hostname"));
  json::value spec =
      BuildSpec(config, sandbox, rootfs, hostname, "/" + options_.cgroup_parent + "/" + id);
  if (!binary->own_root) spec.as_object()["root"].as_object()["readonly"] = true;
  Status s = WriteFile(bundle + "/config.json", json::serialize(spec));
  if (!s.ok()) return fail(s);
  fs::create_directories(fs::path(config.log_path).parent_path(), ec);
  if (binary->create_at_start) return id;  // Made by StartContainer, in one runtime process.
  s = Spawn(id, *binary, config);
  if (!s.ok()) return fail(s.Annotate(fmt::format("create container {}", config.name)));
  return id;
}

namespace {

// The middle process of a shim's double spawn (see Spawn): it shares the
// caller's memory, so it makes system calls and posix_spawn only.
struct ShimSpawn {
  const char* path;
  char* const* argv;
  const posix_spawn_file_actions_t* actions;
  const posix_spawnattr_t* attr;
  int error = 0;
};

int ShimSpawnMain(void* arg) {
  auto* s = static_cast<ShimSpawn*>(arg);
  setsid();
  pid_t shim = 0;
  s->error = posix_spawn(&shim, s->path, s->actions, s->attr, s->argv, environ);
  return s->error == 0 ? 0 : 127;
}

}  // namespace

Status OciRuntime::Spawn(const std::string& id, const Binary& binary, const ContainerConfig& config,
                         bool start) {
  int sync[2];
  if (pipe2(sync, O_CLOEXEC) != 0) return MakeStatus(Code::kInternal, "pipe: {}", strerror(errno));
  std::string bundle = Bundle(id);
  std::vector<std::string> argv = {options_.shim_binary,
                                   "--id",
                                   id,
                                   "--bundle",
                                   bundle,
                                   "--runtime-path",
                                   binary.path,
                                   "--runtime-root",
                                   binary.state,
                                   "--log",
                                   config.log_path,
                                   "--cgroup",
                                   "/" + options_.cgroup_parent + "/" + id,
                                   "--sync-fd",
                                   "3",
                                   "--log-max-size",
                                   std::to_string(options_.container_log_max_size),
                                   "--log-max-files",
                                   std::to_string(options_.container_log_max_files)};
  if (config.tty) argv.emplace_back("--tty");
  if (config.stdin_open) argv.emplace_back("--stdin");
  if (config.stdin_once) argv.emplace_back("--stdin-once");
  if (start) argv.emplace_back("--start");
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  // The shim's descriptors: fd 3 the sync pipe (without close-on-exec),
  // /dev/null for 0, 1 and 2, nothing else of ours (listening sockets…).
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sync[1], 3);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDWR, 0);
  posix_spawn_file_actions_adddup2(&actions, 0, 1);
  posix_spawn_file_actions_adddup2(&actions, 0, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  // Double spawn: the shim is nobody's child here, and lives on after us.
  // The middle process shares this one's memory (no copy of a large server's
  // page tables, twice, as two forks made), starts a session and spawns the
  // shim with this thread's signal mask, as a fork would have.
  sigset_t mask;
  pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setsigmask(&attr, &mask);
  ShimSpawn spawn{args[0], args.data(), &actions, &attr};
  auto ran = RunInSharedChild(ShimSpawnMain, &spawn);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  close(sync[1]);
  if (!ran.ok()) {
    close(sync[0]);
    return ran.status();
  }
  if (spawn.error != 0) {
    close(sync[0]);
    return MakeStatus(Code::kInternal, "start the shim {}: {}", args[0], strerror(spawn.error));
  }
  std::string reply;
  pollfd p{sync[0], POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (reply.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    ssize_t n = read(sync[0], buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(sync[0]);
  if (reply.starts_with("ok ")) return Status::Ok();
  if (reply.starts_with("error ")) return Status(Code::kInternal, Trim(reply.substr(6)));
  return Status(Code::kInternal, "the shim exited without creating the container");
}

Status OciRuntime::StartContainer(const std::string& id) {
  {
    std::lock_guard lock(starting_mu_);
    starting_.insert(id);
  }
  Status s = Start(id);
  if (s.ok()) s = WriteFile(Bundle(id) + "/started_at", NowRfc3339());
  std::lock_guard lock(starting_mu_);
  starting_.erase(id);
  return s;
}

Status OciRuntime::Start(const std::string& id) {
  const Binary& binary = BinaryOf(id);
  if (!binary.create_at_start || Spawned(id)) {
    KISO_ASSIGN_OR_RETURN(auto r, Runtime(id, {"start", id}));
    if (r.exit_code != 0) return MakeStatus(Code::kInternal, "start {}: {}", id, Trim(r.err));
    return Status::Ok();
  }
  // Created and started by the shim's one runtime process (`run --detach`),
  // with what CreateContainer recorded.
  boost::system::error_code ec;
  auto meta = json::parse(Slurp(Bundle(id) + "/meta.json"), ec);
  if (ec || !meta.is_object()) return MakeStatus(Code::kNotFound, "container {} not found", id);
  const json::object& m = meta.as_object();
  auto flag = [&](const char* key) {
    const auto* v = m.if_contains(key);
    return v != nullptr && v->is_bool() && v->get_bool();
  };
  ContainerConfig config;
  config.name = std::string(m.at("name").as_string());
  config.log_path = std::string(m.at("log_path").as_string());
  config.tty = flag("tty");
  config.stdin_open = flag("stdin");
  config.stdin_once = flag("stdin_once");
  Status s = Spawn(id, binary, config, /*start=*/true);
  return s.ok() ? s : s.Annotate(fmt::format("start container {}", config.name));
}

namespace {

// The first number in a cgroup file, or of the line starting with `key `.
std::optional<uint64_t> CgroupValue(const std::string& path, std::string_view key = "") {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::string_view v = line;
    if (!key.empty()) {
      if (!v.starts_with(key) || v.size() <= key.size() || v[key.size()] != ' ') continue;
      v.remove_prefix(key.size() + 1);
    }
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec == std::errc()) return n;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

Result<ContainerStats> OciRuntime::Stats(const std::string& id) {
  const std::string cgroup = "/" + options_.cgroup_parent + "/" + id;
  ContainerStats s;
  s.at = std::chrono::system_clock::now();
  std::optional<uint64_t> cpu, usage, inactive;
  if (HybridCgroups()) {
    cpu = CgroupValue("/sys/fs/cgroup/cpuacct" + cgroup + "/cpuacct.usage");
    usage = CgroupValue("/sys/fs/cgroup/memory" + cgroup + "/memory.usage_in_bytes");
    inactive =
        CgroupValue("/sys/fs/cgroup/memory" + cgroup + "/memory.stat", "total_inactive_file");
  } else {
    auto usec = CgroupValue("/sys/fs/cgroup" + cgroup + "/cpu.stat", "usage_usec");
    if (usec) cpu = *usec * 1000;
    usage = CgroupValue("/sys/fs/cgroup" + cgroup + "/memory.current");
    inactive = CgroupValue("/sys/fs/cgroup" + cgroup + "/memory.stat", "inactive_file");
  }
  if (!cpu || !usage)
    return MakeStatus(Code::kNotFound, "no cgroup statistics for container {}", id);
  s.cpu_ns = *cpu;
  s.memory_usage = *usage;
  uint64_t inactive_bytes = inactive.value_or(0);
  s.memory_working_set = s.memory_usage > inactive_bytes ? s.memory_usage - inactive_bytes : 0;
  return s;
}

Result<ContainerStatus> OciRuntime::GetStatus(const std::string& id) {
  std::string bundle = Bundle(id);
  boost::system::error_code ec;
  auto meta = json::parse(Slurp(bundle + "/meta.json"), ec);
  if (ec || !meta.is_object()) return MakeStatus(Code::kNotFound, "container {} not found", id);
  ContainerStatus s;
  s.id = id;
  s.name = std::string(meta.as_object().at("name").as_string());
  s.log_path = std::string(meta.as_object().at("log_path").as_string());
  s.sandbox_id = std::string(meta.as_object().at("sandbox").as_string());
  s.image = std::string(meta.as_object().at("image").as_string());
  s.runtime = binaries_.front().name;  // Made before handlers were recorded: the default's.
  if (const auto* h = meta.as_object().if_contains("handler"); h && h->is_string())
    s.runtime = std::string(h->get_string());
  if (const auto* a = meta.as_object().if_contains("attempt"); a && a->is_int64())
    s.attempt = static_cast<int>(a->get_int64());
  s.started_at = Trim(Slurp(bundle + "/started_at"));
  auto exit = json::parse(Slurp(bundle + "/exit.json"), ec);
  if (!ec && exit.is_object()) {
    s.state = ContainerState::kExited;
    s.exit_code = static_cast<int>(exit.as_object().at("exit_code").to_number<int64_t>());
    s.finished_at = std::string(exit.as_object().at("finished_at").as_string());
    bool oom = exit.as_object().at("oom_killed").as_bool();
    s.reason = oom ? "OOMKilled" : s.exit_code == 0 ? "Completed" : "Error";
    return s;
  }
  // From the bundle's files, not `runc state`: a status costs no process, so
  // an agent can look at every container each sync.
  std::string pid_text = Trim(Slurp(bundle + "/init.pid"));
  s.pid = pid_text.empty() ? 0 : std::atoi(pid_text.c_str());
  bool starting = false;
  if (s.pid > 0 && s.started_at.empty()) {
    std::lock_guard lock(starting_mu_);
    starting = starting_.contains(id);
  }
  if (s.pid > 0 && s.started_at.empty() && !starting) {
    // Created and not started, as far as the files say. Normally a container
    // is started in the same sync that creates it (a StartContainer under way
    // is known here); this is an agent that died in between, maybe after
    // `runc start`: the runtime knows which.
    auto state = Runtime(id, {"state", id});
    boost::system::error_code jec;
    auto v = state.ok() && state->exit_code == 0 ? json::parse(state->out, jec) : json::value();
    std::string_view status = !jec && v.is_object() && v.as_object().contains("status") &&
                                      v.as_object().at("status").is_string()
                                  ? std::string_view(v.as_object().at("status").get_string())
                                  : "";
    if (status == "running" || status == "stopped") {
      s.started_at = NowRfc3339();  // Not known to the second: recorded as now.
      (void)WriteFile(bundle + "/started_at", s.started_at);
    }
  }
  if (s.pid <= 0) {
    // Not made yet (made as it starts), or a create a crash cut short.
    const bool waiting = BinaryOf(id).create_at_start && !Spawned(id);
    s.state = waiting ? ContainerState::kCreated : ContainerState::kUnknown;
  } else if (s.started_at.empty()) {
    s.state = ContainerState::kCreated;
  } else {
    // Running until the shim records the exit (the process may be gone and
    // the record not yet written); with the shim gone too and no record, unknown.
    int shim = std::atoi(Trim(Slurp(bundle + "/shim.pid")).c_str());
    if (Alive(s.pid) || Alive(shim)) {
      s.state = ContainerState::kRunning;
    } else if (fs::exists(bundle + "/exit.json")) {
      return GetStatus(id);  // Written just now.
    } else {
      s.state = ContainerState::kUnknown;
    }
  }
  return s;
}

Status OciRuntime::StopContainer(const std::string& id, std::chrono::seconds grace) {
  auto exited = [&] { return fs::exists(Bundle(id) + "/exit.json"); };
  if (exited()) return Status::Ok();
  if (!fs::exists(Bundle(id) + "/meta.json"))
    return MakeStatus(Code::kNotFound, "container {} not found", id);
  if (BinaryOf(id).create_at_start && !Spawned(id)) return Status::Ok();  // Nothing runs yet.
  if (grace.count() > 0) {
    (void)Runtime(id, {"kill", id, "TERM"});
    if (PollUntil(exited, grace)) return Status::Ok();
  }
  (void)Runtime(id, {"kill", id, "KILL"});
  if (PollUntil(exited, std::chrono::seconds(10))) return Status::Ok();
  return MakeStatus(Code::kDeadlineExceeded, "container {} did not stop after SIGKILL", id);
}

Status OciRuntime::RemoveContainer(const std::string& id) {
  std::string bundle = Bundle(id);
  // A container made as it starts and never started: the runtime has none.
  if (!BinaryOf(id).create_at_start || Spawned(id)) {
    (void)Runtime(id, {"delete", "--force", id});
    // A forced delete ends a running process; its shim then records the exit
    // in the bundle (exit.json.tmp, renamed). Removing the bundle meanwhile
    // could fail on that new entry and leave the container behind, so the
    // record (or the shim's end) comes first.
    const std::string shim_pid = bundle + "/shim.pid";
    (void)PollUntil(
        [&] {
          return !fs::exists(shim_pid) || fs::exists(bundle + "/exit.json") ||
                 !Alive(std::atoi(Trim(Slurp(shim_pid)).c_str()));
        },
        std::chrono::seconds(10));
  }
  std::string rootfs = bundle + "/rootfs";
  umount2(rootfs.c_str(), MNT_DETACH);
  std::error_code ec;
  fs::remove_all(bundle, ec);
  if (ec) return MakeStatus(Code::kInternal, "remove container {}: {}", id, ec.message());
  return Status::Ok();
}

std::vector<std::string> OciRuntime::ListContainers() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.root + "/containers", ec)) {
    out.push_back(e.path().filename().string());
  }
  return out;
}

Result<AttachedInput> OciRuntime::AttachStdin(const std::string& id) {
  auto sock = DialUnix(Bundle(id), kAttachSocket);
  if (!sock.ok()) {
    return MakeStatus(Code::kConflict,
                      "the container's stdin is not open for attach ({}): it needs stdin: true, "
                      "and with stdinOnce it closes after the first attach",
                      sock.status().message());
  }
  // The shim's greeting: 'p' (write here) or 't' with the terminal attached.
  auto hello = ReceiveFd(*sock, std::chrono::seconds(5));
  if (!hello.ok()) {
    close(*sock);
    return hello.status().Annotate("the container's shim did not answer an attach");
  }
  if (hello->tag == 't' && hello->fd >= 0) {
    close(*sock);
    return AttachedInput{hello->fd, true};
  }
  if (hello->fd >= 0) close(hello->fd);
  return AttachedInput{*sock, false};
}

namespace {

// A runtime whose containers run no process beside their own (a WebAssembly
// module): refused here, before any stream is opened, as kiso-wasm refuses it.
Status NoExecIn(const std::string& handler) {
  return MakeStatus(Code::kInvalidArgument,
                    "exec is not supported by the {} runtime: a WebAssembly module has no "
                    "processes to start",
                    handler);
}

}  // namespace

Result<ChildProcess> OciRuntime::Exec(const std::string& id, const std::vector<std::string>& cmd,
                                      bool with_stdin, bool tty) {
  const Binary& b = BinaryOf(id);
  if (!b.exec) return NoExecIn(b.name);
  std::vector<std::string> argv = {b.path, "--root", b.state, "exec"};
  if (tty) argv.emplace_back("--tty");
  argv.push_back(id);
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  // With a terminal of its own, runc gives the process a new one inside the
  // container, copies between the two and passes size changes on (SIGWINCH).
  if (tty) return StartOnTerminal(argv, 80, 24);
  return StartCommand(argv, with_stdin);
}

Result<ExecResult> OciRuntime::ExecSync(const std::string& id, const std::vector<std::string>& cmd,
                                        std::chrono::seconds timeout) {
  if (const Binary& b = BinaryOf(id); !b.exec) return NoExecIn(b.name);
  std::vector<std::string> args = {"exec", id};
  args.insert(args.end(), cmd.begin(), cmd.end());
  KISO_ASSIGN_OR_RETURN(auto r, Runtime(id, args, timeout));
  return ExecResult{r.exit_code, std::move(r.out), std::move(r.err)};
}

}  // namespace kiso::runtime
