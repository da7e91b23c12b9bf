#include "agent/node_reset.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/process.h"
#include "network/cni.h"
#include "network/overlay/backend.h"
#include "network/policy/ebpf_enforcer.h"
#include "network/policy/nftables_enforcer.h"
#include "network/proxy/nftables.h"
#include "network/proxy/rules.h"
#include "runtime/oci_runtime.h"

namespace kiso::agent {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr std::string_view kRecords = "/run/kiso/nodes";

std::string RecordPath(const std::string& agent_dir) {
  std::string slug = agent_dir;
  std::replace(slug.begin(), slug.end(), '/', '_');
  return fmt::format("{}/{}.json", kRecords, slug);
}

bool Alive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

// The node's agent process, if it still runs: a kiso or kiso-agent whose
// command line names the node's data directory (or names none: the default).
bool IsAgentOf(pid_t pid, const std::string& data_dir) {
  auto argv = CommandLineOf(pid);
  if (argv.empty()) return false;
  std::string exe = fs::path(argv[0]).filename();
  if (exe != "kiso" && exe != "kiso-agent") return false;
  bool names_dir = std::any_of(argv.begin(), argv.end(), [&](const std::string& a) {
    return a == data_dir || a == "--data-dir=" + data_dir;
  });
  bool names_none = std::find(argv.begin(), argv.end(), "--data-dir") == argv.end();
  return names_dir || names_none;
}

void StopAgent(const NodeRecord& record, ResetReport* report) {
  pid_t pid = record.pid;
  std::string data_dir = fs::path(record.agent_dir).parent_path();
  if (!Alive(pid) || !IsAgentOf(pid, data_dir)) return;
  // Gracefully first (it stops watching; containers stay for the steps below).
  kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Alive(pid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (Alive(pid)) kill(pid, SIGKILL);
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (Alive(pid) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (Alive(pid)) {
    report->failed.push_back(fmt::format("the node's agent (pid {}) did not stop", pid));
  } else {
    report->removed.push_back(fmt::format("the node's agent process {}", pid));
  }
}

// The nftables tables named (the nodes' service data planes), those there are.
void RemoveTables(const std::vector<std::string>& tables, ResetReport* report) {
  network::proxy::Nftables nft;
  for (const auto& t : tables) {
    if (!nft.List("list table ip " + t).ok()) continue;
    Status s = nft.Run("delete table ip " + t);
    if (s.ok()) {
      report->removed.push_back("nftables table ip " + t);
    } else {
      report->failed.push_back(fmt::format("nftables table ip {}: {}", t, s.ToString()));
    }
  }
}

void ResetNode(const NodeRecord& record, ResetReport* report) {
  StopAgent(record, report);
  std::string runtime_root = record.agent_dir + "/runtime";
  runtime::ResetContainers(runtime_root, record.runtime.empty() ? "runc" : record.runtime,
                           &report->removed, &report->failed);
  // Detached while the sandboxes' network namespaces are still mounted, so
  // the plugins remove the veths inside them too.
  network::CniOptions cni;
  cni.conflist = record.agent_dir + "/cni/10-kiso.conflist";
  cni.cache_dir = record.agent_dir + "/cni";
  cni.bridge = record.bridge;
  network::CniNetwork::Reset(cni, &report->removed, &report->failed);
  RemoveTables({network::proxy::TableFor(record.bridge),
                network::policy::PolicyTable(record.bridge.empty() ? "kiso0" : record.bridge)},
               report);
  if (!record.bridge.empty() && fs::exists("/sys/class/net/" + record.bridge)) {
    // The NetworkPolicy program on the bridge (its ports' went with their pods).
    if (Status s = network::policy::DetachEbpf(record.bridge); !s.ok())
      report->failed.push_back(s.ToString());
  }
  runtime::UnmountBelow(record.agent_dir, &report->removed, &report->failed);
  std::error_code ec;
  std::vector<std::string> subs = {"runtime/containers", "runtime/sandboxes", "runtime/state",
                                   "pods"};
  for (const auto& e : fs::directory_iterator(record.agent_dir + "/runtime", ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("state-")) subs.push_back("runtime/" + name);  // Further handlers'.
  }
  for (const auto& sub : subs) {
    std::string dir = record.agent_dir + "/" + sub;
    if (!fs::exists(dir, ec)) continue;
    fs::remove_all(dir, ec);
    if (ec) {
      report->failed.push_back(fmt::format("{}: {}", dir, ec.message()));
    } else {
      report->removed.push_back("directory " + dir);
    }
  }
  if (fs::remove(RecordPath(record.agent_dir), ec)) {
    report->removed.push_back("record " + RecordPath(record.agent_dir));
  }
}

// Nodes without a record: the directories that shims and mounts on this
// machine belong to (…/agent/runtime/containers/<id>, …/agent/runtime/sandboxes/<id>).
std::set<std::string> StrayAgentDirs() {
  std::set<std::string> out;
  auto add = [&](const std::string& path) {
    for (std::string_view marker : {"/runtime/containers/", "/runtime/sandboxes/"}) {
      size_t at = path.find(marker);
      if (at != std::string::npos) out.insert(path.substr(0, at));
    }
  };
  for (pid_t pid : ListProcesses()) {
    auto argv = CommandLineOf(pid);
    if (argv.empty() || fs::path(argv[0]).filename() != "kiso-shim") continue;
    for (const auto& a : argv) add(a);
  }
  for (const auto& point : runtime::MountPoints()) add(point);
  return out;
}

// What every node shares: left only when the last node is reset.
void ResetShared(ResetReport* report) {
  network::CniNetwork::RemoveRules(&report->removed, &report->failed);
  // The pod network across nodes: kiso's routes (protocol 75) and VXLAN device.
  network::overlay::ResetOverlay("kiso.1", &report->removed, &report->failed);
  // Service tables of nodes that left no record.
  network::proxy::Nftables nft;
  std::vector<std::string> tables;
  if (auto listed = nft.List("list tables ip"); listed.ok()) {
    std::istringstream lines(*listed);
    std::string table, family, name;
    while (lines >> table >> family >> name) {
      if (name == "kiso" || name.starts_with("kiso-")) tables.push_back(name);
    }
  }
  RemoveTables(tables, report);
  std::error_code ec;
  std::vector<std::string> parents = {"/sys/fs/cgroup/kiso"};
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec))
    parents.push_back(h.path().string() + "/kiso");
  for (const auto& p : parents) {
    if (fs::is_directory(p, ec) && rmdir(p.c_str()) == 0) report->removed.push_back("cgroup " + p);
  }
  for (const auto& dir : {std::string(kRecords), std::string("/run/kiso")}) {
    if (fs::is_directory(dir, ec) && fs::is_empty(dir, ec) && fs::remove(dir, ec))
      report->removed.push_back("directory " + dir);
  }
}

}  // namespace

