// node_bench: the node agent's figures against the real `kiso server` (its
// embedded agent, runc, CNI) on 127.0.0.1, beside bare `runc run` of the same
// root file system in the same run. One line per figure: `node <figure>=<value> <unit>`.
//   pod create → Running (the agent's status write seen by a watch), p50/p99
//   over 100 sequential and 20 concurrent pods; bare `runc run -d` p50/p99
//   of the same number, one after another and all at once, and the ratios;
//   server RSS idle with and without the agent, and with 50 pods; a
//   standalone `kiso agent` process's RSS idle and with 50 pods;
//   shim RSS per container. Needs root, runc and busybox-static.
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "api/object.h"
#include "api/resources.h"
#include "bench_util.h"
#include "client/client.h"
#include "client/https_transport.h"
#include "client/informer.h"
#include "client/kubeconfig.h"
#include "common/process.h"
#include "support/oci_image.h"
#include "support/proc.h"
#include "support/temp_dir.h"

namespace kiso::bench {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kBridge = "kisobench0";
constexpr const char* kPodCidr = "10.234.0.0/24";

void Print(const std::string& figure, double value, const std::string& unit) {
  PrintFigure("node", figure, value, unit);
}

// One `kiso server` child; SIGTERM'd and reaped on destruction.
class Server {
 public:
  Server(const std::string& kiso, const std::string& dir, bool agent) : dir_(dir) {
    port_ = testing::FreeLoopbackPort();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // Never outlives the benchmark.
      std::string log = dir + "/server.log";
      freopen(log.c_str(), "a", stdout);
      freopen(log.c_str(), "a", stderr);
      std::string port = std::to_string(port_);
      if (agent) {
        execl(kiso.c_str(), kiso.c_str(), "server", "--data-dir", dir.c_str(), "--https-port",
              port.c_str(), "--node-name", "bench-node", "--pod-cidr", kPodCidr, "--cni-bridge",
              kBridge, nullptr);
      } else {
        execl(kiso.c_str(), kiso.c_str(), "server", "--data-dir", dir.c_str(), "--https-port",
              port.c_str(), "--disable-agent", nullptr);
      }
      _exit(127);
    }
  }
  ~Server() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  // Waits for the kubeconfig and /readyz; then the client is usable.
  bool WaitReady() {
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      if (fs::exists(dir_ + "/kubeconfig.yaml")) {
        auto config = client::LoadKubeConfig(dir_ + "/kubeconfig.yaml");
        if (config.ok()) {
          auto transport = client::HttpsTransport::Create(*config);
          if (transport.ok()) {
            apiserver::Request req;
            req.method = "GET";
            req.path = "/readyz";
            if ((*transport)->RoundTrip(req).status == 200) {
              client_ = std::make_unique<client::Client>(*transport, "node-bench");
              return true;
            }
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  client::Client* client() { return client_.get(); }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<client::Client> client_;
};

// A standalone `kiso agent` joining `server` over HTTPS; SIGTERM'd and reaped
// on destruction.
class StandaloneAgent {
 public:
  StandaloneAgent(const std::string& kiso, const std::string& server_dir, int port,
                  const std::string& dir) {
    std::ifstream token_file(server_dir + "/tls/admin.token");
    std::string token;
    token_file >> token;
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::string log = dir + "/agent.log";
      freopen(log.c_str(), "a", stdout);
      freopen(log.c_str(), "a", stderr);
      std::string url = fmt::format("https://127.0.0.1:{}", port);
      std::string ca = server_dir + "/tls/ca.crt";
      execl(kiso.c_str(), kiso.c_str(), "agent", "--server", url.c_str(), "--token", token.c_str(),
            "--ca-file", ca.c_str(), "--data-dir", dir.c_str(), "--node-name", "bench-agent",
            "--pod-cidr", kPodCidr, "--cni-bridge", kBridge, nullptr);
      _exit(127);
    }
  }
  ~StandaloneAgent() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }

json::value PodObject(const std::string& name) {
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", name}, {"labels", json::object{{"bench", "node"}}}}},
      {"spec",
       json::object{{"terminationGracePeriodSeconds", 0},
                    {"containers", json::array{json::object{
                                       {"name", "c"},
                                       {"image", "busybox:bench"},  // IfNotPresent: never pulled.
                                       {"command", json::array{"sleep", "3600"}}}}}}}};
}

// Records when each pod is first seen Running, through a watch.
class RunningWatch {
 public:
  explicit RunningWatch(client::Client* c)
      : informer_(c, &Pods(), [this](const json::value*, const json::value& pod, bool deleted) {
          if (deleted || api::GetString(pod, {"status", "phase"}) != "Running") return;
          std::lock_guard lock(mu_);
          running_.emplace(std::string(api::GetString(pod, {"metadata", "name"})), Clock::now());
          cv_.notify_all();
        }) {
    informer_.Start();
    informer_.WaitForSync(Clock::now() + std::chrono::seconds(10));
  }
  std::optional<Clock::time_point> Wait(const std::string& name, Clock::duration limit) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, limit, [&] { return running_.contains(name); })) return std::nullopt;
    return running_.at(name);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Clock::time_point> running_;
  client::Informer informer_;
};

