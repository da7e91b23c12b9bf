// sched_bench: the scheduler's figures, `sched <figure>=<value> <unit>`.
//   SchedulingBasic (kube-scheduler's scheduler_perf shape): 5,000 nodes and
//   10,000 pods with requests; half are created while the scheduler runs
//   (e2e_throughput: first create → last pod bound in the store), half are
//   queued first and then scheduled (scheduling_throughput). Then a 1,000-replica Deployment on 100
//   hollow nodes: time until every pod is Running. And the resident memory.
//   SchedulingDaemonset: a DaemonSet over the same 5,000 nodes, created → a
//   pod bound on each (upstream's threshold: 390 pods/s).
// Everything runs in this one process — the API server on a SQLite store in a
// temporary directory, the scheduler and controllers over the in-process
// client, the hollow nodes — which is how 5,000 nodes fit in memory. There is
// no peer scheduler on this machine; kube-scheduler's own threshold for
// SchedulingBasic 5000 nodes/10000 pods is 270 pods/s.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include "agent/hollow.h"
#include "api/object.h"
#include "apiserver/api_server.h"
#include "bench_util.h"
#include "client/in_process.h"
#include "controller/daemonset_controller.h"
#include "controller/deployment_controller.h"
#include "controller/garbage_collector.h"
#include "controller/replicaset_controller.h"
#include "scheduler/scheduler.h"
#include "support/proc.h"
#include "support/temp_dir.h"

namespace kiso::bench {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

void Print(const std::string& figure, double value, const std::string& unit) {
  PrintFigure("sched", figure, value, unit);
}

const api::ResourceType& R(std::string_view group, std::string_view plural) {
  return *api::FindResource(group, "v1", plural);
}

constexpr int kZones = 10;

// Node i is in zone i % 10.
json::value NodeObject(int i) {
  std::string name = fmt::format("node-{}", i);
  json::object resources{{"cpu", "4"}, {"memory", "16Gi"}, {"pods", "110"}};
  json::object labels{{"kubernetes.io/hostname", name},
                      {"topology.kubernetes.io/zone", fmt::format("zone-{}", i % kZones)}};
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata", json::object{{"name", name}, {"labels", std::move(labels)}}},
      {"status", json::object{{"capacity", resources}, {"allocatable", resources}}}};
}

json::value PodObject(const std::string& name) {
  json::object requests{{"cpu", "100m"}, {"memory", "100Mi"}};
  json::object container{{"name", "pause"},
                         {"image", "registry.k8s.io/pause:3.10"},
                         {"resources", json::object{{"requests", requests}}}};
  return json::object{{"apiVersion", "v1"},
                      {"kind", "Pod"},
                      {"metadata", json::object{{"name", name}}},
                      {"spec", json::object{{"containers", json::array{container}}}}};
}

// Runs `work(i)` for i in [0, n) on `threads` threads.
template <typename F>
void Parallel(int n, int threads, F work) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = next++; i < n; i = next++) work(i);
    });
  }
  for (auto& t : pool) t.join();
}