Status WriteNodeRecord(const NodeRecord& record) {
  std::error_code ec;
  fs::create_directories(kRecords, ec);
  if (ec) return MakeStatus(Code::kInternal, "create {}: {}", kRecords, ec.message());
  json::object v{{"agentDir", record.agent_dir},
                 {"bridge", record.bridge},
                 {"runtime", record.runtime},
                 {"pid", record.pid}};
  std::string path = RecordPath(record.agent_dir);
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << json::serialize(v);
    if (!out.flush()) return MakeStatus(Code::kInternal, "write {}", path);
  }
  if (rename((path + ".tmp").c_str(), path.c_str()) != 0)
    return MakeStatus(Code::kInternal, "rename {}: {}", path, strerror(errno));
  return Status::Ok();
}

std::vector<NodeRecord> ReadNodeRecords() {
  std::vector<NodeRecord> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kRecords, ec)) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    std::string text((std::istreambuf_iterator<char>(in)), {});
    boost::system::error_code jec;
    auto v = json::parse(text, jec);
    if (jec || !v.is_object()) continue;
    const auto& o = v.get_object();
    auto str = [&](std::string_view k) {
      const auto* f = o.if_contains(k);
      return f && f->is_string() ? std::string(f->get_string()) : std::string();
    };
    NodeRecord r{str("agentDir"), str("bridge"), str("runtime"), 0};
    if (const auto* pid = o.if_contains("pid"); pid && pid->is_int64())
      r.pid = static_cast<int>(pid->get_int64());
    if (!r.agent_dir.empty()) out.push_back(std::move(r));
  }
  return out;
}

ResetReport ResetNodes(const std::optional<std::string>& data_dir) {
  ResetReport report;
  std::vector<NodeRecord> nodes;
  std::vector<NodeRecord> records = ReadNodeRecords();
  std::set<std::string> known;
  for (const auto& r : records) known.insert(r.agent_dir);
  if (data_dir) {
    std::string agent_dir = fs::absolute(*data_dir).lexically_normal().string() + "/agent";
    for (const auto& r : records) {
      if (r.agent_dir == agent_dir) nodes.push_back(r);
    }
    if (nodes.empty()) nodes.push_back({agent_dir, "", "runc", 0});
  } else {
    nodes = records;
    for (const auto& dir : StrayAgentDirs()) {
      if (!known.contains(dir)) nodes.push_back({dir, "", "runc", 0});
    }
  }
  for (const auto& node : nodes) ResetNode(node, &report);
  if (ReadNodeRecords().empty()) {
    if (!data_dir) {
      // Bridges of nodes no record describes any more (kiso's own names).
      std::error_code ec;
      for (const auto& link : fs::directory_iterator("/sys/class/net", ec)) {
        std::string name = link.path().filename();
        if (!name.starts_with("kiso") || !fs::exists(link.path() / "bridge", ec)) continue;
        Status s = network::CniNetwork::DeleteLink(name);
        if (s.ok()) {
          report.removed.push_back("link " + name);
        } else {
          report.failed.push_back(s.message());
        }
      }
    }
    ResetShared(&report);
  }
  return report;
}

}  // namespace kiso::agent