bool DeleteAll(client::Client* c) {
  (void)c->DeleteCollection(Pods(), "default", {});
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    auto list = c->List(Pods(), "default");
    if (list.ok() && list->at("items").as_array().empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

double ShimRssMb() {
  auto r = RunCommand({"/usr/bin/pgrep", "-f", "kiso-shim"});
  if (!r.ok()) return 0;
  std::vector<double> rss;
  std::istringstream in(r->out);
  pid_t pid = 0;
  while (in >> pid) rss.push_back(testing::RssMb(pid));
  return Percentile(rss, 0.5);
}

// Bare runc: `runc run -d` of the same root file system, then delete; `n` one
// after another, or all at once when `at_once`.
std::vector<double> BareRunc(const std::string& rootfs, const std::string& dir, int n,
                             bool at_once) {
  std::string bundle = dir + "/bare";
  fs::create_directories(bundle);
  (void)RunCommand({"/usr/sbin/runc", "spec", "--bundle", bundle});
  std::string config_path = bundle + "/config.json";
  std::ifstream in(config_path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  json::value spec = json::parse(text);
  spec.at("process").as_object()["terminal"] = false;
  spec.at("process").as_object()["args"] = json::array{"sleep", "3600"};
  spec.at("root").as_object()["path"] = rootfs;
  spec.at("root").as_object()["readonly"] = true;
  std::ofstream(config_path) << json::serialize(spec);
  std::vector<double> out(static_cast<size_t>(n));
  std::string root = dir + "/bare-state";
  auto id_of = [](int i) { return fmt::format("kiso-bench-bare-{}", i); };
  auto run = [&](int i) {
    auto begin = Clock::now();
    CommandOptions quiet;
    quiet.capture_output = false;  // The detached container keeps its stdio.
    auto r = RunCommand(
        {"/usr/sbin/runc", "--root", root, "run", "-d", "--bundle", bundle, id_of(i)}, quiet);
    out[static_cast<size_t>(i)] = Ms(Clock::now() - begin);
    if (!r.ok() || r->exit_code != 0) {
      fmt::print(stderr, "runc run: exit {}\n", r.ok() ? r->exit_code : -1);
    }
  };
  auto remove = [&](int i) {
    (void)RunCommand({"/usr/sbin/runc", "--root", root, "delete", "--force", id_of(i)});
  };
  if (at_once) {
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) threads.emplace_back(run, i);
    for (auto& t : threads) t.join();
    for (int i = 0; i < n; ++i) remove(i);
  } else {
    for (int i = 0; i < n; ++i) {
      run(i);
      remove(i);
    }
  }
  return out;
}

// Pull throughput beside skopeo: one image with a 64 MiB incompressible layer,
// served by Debian's docker-registry on 127.0.0.1, each pulled into a fresh store.
void PullThroughput(const std::string& kiso, const std::string& dir) {
  std::string rootfs = dir + "/big-rootfs";
  fs::create_directories(rootfs);
  {
    std::ofstream out(rootfs + "/blob", std::ios::binary);
    std::mt19937_64 rng(42);
    std::vector<uint64_t> chunk(1 << 16);
    for (int i = 0; i < 128; ++i) {  // 128 × 512 KiB.
      for (auto& w : chunk) w = rng();
      out.write(reinterpret_cast<const char*>(chunk.data()),
                static_cast<std::streamsize>(chunk.size() * sizeof(uint64_t)));
    }
  }
  std::string work = dir + "/big-work";
  fs::create_directories(work);
  std::string tar = testing::BuildOciArchive(work, rootfs, "bench/big:1", {"sh"}, dir + "/big.tar");
  int port = testing::FreeLoopbackPort();
  std::string config = dir + "/registry.yml";
  std::ofstream(config) << fmt::format(
      "version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: "
      "{}/registry}}\n"
      "http:\n  addr: 127.0.0.1:{}\n",
      dir, port);
  pid_t registry = fork();
  if (registry == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // Never outlives the benchmark.
    std::string log = dir + "/registry.log";
    freopen(log.c_str(), "w", stdout);
    freopen(log.c_str(), "a", stderr);
    execl("/usr/bin/docker-registry", "docker-registry", "serve", config.c_str(), nullptr);
    _exit(127);
  }
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  } reaper{registry};
  std::string image = fmt::format("127.0.0.1:{}/bench/big:1", port);
  bool pushed = false;
  for (int i = 0; i < 100 && !pushed; ++i) {  // Until the registry listens.
    auto r = RunCommand({"/usr/bin/skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                         "oci-archive:" + tar, "docker://" + image});
    pushed = r.ok() && r->exit_code == 0;
    if (!pushed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!pushed) {
    fmt::print(stderr, "could not push to docker-registry\n");
    return;
  }
  double mb = static_cast<double>(fs::file_size(tar)) / 1e6;
  std::vector<double> kiso_s;
  std::vector<double> skopeo_s;
  for (int round = 0; round < 3; ++round) {
    std::string a = fmt::format("{}/pull-kiso-{}", dir, round);
    auto begin = Clock::now();
    auto r = RunCommand({kiso, "image", "--data-dir", a, "pull", image});
    kiso_s.push_back(std::chrono::duration<double>(Clock::now() - begin).count());
    if (!r.ok() || r->exit_code != 0)
      fmt::print(stderr, "kiso pull failed: {}\n", r.ok() ? r->err : "");
    std::string b = fmt::format("{}/pull-skopeo-{}", dir, round);
    begin = Clock::now();
    r = RunCommand({"/usr/bin/skopeo", "copy", "--quiet", "--src-tls-verify=false",
                    "docker://" + image, "oci:" + b + ":big"});
    skopeo_s.push_back(std::chrono::duration<double>(Clock::now() - begin).count());
    if (!r.ok() || r->exit_code != 0) fmt::print(stderr, "skopeo copy failed\n");
  }
  Print("pull_image_size", mb, "MB");
  Print("pull_throughput_kiso", mb / Percentile(kiso_s, 0.5), "MB/s");
  Print("pull_throughput_skopeo", mb / Percentile(skopeo_s, 0.5), "MB/s");
  Print("pull_kiso_over_skopeo", Percentile(skopeo_s, 0.5) / Percentile(kiso_s, 0.5), "x");
}

// A `kiso agent` process of its own (server without an agent): its RSS idle
// and with `resident` pods running. Returns the number of failures.
int StandaloneAgentRss(const std::string& kiso, const testing::TempDir& dir, const std::string& tar,
                       int resident) {
  std::string server_dir = dir.File("agent-server");
  std::string agent_dir = dir.File("agent");
  fs::create_directories(server_dir);
  fs::create_directories(agent_dir);
  auto imported = RunCommand({kiso, "image", "--data-dir", agent_dir, "import", tar});
  if (!imported.ok() || imported->exit_code != 0) return 1;
  Server server(kiso, server_dir, false);
  if (!server.WaitReady()) return 1;
  client::Client* c = server.client();
  StandaloneAgent agent(kiso, server_dir, server.port(), agent_dir);
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!c->Get(Nodes(), "", "bench-agent").ok() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  Print("standalone_agent_rss_idle", testing::RssMb(agent.pid()), "MB");
  // RSS counts every library page it maps, shared with any process using them.
  Print("standalone_agent_pss_idle", testing::SmapsMb(agent.pid(), "Pss"), "MB");
  Print("standalone_agent_private_idle", testing::SmapsMb(agent.pid(), "Private_Dirty"), "MB");
  RunningWatch watch(c);
  for (int i = 0; i < resident; ++i) {
    (void)c->Create(Pods(), "default", PodObject(fmt::format("resident-{}", i)));
  }
  int missing = 0;
  for (int i = 0; i < resident; ++i) {
    missing += !watch.Wait(fmt::format("resident-{}", i), std::chrono::seconds(60));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  Print(fmt::format("standalone_agent_rss_with_{}_pods", resident), testing::RssMb(agent.pid()),
        "MB");
  if (missing > 0) fmt::print(stderr, "{} pods not Running on the standalone agent\n", missing);
  if (!DeleteAll(c)) fmt::print(stderr, "pods not deleted\n");
  return missing > 0 ? 1 : 0;
}

int Run(const std::string& kiso, int sequential, int concurrent, int resident) {
  if (geteuid() != 0) {
    fmt::print(stderr, "node_bench needs root\n");
    return 1;
  }
  testing::TempDir dir("nodebench");
  std::string rootfs = dir.File("rootfs");
  if (!testing::MakeBusyboxRootfs(rootfs)) {
    fmt::print(stderr, "busybox-static is not installed\n");
    return 1;
  }
  std::string tar = testing::BuildOciArchive(dir.path(), rootfs, "docker.io/library/busybox:bench",
                                             {"sh"}, dir.File("busybox.tar"));
  // Idle RSS without the agent, for the agent's share.
  double without_agent = 0;
  {
    std::string d = dir.File("plain");
    fs::create_directories(d);
    Server plain(kiso, d, false);
    if (!plain.WaitReady()) return 1;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    without_agent = testing::RssMb(plain.pid());
  }
  std::string data = dir.File("node");
  fs::create_directories(data);
  auto imported = RunCommand({kiso, "image", "--data-dir", data, "import", tar});
  if (!imported.ok() || imported->exit_code != 0) {
    fmt::print(stderr, "import failed\n");
    return 1;
  }
  int status = 0;
  {
    Server server(kiso, data, true);
    if (!server.WaitReady()) {
      fmt::print(stderr, "server not ready\n");
      return 1;
    }
    client::Client* c = server.client();
    // The node registers once the agent has started.
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!c->Get(Nodes(), "", "bench-node").ok() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    double idle = testing::RssMb(server.pid());
    Print("server_rss_idle_with_agent", idle, "MB");
    Print("server_rss_idle_without_agent", without_agent, "MB");
    Print("agent_rss_idle", idle - without_agent, "MB");

    RunningWatch watch(c);
    std::vector<double> seq;
    for (int i = 0; i < sequential; ++i) {
      std::string name = fmt::format("seq-{}", i);
      auto begin = Clock::now();
      if (!c->Create(Pods(), "default", PodObject(name)).ok()) ++status;
      auto running = watch.Wait(name, std::chrono::seconds(30));
      if (!running) {
        fmt::print(stderr, "{} not Running in 30 s\n", name);
        return 1;
      }
      seq.push_back(Ms(*running - begin));
      (void)c->Delete(Pods(), "default", name);
    }
    Print("create_to_running_sequential_p50", Percentile(seq, 0.5), "ms");
    Print("create_to_running_sequential_p99", Percentile(seq, 0.99), "ms");
    if (!DeleteAll(c)) fmt::print(stderr, "pods not deleted\n");

    std::vector<Clock::time_point> begins(static_cast<size_t>(concurrent));
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(concurrent));
    for (int i = 0; i < concurrent; ++i) {
      threads.emplace_back([&, i] {
        begins[static_cast<size_t>(i)] = Clock::now();
        (void)c->Create(Pods(), "default", PodObject(fmt::format("par-{}", i)));
      });
    }
    for (auto& t : threads) t.join();
    std::vector<double> par;
    for (int i = 0; i < concurrent; ++i) {
      auto running = watch.Wait(fmt::format("par-{}", i), std::chrono::seconds(60));
      if (running) par.push_back(Ms(*running - begins[static_cast<size_t>(i)]));
    }
    Print("create_to_running_concurrent_p50", Percentile(par, 0.5), "ms");
    Print("create_to_running_concurrent_p99", Percentile(par, 0.99), "ms");
    if (!DeleteAll(c)) fmt::print(stderr, "pods not deleted\n");

    for (int i = 0; i < resident; ++i) {
      (void)c->Create(Pods(), "default", PodObject(fmt::format("resident-{}", i)));
    }
    for (int i = 0; i < resident; ++i) {
      (void)watch.Wait(fmt::format("resident-{}", i), std::chrono::seconds(60));
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    Print(fmt::format("server_rss_with_{}_pods", resident), testing::RssMb(server.pid()), "MB");
    Print("shim_rss_each_p50", ShimRssMb(), "MB");
    if (!DeleteAll(c)) fmt::print(stderr, "pods not deleted\n");

    std::string rootfs =
        data + "/images/rootfs/" +
        fs::directory_iterator(data + "/images/rootfs")->path().filename().string();
    std::vector<double> bare = BareRunc(rootfs, dir.path(), sequential, false);
    Print("bare_runc_run_p50", Percentile(bare, 0.5), "ms");
    Print("bare_runc_run_p99", Percentile(bare, 0.99), "ms");
    Print("sequential_p50_over_bare_runc_p50", Percentile(seq, 0.5) / Percentile(bare, 0.5), "x");
    std::vector<double> bare_par = BareRunc(rootfs, dir.path(), concurrent, true);
    Print("bare_runc_run_concurrent_p50", Percentile(bare_par, 0.5), "ms");
    Print("bare_runc_run_concurrent_p99", Percentile(bare_par, 0.99), "ms");
    Print("concurrent_p50_over_bare_runc_concurrent_p50",
          Percentile(par, 0.5) / Percentile(bare_par, 0.5), "x");
  }
  (void)RunCommand({"/usr/sbin/ip", "link", "del", kBridge});
  status += StandaloneAgentRss(kiso, dir, tar, resident);
  (void)RunCommand({"/usr/sbin/ip", "link", "del", kBridge});
  PullThroughput(kiso, dir.path());
  return status;
}

}  // namespace
}  // namespace kiso::bench

int main(int argc, char** argv) {
  if (!kiso::bench::CleanMachine()) return 2;
  CLI::App app{"node_bench: pod start latency and agent memory against bare runc"};
  std::string kiso = "build/src/cmd/kiso";
  int sequential = 100;
  int concurrent = 20;
  int resident = 50;
  app.add_option("--kiso", kiso, "kiso binary")->capture_default_str();
  app.add_option("--sequential", sequential)->capture_default_str();
  app.add_option("--concurrent", concurrent)->capture_default_str();
  app.add_option("--resident", resident)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return kiso::bench::Run(kiso, sequential, concurrent, resident);
}
