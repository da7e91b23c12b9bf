// `kiso node reset`'s part in the runtime: what containers leave behind —
// processes, shims, runc state, cgroups and mounts — found from the runtime's
// own layout (root/containers/<id>, root/state, the container's cgroup), so
// that it is found even when the agent that made it is gone.
#include <fmt/format.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/file.h"
#include "common/process.h"
#include "runtime/oci_runtime.h"

namespace kiso::runtime {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> Children(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  return out;
}

bool Alive(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

// /proc/self/mountinfo escapes a space as \040 (and \011, \012, \134).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> MountsBelow(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& point : MountPoints()) {
    if (point == dir || point.starts_with(dir + "/")) out.push_back(std::move(point));
  }
  return out;
}

}  // namespace

std::vector<std::string> MountPoints() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devices, root, point;
    fields >> id >> parent >> devices >> root >> point;
    out.push_back(Unescape(point));
  }
  return out;
}

std::vector<std::string> ContainerCgroups(const std::string& path) {
  std::vector<std::string> out;
  if (!path.starts_with("/") || path.find("..") != std::string::npos) return out;
  std::error_code ec;
  if (fs::is_directory("/sys/fs/cgroup" + path, ec)) out.push_back("/sys/fs/cgroup" + path);
  for (const auto& h : Children("/sys/fs/cgroup")) {
    std::string p = fmt::format("/sys/fs/cgroup/{}{}", h, path);
    if (fs::is_directory(p, ec)) out.push_back(p);
  }
  return out;
}

std::string ContainerCgroupPath(const std::string& root, const std::string& id) {
  auto text = ReadFile(fmt::format("{}/containers/{}/config.json", root, id));
  boost::system::error_code ec;
  auto spec = boost::json::parse(text.ok() ? *text : std::string(), ec);
  std::error_code pec;
  if (!ec) {
    if (const auto* p = spec.find_pointer("/linux/cgroupsPath", pec); p && p->is_string())
      return std::string(p->get_string());
  }
  return "/kiso/" + id;
}

void ResetContainers(const std::string& root, const std::string& runtime,
                     std::vector<std::string>* removed, std::vector<std::string>* failed) {
  std::set<std::string> ids;
  for (const auto& id : Children(root + "/containers")) ids.insert(id);
  // The default handler's runtime keeps its state in root/state, each further
  // one (named as its runtime) in root/state-<name>.
  std::vector<std::pair<std::string, std::string>> runtimes = {{runtime, root + "/state"}};
  for (const auto& dir : Children(root)) {
    if (dir.starts_with("state-"))
      runtimes.emplace_back(dir.substr(6), fmt::format("{}/{}", root, dir));
  }
  std::vector<pid_t> killed;
  for (const auto& [name, state] : runtimes) {
    for (const auto& id : Children(state)) ids.insert(id);
    std::string runtime_path;
    for (const char* dir : {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"}) {
      std::string p = fmt::format("{}/{}", dir, name);
      if (runtime_path.empty() && access(p.c_str(), X_OK) == 0) runtime_path = p;
    }
    if (runtime_path.empty()) continue;
    // The runtime first: it knows every process of a container it runs.
    for (const auto& id : Children(state)) {
      (void)RunCommand({runtime_path, "--root", state, "kill", "--all", id, "KILL"});
      auto deleted = RunCommand({runtime_path, "--root", state, "delete", "--force", id});
      if (deleted.ok() && deleted->exit_code == 0) removed->push_back("container " + id);
    }
  }
  // Shims whose bundles are here, and whatever is still in a container's cgroup.
  std::string bundles = root + "/containers/";
  for (pid_t pid : ListProcesses()) {
    auto argv = CommandLineOf(pid);
    if (argv.empty() || fs::path(argv[0]).filename() != "kiso-shim") continue;
    auto bundle = std::find(argv.begin(), argv.end(), "--bundle");
    if (bundle == argv.end() || bundle + 1 == argv.end() || !(bundle + 1)->starts_with(bundles))
      continue;
    if (kill(pid, SIGKILL) == 0) {
      killed.push_back(pid);
      removed->push_back(fmt::format("shim pid {} ({})", pid, *(bundle + 1)));
    }
  }
  std::vector<std::string> cgroups;
  for (const auto& id : ids) {
    for (const auto& cg : ContainerCgroups(ContainerCgroupPath(root, id))) {
      cgroups.push_back(cg);
      std::ifstream procs(cg + "/cgroup.procs");
      pid_t pid = 0;
      while (procs >> pid) {
        if (kill(pid, SIGKILL) == 0) {
          killed.push_back(pid);
          removed->push_back(fmt::format("process {} (in {})", pid, cg));
        }
      }
    }
  }
  // A killed process is gone once its parent (or init) reaps it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::any_of(killed.begin(), killed.end(), Alive) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const auto& cg : cgroups) {
    bool gone = false;
    while (!(gone = rmdir(cg.c_str()) == 0 || errno == ENOENT) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (gone) {
      removed->push_back("cgroup " + cg);
    } else {
      failed->push_back(fmt::format("cgroup {}: {}", cg, strerror(errno)));
    }
  }
}

void UnmountBelow(const std::string& dir, std::vector<std::string>* removed,
                  std::vector<std::string>* failed) {
  // Deepest first; stacked mounts need a pass each. Detaching a mount also
  // detaches those below it, which then fail with EINVAL: that is fine.
  std::map<std::string, int> errors;
  for (int pass = 0; pass < 16; ++pass) {
    auto points = MountsBelow(dir);
    if (points.empty()) return;
    std::sort(points.begin(), points.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const auto& p : points) {
      if (umount2(p.c_str(), MNT_DETACH) == 0) {
        removed->push_back("mount " + p);
      } else {
        errors[p] = errno;
      }
    }
  }
  for (const auto& p : MountsBelow(dir)) {
    failed->push_back(fmt::format("mount {}: {}", p, strerror(errors.contains(p) ? errors[p] : 0)));
  }
}

}  // namespace kiso::runtime
