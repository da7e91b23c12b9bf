// The node's resource figures: the kubelet's /stats/summary, read from /proc
// (the node) and from each running container's cgroup (runtime Stats). CPU
// rates are the usage since the previous reading at least a second older (a
// container held to its cpu limit runs in 100 ms slices: a shorter window
// can see it throttled throughout); the first reading of a container is taken
// twice, a second apart.
#include <fmt/format.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "agent/agent.h"
#include "api/errors.h"
#include "api/object.h"

namespace kiso::agent {

namespace json = boost::json;

namespace {

// The node's cpu time so far (every cpu, busy), from /proc/stat's first line.
std::optional<uint64_t> NodeCpuNs() {
  std::ifstream in("/proc/stat");
  std::string label;
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(in >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) ||
      label != "cpu")
    return std::nullopt;
  const uint64_t hz = static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  return (user + nice + system + irq + softirq + steal) * (1000000000 / hz);
}

// MemTotal, MemAvailable and MemFree in bytes.
std::map<std::string, uint64_t> MemInfo() {
  std::map<std::string, uint64_t> out;
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (!key.empty() && key.back() == ':') key.pop_back();
    out[key] = kib * 1024;
  }
  return out;
}

json::object Cpu(const std::string& time, uint64_t ns, uint64_t nano_cores) {
  return json::object{{"time", time}, {"usageNanoCores", nano_cores}, {"usageCoreNanoSeconds", ns}};
}

json::object Memory(const std::string& time, uint64_t usage, uint64_t working_set) {
  return json::object{{"time", time}, {"usageBytes", usage}, {"workingSetBytes", working_set}};
}

}  // namespace

json::value Agent::StatsSummary() {
  struct Reading {
    std::string ns, name, uid, container;
    runtime::ContainerStats stats;
  };
  auto read = [&] {
    std::vector<Reading> out;
    std::vector<std::tuple<std::string, std::string, std::string, std::string>> pods;
    {
      std::lock_guard lock(mu_);
      for (const auto& [key, s] : state_) {
        if (!s.sandbox_id.empty()) pods.emplace_back(s.ns, s.name, s.uid, s.sandbox_id);
      }
    }
    for (const auto& [ns, name, uid, sandbox] : pods) {
      for (const auto& c : ContainersOf(sandbox)) {
        if (c.state != runtime::ContainerState::kRunning) continue;
        auto stats = runtime_->Stats(c.id);
        if (stats.ok()) out.push_back({ns, name, uid, c.id + "\n" + c.name, *stats});
      }
    }
    return out;
  };
  auto readings = read();
  auto node_cpu = NodeCpuNs();
  auto now = std::chrono::system_clock::now();
  bool first = false;
  {
    std::lock_guard lock(stats_mu_);
    first = !cpu_samples_.contains("");
    for (const auto& r : readings) first = first || !cpu_samples_.contains(r.container);
  }
  if (first) {
    // No earlier reading to take a rate from: one now, the figures half a second later.
    {
      std::lock_guard lock(stats_mu_);
      for (const auto& r : readings) cpu_samples_[r.container] = {r.stats.at, r.stats.cpu_ns, 0};
      if (node_cpu) cpu_samples_[""] = {now, *node_cpu, 0};
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    readings = read();
    node_cpu = NodeCpuNs();
    now = std::chrono::system_clock::now();
  }
  auto rate = [&](const std::string& key, std::chrono::system_clock::time_point at, uint64_t ns) {
    CpuSample& last = cpu_samples_[key];
    auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(at - last.at).count();
    if (last.ns != 0 && elapsed < 950'000'000 && ns >= last.ns) return last.nano_cores;
    uint64_t nano_cores = 0;
    if (last.ns != 0 && elapsed > 0 && ns >= last.ns) {
      nano_cores = static_cast<uint64_t>(static_cast<double>(ns - last.ns) * 1e9 /
                                         static_cast<double>(elapsed));
    }
    last = {at, ns, nano_cores};
    return nano_cores;
  };
  const std::string time = api::NowRfc3339();
  auto mem = MemInfo();
  uint64_t total = mem["MemTotal"];
  json::object node{{"nodeName", options_.node_name}};
  std::map<std::string, json::object> pods;  // "ns/name" → pod stats.
  std::lock_guard lock(stats_mu_);
  if (node_cpu) node["cpu"] = Cpu(time, *node_cpu, rate("", now, *node_cpu));
  node["memory"] = json::object{{"time", time},
                                {"availableBytes", mem["MemAvailable"]},
                                {"usageBytes", total - mem["MemFree"]},
                                {"workingSetBytes", total - mem["MemAvailable"]}};
  std::set<std::string> seen;
  for (const auto& r : readings) {
    seen.insert(r.container);
    auto& pod = pods[r.ns + "/" + r.name];
    if (pod.empty()) {
      pod["podRef"] = json::object{{"name", r.name}, {"namespace", r.ns}, {"uid", r.uid}};
      pod["containers"] = json::array();
      pod["cpu"] = Cpu(time, 0, 0);
      pod["memory"] = Memory(time, 0, 0);
    }
    uint64_t nano_cores = rate(r.container, r.stats.at, r.stats.cpu_ns);
    std::string name = r.container.substr(r.container.find('\n') + 1);
    pod["containers"].as_array().push_back(
        json::object{{"name", name},
                     {"cpu", Cpu(time, r.stats.cpu_ns, nano_cores)},
                     {"memory", Memory(time, r.stats.memory_usage, r.stats.memory_working_set)}});
    auto& cpu = pod["cpu"].as_object();
    cpu["usageNanoCores"] = cpu["usageNanoCores"].to_number<uint64_t>() + nano_cores;
    cpu["usageCoreNanoSeconds"] =
        cpu["usageCoreNanoSeconds"].to_number<uint64_t>() + r.stats.cpu_ns;
    auto& memory = pod["memory"].as_object();
    memory["usageBytes"] = memory["usageBytes"].to_number<uint64_t>() + r.stats.memory_usage;
    memory["workingSetBytes"] =
        memory["workingSetBytes"].to_number<uint64_t>() + r.stats.memory_working_set;
  }
  // Containers gone since: their readings go too.
  std::erase_if(cpu_samples_,
                [&](const auto& e) { return !e.first.empty() && !seen.contains(e.first); });
  json::array pod_list;
  for (auto& [key, pod] : pods) pod_list.push_back(std::move(pod));
  return json::object{{"node", std::move(node)}, {"pods", std::move(pod_list)}};
}

apiserver::Response Agent::ServeNodeProxy(const apiserver::Request& req) {
  // /api/v1/nodes/NAME/proxy/PATH
  std::string_view path = req.path;
  size_t at = path.find("/proxy/");
  std::string_view rest = at == std::string_view::npos ? "" : path.substr(at + 6);
  apiserver::Response r;
  if (req.method != "GET" || rest != "/stats/summary") {
    api::ApiError e = api::NotFoundPath();
    r.status = e.code;
    r.body = e.ToJson();
    return r;
  }
  r.body = json::serialize(StatsSummary());
  return r;
}

}  // namespace kiso::agent
