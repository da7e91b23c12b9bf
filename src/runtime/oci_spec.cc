#include "runtime/oci_spec.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

namespace kiso::runtime {

namespace json = boost::json;

namespace {

// process.user: uid, gid and the additional groups (supplementalGroups, fsGroup).
json::object UserOf(const ContainerConfig& config) {
  json::object user{{"uid", config.uid}, {"gid", config.gid}};
  if (!config.additional_gids.empty()) {
    json::array gids;
    for (uint32_t g : config.additional_gids) gids.emplace_back(g);
    user["additionalGids"] = std::move(gids);
  }
  return user;
}

// containerd's (and Docker's) default capability set.
constexpr const char* kDefaultCaps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE"};

constexpr const char* kAllCaps[] = {"CAP_CHOWN",
                                    "CAP_DAC_OVERRIDE",
                                    "CAP_DAC_READ_SEARCH",
                                    "CAP_FOWNER",
                                    "CAP_FSETID",
                                    "CAP_KILL",
                                    "CAP_SETGID",
                                    "CAP_SETUID",
                                    "CAP_SETPCAP",
                                    "CAP_LINUX_IMMUTABLE",
                                    "CAP_NET_BIND_SERVICE",
                                    "CAP_NET_BROADCAST",
                                    "CAP_NET_ADMIN",
                                    "CAP_NET_RAW",
                                    "CAP_IPC_LOCK",
                                    "CAP_IPC_OWNER",
                                    "CAP_SYS_MODULE",
                                    "CAP_SYS_RAWIO",
                                    "CAP_SYS_CHROOT",
                                    "CAP_SYS_PTRACE",
                                    "CAP_SYS_PACCT",
                                    "CAP_SYS_ADMIN",
                                    "CAP_SYS_BOOT",
                                    "CAP_SYS_NICE",
                                    "CAP_SYS_RESOURCE",
                                    "CAP_SYS_TIME",
                                    "CAP_SYS_TTY_CONFIG",
                                    "CAP_MKNOD",
                                    "CAP_LEASE",
                                    "CAP_AUDIT_WRITE",
                                    "CAP_AUDIT_CONTROL",
                                    "CAP_SETFCAP",
                                    "CAP_MAC_OVERRIDE",
                                    "CAP_MAC_ADMIN",
                                    "CAP_SYSLOG",
                                    "CAP_WAKE_ALARM",
                                    "CAP_BLOCK_SUSPEND",
                                    "CAP_AUDIT_READ"};

constexpr const char* kMaskedPaths[] = {"/proc/acpi",
                                        "/proc/asound",
                                        "/proc/kcore",
                                        "/proc/keys",
                                        "/proc/latency_stats",
                                        "/proc/timer_list",
                                        "/proc/timer_stats",
                                        "/proc/sched_debug",
                                        "/proc/scsi",
                                        "/sys/firmware",
                                        "/sys/devices/virtual/powercap"};
constexpr const char* kReadonlyPaths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                          "/proc/sysrq-trigger"};

json::object MountOf(std::string_view destination, std::string_view type, std::string_view source,
                     std::initializer_list<std::string_view> options) {
  json::array opts;
  for (auto o : options) opts.emplace_back(o);
  return json::object{
      {"destination", destination}, {"type", type}, {"source", source}, {"options", opts}};
}

template <size_t N>
json::array Array(const char* const (&items)[N]) {
  json::array out;
  for (const char* i : items) out.emplace_back(i);
  return out;
}

bool Has(const std::vector<std::string>& caps, std::string_view cap) {
  return std::find(caps.begin(), caps.end(), cap) != caps.end();
}

}  // namespace

Result<std::vector<std::string>> Capabilities(const ContainerConfig& config) {
  std::vector<std::string> caps;
  if (config.privileged) {
    caps.assign(std::begin(kAllCaps), std::end(kAllCaps));
    return caps;
  }
  auto full = [](const std::string& name) -> Result<std::string> {
    std::string upper;
    for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!upper.starts_with("CAP_")) upper = "CAP_" + upper;
    if (upper != "CAP_ALL" &&
        std::find(std::begin(kAllCaps), std::end(kAllCaps), upper) == std::end(kAllCaps)) {
      return MakeStatus(Code::kInvalidArgument, "unknown capability {:?}", name);
    }
    return upper;
  };
  caps.assign(std::begin(kDefaultCaps), std::end(kDefaultCaps));
  for (const auto& d : config.drop_caps) {
    KISO_ASSIGN_OR_RETURN(std::string cap, full(d));
    if (cap == "CAP_ALL") {
      caps.clear();
    } else {
      std::erase(caps, cap);
    }
  }
  for (const auto& a : config.add_caps) {
    KISO_ASSIGN_OR_RETURN(std::string cap, full(a));
    if (cap == "CAP_ALL") {
      caps.assign(std::begin(kAllCaps), std::end(kAllCaps));
    } else if (!Has(caps, cap)) {
      caps.push_back(cap);
    }
  }
  return caps;
}