int Run(int nodes, int pods, int deployment_nodes, int replicas) {
  testing::TempDir dir("schedbench");
  auto store = store::OpenStore("sqlite://" + dir.File("kiso.db"));
  if (!store.ok()) return 1;
  apiserver::ApiServerOptions options;
  options.port = 0;
  options.data_dir = dir.path();
  auto server = apiserver::ApiServer::Start(store->get(), options);
  if (!server.ok()) {
    fmt::print(stderr, "{}\n", server.status().ToString());
    return 1;
  }
  auto transport = std::make_shared<client::InProcessTransport>(server->get());
  client::Client client(transport, "sched-bench");

  // SchedulingBasic: nodes as API objects (no kubelets, as scheduler_perf does).
  auto t0 = Clock::now();
  std::atomic<int> failed{0};
  Parallel(nodes, 16, [&](int i) {
    auto created = client.Create(R("", "nodes"), "", NodeObject(i));
    if (created.ok()) {
      json::value with_status = *created;
      with_status.as_object()["status"] = NodeObject(i).at("status");
      if (!client.Update(R("", "nodes"), "", with_status, "status").ok()) ++failed;
    } else {
      ++failed;
    }
  });
  if (failed > 0) {
    fmt::print(stderr, "{} of {} nodes could not be registered\n", failed.load(), nodes);
    return 1;
  }
  Print("nodes_registered", nodes, "nodes");
  Print("node_registration", std::chrono::duration<double>(Clock::now() - t0).count(), "s");

  // Phase 1: pods created while the scheduler runs (created → bound, end to end).
  // Phase 2: pods created first, then the scheduler started (the scheduling rate alone).
  auto scheduler = scheduler::Scheduler::Create(&client, {});
  if (!scheduler.ok()) return 1;
  (*scheduler)->Start();
  int first = pods / 2;
  auto start = Clock::now();
  std::atomic<int64_t> created{0};
  std::thread creator([&] {
    Parallel(first, 16, [&](int i) {
      if (client.Create(R("", "pods"), "default", PodObject(fmt::format("pod-{}", i))).ok())
        created++;
    });
  });
  auto deadline = start + std::chrono::minutes(10);
  while ((*scheduler)->bound() < first && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  double all_bound = std::chrono::duration<double>(Clock::now() - start).count();
  creator.join();
  if (created < first || (*scheduler)->bound() < first) {
    fmt::print(stderr, "{} of {} pods created, {} bound in 10 minutes\n", created.load(), first,
               (*scheduler)->bound());
    return 1;
  }
  Print("e2e_pods", first, "pods");
  Print("e2e_throughput", static_cast<double>((*scheduler)->bound()) / all_bound, "pods/s");
  (*scheduler)->Stop();
  scheduler->reset();
  Parallel(pods - first, 16, [&](int i) {
    if (!client.Create(R("", "pods"), "default", PodObject(fmt::format("pod-{}", first + i))).ok())
      ++failed;
  });
  if (failed > 0) {
    fmt::print(stderr, "{} of {} pods could not be created\n", failed.load(), pods - first);
    return 1;
  }
  auto second = scheduler::Scheduler::Create(&client, {});
  if (!second.ok()) return 1;
  start = Clock::now();
  (*second)->Start();
  while ((*second)->bound() < pods - first && Clock::now() < start + std::chrono::minutes(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  double sched_s = std::chrono::duration<double>(Clock::now() - start).count();
  if ((*second)->bound() < pods - first) {
    fmt::print(stderr, "{} of {} queued pods bound in 10 minutes\n", (*second)->bound(),
               pods - first);
    return 1;
  }
  Print("queued_pods", pods - first, "pods");
  Print("scheduling_throughput", static_cast<double>((*second)->bound()) / sched_s, "pods/s");
  Print("pods_bound_total", static_cast<double>(first + (*second)->bound()), "pods");
  Print("rss_with_nodes_and_pods", testing::RssMb(), "MB");
  (*second)->Stop();
  // Capacity check: no node over its allocatable (100m each, 4 cpu, 110 pods).
  auto list = client.List(R("", "pods"), "default");
  std::map<std::string, int> per_node;
  if (list.ok()) {
    for (const auto& p : list->at("items").as_array())
      per_node[std::string(api::GetString(p, {"spec", "nodeName"}))]++;
  }
  int over = 0;
  for (const auto& [n, count] : per_node) over += (n.empty() || count > 40) ? 1 : 0;
  Print("nodes_over_capacity_or_unbound", over, "nodes");
  if (!list.ok() || over > 0) {
    fmt::print(stderr, "nodes over capacity or pods unbound: {}\n", over);
    return 1;
  }
  Parallel(pods, 16, [&](int i) {
    client::DeleteOptions o;
    o.grace_period_seconds = 0;
    (void)client.Delete(R("", "pods"), "default", fmt::format("pod-{}", i), o);
  });

  // SchedulingPodAntiAffinity and TopologySpreading (scheduler_perf's workloads of those
  // names): pods queued first, then the scheduler started; each placement checked.
  auto constrained = [&](const std::string& figure, int count, const json::value& extra_spec,
                         const std::function<bool(const std::map<std::string, int>&)>& check) {
    std::string prefix = figure;
    std::replace(prefix.begin(), prefix.end(), '_', '-');  // Names are DNS subdomains.
    Parallel(count, 16, [&](int i) {
      json::value pod = PodObject(fmt::format("{}-{}", prefix, i));
      auto& obj = pod.as_object();
      obj["metadata"].as_object()["labels"] = json::object{{"group", figure}};
      for (const auto& [k, v] : extra_spec.as_object()) obj["spec"].as_object()[k] = v;
      auto made = client.Create(R("", "pods"), "default", pod);
      if (!made.ok() && failed++ == 0)
        fmt::print(stderr, "{}: create a pod: {}\n", figure, made.status().ToString());
    });
    if (failed > 0) return false;
    auto sched = scheduler::Scheduler::Create(&client, {});
    if (!sched.ok()) return false;
    auto s0 = Clock::now();
    (*sched)->Start();
    while ((*sched)->bound() < count && Clock::now() < s0 + std::chrono::minutes(10))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    double s = std::chrono::duration<double>(Clock::now() - s0).count();
    int64_t bound = (*sched)->bound();
    (*sched)->Stop();
    Print(figure + "_pods", static_cast<double>(bound), "pods");
    Print(figure + "_throughput", static_cast<double>(bound) / s, "pods/s");
    std::map<std::string, int> per_node;
    auto list = client.List(R("", "pods"), "default");
    if (!list.ok()) return false;
    for (const auto& p : list->at("items").as_array())
      per_node[std::string(api::GetString(p, {"spec", "nodeName"}))]++;
    bool ok = bound == count && !per_node.contains("") && check(per_node);
    if (!ok) {
      fmt::print(stderr, "{}: {} of {} bound, or placed against its constraint\n", figure, bound,
                 count);
    }
    Parallel(count, 16, [&](int i) {
      client::DeleteOptions o;
      o.grace_period_seconds = 0;
      (void)client.Delete(R("", "pods"), "default", fmt::format("{}-{}", prefix, i), o);
    });
    return ok;
  };
  const int anti_pods = std::min(nodes, 1000);
  json::value anti = json::parse(R"({"affinity":{"podAntiAffinity":{
      "requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":
      {"group":"anti_affinity"}},"topologyKey":"kubernetes.io/hostname"}]}}})");
  if (!constrained("anti_affinity", anti_pods, anti, [](const std::map<std::string, int>& per) {
        return std::all_of(per.begin(), per.end(), [](const auto& e) { return e.second == 1; });
      }))
    return 1;
  json::value spread = json::parse(R"({"topologySpreadConstraints":[{"maxSkew":1,
      "topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule",
      "labelSelector":{"matchLabels":{"group":"topology_spread"}}}]})");
  if (!constrained("topology_spread", 2000, spread, [&](const std::map<std::string, int>& per) {
        std::map<int, int> zones;
        for (const auto& [node, n] : per) zones[std::stoi(node.substr(5)) % kZones] += n;
        int lo = INT32_MAX, hi = 0;
        for (int z = 0; z < std::min(nodes, kZones); ++z) {
          lo = std::min(lo, zones[z]);
          hi = std::max(hi, zones[z]);
        }
        return hi - lo <= 1;
      }))
    return 1;

  // SchedulingDaemonset: a DaemonSet over the same nodes, created → a pod bound on each (the
  // DaemonSet controller makes them, the scheduler binds them).
  {
    auto sched = scheduler::Scheduler::Create(&client, {});
    if (!sched.ok()) return 1;
    controller::DaemonSetController daemons(&client);
    (*sched)->Start();
    daemons.Start();
    json::value ds = json::object{
        {"apiVersion", "apps/v1"},
        {"kind", "DaemonSet"},
        {"metadata", json::object{{"name", "daemon"}}},
        {"spec",
         json::object{
             {"selector", json::object{{"matchLabels", json::object{{"app", "daemon"}}}}},
             {"template",
              json::object{{"metadata", json::object{{"labels", json::object{{"app", "daemon"}}}}},
                           {"spec", PodObject("x").at("spec")}}}}}};
    auto d0 = Clock::now();
    if (!client.Create(R("apps", "daemonsets"), "default", ds).ok()) return 1;
    while ((*sched)->bound() < nodes && Clock::now() < d0 + std::chrono::minutes(10))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    double ds_s = std::chrono::duration<double>(Clock::now() - d0).count();
    if ((*sched)->bound() < nodes) {
      fmt::print(stderr, "{} of {} daemon pods bound in 10 minutes\n", (*sched)->bound(), nodes);
      return 1;
    }
    Print("daemonset_pods", static_cast<double>((*sched)->bound()), "pods");
    Print("daemonset_throughput", static_cast<double>((*sched)->bound()) / ds_s, "pods/s");
    daemons.Stop();
    (*sched)->Stop();
    (void)client.Delete(R("apps", "daemonsets"), "default", "daemon");
    auto daemon_pods = client.List(R("", "pods"), "default");
    if (daemon_pods.ok()) {
      const auto& items = daemon_pods->at("items").as_array();
      Parallel(static_cast<int>(items.size()), 16, [&](int i) {
        client::DeleteOptions o;
        o.grace_period_seconds = 0;
        (void)client.Delete(R("", "pods"), "default",
                            api::GetString(items[static_cast<size_t>(i)], {"metadata", "name"}), o);
      });
    }
  }
  Parallel(nodes, 16,
           [&](int i) { (void)client.Delete(R("", "nodes"), "", fmt::format("node-{}", i)); });

  // A 1,000-replica Deployment on 100 hollow nodes, created → all Running.
  auto scheduler2 = scheduler::Scheduler::Create(&client, {});
  controller::ReplicaSetController rs(&client);
  controller::DeploymentController deployments(&client);
  agent::HollowOptions hollow_options;
  hollow_options.count = deployment_nodes;
  agent::HollowNodes hollow(&client, hollow_options);
  if (!hollow.Start().ok()) return 1;
  (*scheduler2)->Start();
  rs.Start();
  deployments.Start();
  json::value deployment = json::object{
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", json::object{{"name", "big"}}},
      {"spec",
       json::object{
           {"replicas", replicas},
           {"selector", json::object{{"matchLabels", json::object{{"app", "big"}}}}},
           {"template",
            json::object{{"metadata", json::object{{"labels", json::object{{"app", "big"}}}}},
                         {"spec", PodObject("x").at("spec")}}}}}};
  auto d0 = Clock::now();
  if (!client.Create(R("apps", "deployments"), "default", deployment).ok()) return 1;
  bool all_running = false;
  while (!all_running && Clock::now() < d0 + std::chrono::minutes(5)) {
    auto d = client.Get(R("apps", "deployments"), "default", "big");
    const auto* available = d.ok() ? api::Find(*d, {"status", "availableReplicas"}) : nullptr;
    all_running = available && available->is_int64() && available->get_int64() == replicas;
    if (!all_running) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!all_running) {
    fmt::print(stderr, "the Deployment's {} replicas were not all available in 5 minutes\n",
               replicas);
    return 1;
  }
  Print("deployment_all_running", std::chrono::duration<double>(Clock::now() - d0).count(), "s");
  deployments.Stop();
  rs.Stop();
  (*scheduler2)->Stop();
  hollow.Stop();
  return 0;
}

}  // namespace
}  // namespace kiso::bench

int main(int argc, char** argv) {
  if (!kiso::bench::CleanMachine()) return 2;
  CLI::App app{"sched_bench: figures of kiso's scheduler and controllers"};
  int nodes = 5000, pods = 10000, deployment_nodes = 100, replicas = 1000;
  app.add_option("--nodes", nodes)->capture_default_str();
  app.add_option("--pods", pods)->capture_default_str();
  app.add_option("--deployment-nodes", deployment_nodes)->capture_default_str();
  app.add_option("--replicas", replicas)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return kiso::bench::Run(nodes, pods, deployment_nodes, replicas);
}