json::value BuildSpec(const ContainerConfig& config, const Sandbox& sandbox,
                      const std::string& rootfs, const std::string& hostname,
                      const std::string& cgroups_path) {
  auto cap_names = Capabilities(config);
  json::array caps;
  for (const auto& c : cap_names.ok() ? *cap_names : std::vector<std::string>())
    caps.emplace_back(c);
  json::array args;
  for (const auto& a : config.args) args.emplace_back(a);
  json::array env;
  for (const auto& e : config.env) env.emplace_back(e);
  json::object process{
      {"terminal", config.tty},
      {"user", UserOf(config)},
      {"args", std::move(args)},
      {"env", std::move(env)},
      {"cwd", config.working_dir.empty() ? "/" : config.working_dir},
      {"capabilities", json::object{{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"noNewPrivileges", config.no_new_privileges && !config.privileged},
      {"oomScoreAdj", 1000 - 1}};
  json::array mounts{
      MountOf("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
      MountOf("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      MountOf("/dev/pts", "devpts", "devpts",
              {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
      MountOf("/dev/shm", "tmpfs", "shm",
              {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
      MountOf("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
      MountOf("/sys", "sysfs", "sysfs",
              {"nosuid", "noexec", "nodev", config.privileged ? "rw" : "ro"}),
      MountOf("/sys/fs/cgroup", "cgroup", "cgroup",
              {"nosuid", "noexec", "nodev", "relatime", config.privileged ? "rw" : "ro"})};
  for (const auto& m : config.mounts) {
    mounts.push_back(MountOf(m.container_path, "bind", m.host_path,
                             {"rbind", "rprivate", m.read_only ? "ro" : "rw"}));
  }
  json::object resources;
  if (config.memory_limit > 0) {
    resources["memory"] = json::object{{"limit", config.memory_limit}};
  }
  json::object cpu;
  if (config.cpu_shares > 0) cpu["shares"] = config.cpu_shares;
  if (config.cpu_quota_us > 0) {
    cpu["quota"] = config.cpu_quota_us;
    cpu["period"] = 100000;
  }
  if (!cpu.empty()) resources["cpu"] = std::move(cpu);
  // Devices: deny all but the defaults runc always allows; privileged: all.
  resources["devices"] = json::array{json::object{{"allow", config.privileged}, {"access", "rwm"}}};
  json::object linux{
      {"namespaces", json::array{json::object{{"type", "pid"}}, json::object{{"type", "mount"}},
                                 json::object{{"type", "network"}, {"path", sandbox.netns_path}},
                                 json::object{{"type", "ipc"}, {"path", sandbox.ipcns_path}},
                                 json::object{{"type", "uts"}, {"path", sandbox.utsns_path}}}},
      {"cgroupsPath", cgroups_path},
      {"resources", std::move(resources)}};
  if (!config.privileged) {
    linux["maskedPaths"] = Array(kMaskedPaths);
    linux["readonlyPaths"] = Array(kReadonlyPaths);
    if (config.seccomp == Seccomp::kRuntimeDefault && cap_names.ok()) {
      linux["seccomp"] = RuntimeDefaultSeccomp(*cap_names);
    } else if (config.seccomp == Seccomp::kLocalhost) {
      boost::system::error_code ec;
      auto profile = json::parse(config.seccomp_profile, ec);
      if (!ec) linux["seccomp"] = std::move(profile);
    }
  }
  return json::object{
      {"ociVersion", "1.0.2"},
      {"process", std::move(process)},
      {"root", json::object{{"path", rootfs}, {"readonly", config.read_only_rootfs}}},
      {"hostname", hostname},
      {"mounts", std::move(mounts)},
      {"linux", std::move(linux)}};
}

}  // namespace kiso::runtime
