// node_bench: the node agent's figures against the real `kiso server` (its
// embedded agent, runc, CNI) on 127.0.0.1, beside bare `runc run` and bare
// `crun run` of the same root file system in the same run. One line per figure: `node
// <figure>=<value> <unit>`.
//   pod create → Running (the agent's status write seen by a watch), p50/p99
//   over 1,000 sequential pods and 50 rounds of 20 at once; bare `runc run -d`
//   of as many, one after another and 20 at once, and the ratios; bare `crun
//   run -d` the same, and runc's p50 over crun's; the same pods with
//   RuntimeClass handler crun (the agent's crun), and runc's pods over crun's; the same
//   with RuntimeClass wasm (a WASI module that sleeps, run by kiso-wasm), wasm's pods over
//   runc's, the memory of a wasm pod's process, a hello-world module's whole run as a
//   process, and a compute kernel (a sieve) as wasm beside the same C compiled natively;
//   density: pods of each class (runc, crun, wasm) started 20 at a time and left running
//   until 500 run or the node's memory runs short, and the node memory each takes; the
//   server's memory idle with and without the agent, and with 50 pods; a standalone `kiso agent`'s
//   idle and with 50 pods; a shim's. Memory as RSS, PSS and private pages. Needs root, runc, crun
//   and busybox-static.
// A failed create, a pod not Running or not deleted in time fails the run
// (exit 1). Whatever happens, every node it started is reset at the end
// (`kiso node reset`), so the next run starts on a clean machine.
#include <fcntl.h>
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
#include "runtime/oci_runtime.h"
#include "runtime/wasm/engine.h"
#include "support/oci_image.h"
#include "support/proc.h"
#include "support/temp_dir.h"

namespace kiso::bench {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kBridge = "kisobench0";
// Room for the density phase's 500 pods (a /24 holds 253).
constexpr const char* kPodCidr = "10.234.0.0/22";
constexpr int kMaxPods = 600;

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
              kBridge, "--max-pods", std::to_string(kMaxPods).c_str(), nullptr);
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
  const std::string& dir() const { return dir_; }
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

// Resets the node under a data directory when it goes out of scope: what a
// failed or finished phase left (containers, mounts, links) never outlives it.
class NodeReset {
 public:
  NodeReset(std::string kiso, std::string dir) : kiso_(std::move(kiso)), dir_(std::move(dir)) {}
  ~NodeReset() {
    auto r = RunCommand({kiso_, "node", "reset", "--data-dir", dir_});
    if (!r.ok() || r->exit_code != 0)
      fmt::print(stderr, "kiso node reset --data-dir {} failed: {}\n", dir_, r.ok() ? r->out : "");
  }
  NodeReset(const NodeReset&) = delete;
  NodeReset& operator=(const NodeReset&) = delete;

 private:
  std::string kiso_;
  std::string dir_;
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

// A pod of the benchmark's; with `runtime_class`, run by that RuntimeClass's
// handler (`wasm`: the image holding sleep.wasm instead of busybox).
json::value PodObject(const std::string& name, const std::string& runtime_class = "") {
  bool wasm = runtime_class == "wasm";
  json::object spec{
      {"terminationGracePeriodSeconds", 0},
      {"containers",
       json::array{json::object{
           {"name", "c"},
           {"image", wasm ? "wasm:bench" : "busybox:bench"},  // IfNotPresent: never pulled.
           {"command", wasm ? json::array{"/sleep.wasm"} : json::array{"sleep", "3600"}}}}}};
  if (!runtime_class.empty()) spec["runtimeClassName"] = runtime_class;
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", name}, {"labels", json::object{{"bench", "node"}}}}},
      {"spec", std::move(spec)}};
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

// Deletes every pod and waits (`limit` at most) until the API has none.
bool DeleteAll(client::Client* c, Clock::duration limit = std::chrono::minutes(2)) {
  (void)c->DeleteCollection(Pods(), "default", {});
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    auto list = c->List(Pods(), "default");
    if (list.ok() && list->at("items").as_array().empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  fmt::print(stderr, "pods still there after {:.0f} s of deleting\n", Ms(limit) / 1000);
  return false;
}

// The processes `pgrep` finds with `args`.
std::vector<pid_t> Pgrep(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/pgrep"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv);
  std::vector<pid_t> out;
  if (!r.ok()) return out;
  std::istringstream in(r->out);
  pid_t pid = 0;
  while (in >> pid) out.push_back(pid);
  return out;
}

// The median memory (RSS, PSS and private pages) of the processes `pgrep`
// finds with `args`, as figures `<prefix>_{rss,pss,private}_each_p50`.
void PrintProcessMemory(const std::vector<std::string>& args, const std::string& prefix) {
  std::vector<double> rss, pss, priv;
  for (pid_t pid : Pgrep(args)) {
    rss.push_back(testing::RssMb(pid));
    pss.push_back(testing::SmapsMb(pid, "Pss"));
    priv.push_back(testing::PrivateMb(pid));
  }
  if (rss.empty()) return;
  Print(prefix + "_rss_each_p50", Percentile(rss, 0.5), "MB");
  Print(prefix + "_pss_each_p50", Percentile(pss, 0.5), "MB");
  Print(prefix + "_private_each_p50", Percentile(priv, 0.5), "MB");
}

// Wall time of each of `n` runs of `argv` (its output to /dev/null), or
// nothing when one fails.
std::vector<double> TimeRuns(const std::vector<std::string>& argv, int n) {
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    auto begin = Clock::now();
    auto r = RunCommand(argv);
    if (!r.ok() || r->exit_code != 0) {
      fmt::print(stderr, "{}: {}\n", argv[0], r.ok() ? r->err : r.status().ToString());
      return {};
    }
    out.push_back(Ms(Clock::now() - begin));
  }
  return out;
}

// The engine: a hello-world module's whole run as a process (exec, load,
// validation, instantiation, run, exit) beside a native program's (busybox
// true) as the floor, and the engine's part of it in this process; a compute
// kernel as wasm and natively.
bool WasmEngine(const std::string& wasm_dir, const std::string& kiso_wasm) {
  auto hello = TimeRuns({kiso_wasm, wasm_dir + "/hello.wasm"}, 100);
  auto floor = TimeRuns({"/bin/busybox", "true"}, 100);
  if (hello.empty() || floor.empty()) return false;
  Print("wasm_hello_run_p50", Percentile(hello, 0.5), "ms");
  Print("wasm_hello_run_p99", Percentile(hello, 0.99), "ms");
  Print("native_process_run_p50", Percentile(floor, 0.5), "ms");
  // The engine alone, in this process: read, validate, instantiate and run
  // the module (its output to /dev/null).
  std::vector<double> engine;
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  for (int i = 0; i < 100 && null >= 0; ++i) {
    runtime::wasm::WasmOptions o;
    o.module = wasm_dir + "/hello.wasm";
    o.wasi.args = {"hello"};
    o.wasi.stdout_fd = o.wasi.stderr_fd = null;
    auto begin = Clock::now();
    auto exit = runtime::wasm::RunWasm(o);
    if (!exit.ok() || exit->code != 0) {
      fmt::print(stderr, "hello.wasm: {}\n", exit.ok() ? exit->trap : exit.status().ToString());
      close(null);
      return false;
    }
    engine.push_back(Ms(Clock::now() - begin));
  }
  if (null >= 0) close(null);
  if (engine.empty()) return false;
  Print("wasm_engine_hello_p50", Percentile(engine, 0.5), "ms");
  Print("wasm_engine_hello_p99", Percentile(engine, 0.99), "ms");
  auto wasm = TimeRuns({kiso_wasm, wasm_dir + "/compute.wasm", "1000000", "1"}, 3);
  auto native = TimeRuns({wasm_dir + "/compute-native", "1000000", "1"}, 3);
  if (wasm.empty() || native.empty()) return false;
  Print("sieve_1e6_wasm_p50", Percentile(wasm, 0.5), "ms");
  Print("sieve_1e6_native_p50", Percentile(native, 0.5), "ms");
  Print("sieve_wasm_over_native", Percentile(wasm, 0.5) / Percentile(native, 0.5), "x");
  return true;
}

void PrintMemory(const std::string& what, pid_t pid) {
  Print(what + "_rss", testing::RssMb(pid), "MB");
  Print(what + "_pss", testing::SmapsMb(pid, "Pss"), "MB");
  Print(what + "_private", testing::PrivateMb(pid), "MB");
}

// A bare OCI runtime (`runtime`: runc's or crun's path): `run -d` of the
// same root file system, then delete: `n` one after another, or in rounds of
// `at_once` started together. Returns each start's time; a start that fails
// is reported and makes the result empty.
std::vector<double> BareRun(const std::string& runtime, const std::string& rootfs,
                            const std::string& dir, int n, int at_once) {
  std::string bundle = dir + "/bare";
  fs::create_directories(bundle);
  (void)RunCommand({"/usr/sbin/runc", "spec", "--bundle", bundle});  // crun reads it as well.
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
  std::string root = dir + "/bare-state-" + fs::path(runtime).filename().string();
  auto id_of = [](int i) { return fmt::format("kiso-bench-bare-{}", i); };
  std::atomic<int> failed{0};
  auto run = [&](int i) {
    auto begin = Clock::now();
    CommandOptions quiet;
    quiet.capture_output = false;  // The detached container keeps its stdio.
    auto r =
        RunCommand({runtime, "--root", root, "run", "-d", "--bundle", bundle, id_of(i)}, quiet);
    out[static_cast<size_t>(i)] = Ms(Clock::now() - begin);
    if (!r.ok() || r->exit_code != 0) {
      fmt::print(stderr, "{} run: exit {}\n", runtime, r.ok() ? r->exit_code : -1);
      ++failed;
    }
  };
  auto remove = [&](int i) {
    (void)RunCommand({runtime, "--root", root, "delete", "--force", id_of(i)});
  };
  for (int first = 0; first < n; first += at_once) {
    int last = std::min(n, first + at_once);
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(last - first));
    for (int i = first; i < last; ++i) threads.emplace_back(run, i);
    for (auto& t : threads) t.join();
    for (int i = first; i < last; ++i) remove(i);
  }
  if (failed > 0) return {};
  return out;
}

// Pull throughput beside skopeo: one image with a 64 MiB incompressible layer,
// served by Debian's docker-registry on 127.0.0.1, each pulled into a fresh
// store, three times each. False when a push or pull failed.
bool PullThroughput(const std::string& kiso, const std::string& dir) {
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
    return false;
  }
  double mb = static_cast<double>(fs::file_size(tar)) / 1e6;
  std::vector<double> kiso_s;
  std::vector<double> skopeo_s;
  for (int round = 0; round < 3; ++round) {
    std::string a = fmt::format("{}/pull-kiso-{}", dir, round);
    auto begin = Clock::now();
    auto r = RunCommand({kiso, "image", "--data-dir", a, "pull", image});
    kiso_s.push_back(std::chrono::duration<double>(Clock::now() - begin).count());
    if (!r.ok() || r->exit_code != 0) {
      fmt::print(stderr, "kiso pull failed: {}\n", r.ok() ? r->err : "");
      return false;
    }
    std::string b = fmt::format("{}/pull-skopeo-{}", dir, round);
    begin = Clock::now();
    r = RunCommand({"/usr/bin/skopeo", "copy", "--quiet", "--src-tls-verify=false",
                    "docker://" + image, "oci:" + b + ":big"});
    skopeo_s.push_back(std::chrono::duration<double>(Clock::now() - begin).count());
    if (!r.ok() || r->exit_code != 0) {
      fmt::print(stderr, "skopeo copy failed\n");
      return false;
    }
  }
  Print("pull_image_size", mb, "MB");
  Print("pull_throughput_kiso", mb / Percentile(kiso_s, 0.5), "MB/s");
  Print("pull_throughput_skopeo", mb / Percentile(skopeo_s, 0.5), "MB/s");
  Print("pull_kiso_over_skopeo", Percentile(skopeo_s, 0.5) / Percentile(kiso_s, 0.5), "x");
  return true;
}

// A `kiso agent` process of its own (server without an agent): its memory
// idle and with `resident` pods running. False on a failure.
bool StandaloneAgentMemory(const std::string& kiso, const testing::TempDir& dir,
                           const std::string& tar, int resident) {
  std::string server_dir = dir.File("agent-server");
  std::string agent_dir = dir.File("agent");
  fs::create_directories(server_dir);
  fs::create_directories(agent_dir);
  auto imported = RunCommand({kiso, "image", "--data-dir", agent_dir, "import", tar});
  if (!imported.ok() || imported->exit_code != 0) return false;
  NodeReset reset(kiso, agent_dir);  // After the agent and server below have stopped.
  Server server(kiso, server_dir, false);
  if (!server.WaitReady()) return false;
  client::Client* c = server.client();
  StandaloneAgent agent(kiso, server_dir, server.port(), agent_dir);
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!c->Get(Nodes(), "", "bench-agent").ok() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  PrintMemory("standalone_agent_idle", agent.pid());
  RunningWatch watch(c);
  for (int i = 0; i < resident; ++i) {
    if (!c->Create(Pods(), "default", PodObject(fmt::format("resident-{}", i))).ok()) return false;
  }
  for (int i = 0; i < resident; ++i) {
    if (!watch.Wait(fmt::format("resident-{}", i), std::chrono::seconds(60))) {
      fmt::print(stderr, "resident-{} not Running on the standalone agent in 60 s\n", i);
      return false;
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  PrintMemory(fmt::format("standalone_agent_with_{}_pods", resident), agent.pid());
  return DeleteAll(c);
}

// Pod create → Running for `n` pods, in rounds of `at_once` created together
// (1: one after another). Each round's pods are deleted before the next. The
// times, or nothing when a pod failed to be created, to run or to go.
std::vector<double> StartPods(client::Client* c, RunningWatch& watch, const std::string& prefix,
                              int n, int at_once, const std::string& runtime_class = "") {
  std::vector<double> out;
  for (int first = 0; first < n; first += at_once) {
    int last = std::min(n, first + at_once);
    std::vector<Clock::time_point> begins(static_cast<size_t>(last - first));
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    threads.reserve(begins.size());
    for (int i = first; i < last; ++i) {
      threads.emplace_back([&, i] {
        begins[static_cast<size_t>(i - first)] = Clock::now();
        auto created =
            c->Create(Pods(), "default", PodObject(fmt::format("{}-{}", prefix, i), runtime_class));
        if (!created.ok() && failed++ == 0) {  // The first failure's cause.
          fmt::print(stderr, "create {}-{}: {}\n", prefix, i, created.status().ToString());
        }
      });
    }
    for (auto& t : threads) t.join();
    if (failed > 0) {
      fmt::print(stderr, "{} creates failed\n", failed.load());
      return {};
    }
    for (int i = first; i < last; ++i) {
      auto running = watch.Wait(fmt::format("{}-{}", prefix, i), std::chrono::seconds(60));
      if (!running) {
        fmt::print(stderr, "{}-{} not Running in 60 s\n", prefix, i);
        return {};
      }
      out.push_back(Ms(*running - begins[static_cast<size_t>(i - first)]));
    }
    if (at_once > 1 && !DeleteAll(c)) return {};
    if (at_once == 1) (void)c->Delete(Pods(), "default", fmt::format("{}-{}", prefix, first));
  }
  if (!DeleteAll(c)) return {};
  return out;
}

// Pod create → Running under RuntimeClass `name` (one kiso server makes when
// it starts, its handler of the same name): `sequential` one after another,
// `rounds` of `concurrent` at once; prints their percentiles.
bool ClassPhase(client::Client* c, RunningWatch& watch, const std::string& name, int sequential,
                int concurrent, int rounds, std::vector<double>* seq, std::vector<double>* par) {
  if (!c->Get(*api::FindResource("node.k8s.io", "v1", "runtimeclasses"), "", name).ok()) {
    fmt::print(stderr, "RuntimeClass {} is missing\n", name);
    return false;
  }
  *seq = StartPods(c, watch, "seq" + name, sequential, 1, name);
  *par = StartPods(c, watch, "par" + name, concurrent * rounds, concurrent, name);
  if (seq->empty() || par->empty()) return false;
  Print(fmt::format("create_to_running_{}_sequential_p50", name), Percentile(*seq, 0.5), "ms");
  Print(fmt::format("create_to_running_{}_sequential_p99", name), Percentile(*seq, 0.99), "ms");
  Print(fmt::format("create_to_running_{}_{}_at_once_p50", name, concurrent), Percentile(*par, 0.5),
        "ms");
  Print(fmt::format("create_to_running_{}_{}_at_once_p99", name, concurrent),
        Percentile(*par, 0.99), "ms");
  return true;
}

// What the node's containers hold now, in MB: the memory each container's
// cgroup is charged (its processes' pages, page cache and kernel memory),
// summed over the cgroups under /kiso (cgroup v1's memory hierarchy, or v2).
double ContainersMemoryMb() {
  double total = 0;
  for (const char* root : {"/sys/fs/cgroup/memory/kiso", "/sys/fs/cgroup/kiso"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      for (const char* file : {"memory.usage_in_bytes", "memory.current"}) {
        std::ifstream in(e.path() / file);
        double bytes = 0;
        if (in >> bytes) total += bytes / (1024 * 1024);
      }
    }
  }
  return total;
}

// The shims' memory, in MB: the sum of every kiso-shim's PSS.
double ShimsPssMb() {
  double total = 0;
  for (pid_t pid : Pgrep({"-x", "kiso-shim"})) total += testing::SmapsMb(pid, "Pss");
  return total;
}

// Density (issue 18): pods of one RuntimeClass ("" for none: runc) started
// 20 at a time and left running, until `limit` run or the node's available
// memory falls under a tenth of its total; prints how many ran, how long
// that took, and what each pod costs the node: its container's cgroup, its
// shim (PSS) and its share of the server's growth (the agent's state).
// Then every pod goes.
bool Density(client::Client* c, RunningWatch& watch, pid_t server, const std::string& runtime_class,
             int limit) {
  const std::string name = runtime_class.empty() ? "runc" : runtime_class;
  auto available = [] {
    std::ifstream in("/proc/meminfo");
    std::string field, unit;
    double kb = 0, total = 0;
    while (in >> field >> kb >> unit) {
      if (field == "MemTotal:") total = kb;
      if (field == "MemAvailable:") return kb / total;
    }
    return 0.0;
  };
  const double server_before = testing::RssMb(server);
  const auto t0 = Clock::now();
  int running = 0;
  while (running < limit && available() > 0.1) {
    int batch = std::min(20, limit - running);
    for (int i = running; i < running + batch; ++i) {
      auto created = c->Create(Pods(), "default",
                               PodObject(fmt::format("dense-{}-{}", name, i), runtime_class));
      if (!created.ok()) {
        fmt::print(stderr, "density {}: create: {}\n", name, created.status().ToString());
        return false;
      }
    }
    for (int i = running; i < running + batch; ++i) {
      if (!watch.Wait(fmt::format("dense-{}-{}", name, i), std::chrono::seconds(120))) {
        fmt::print(stderr, "density {}: dense-{}-{} not Running in 120 s\n", name, name, i);
        return false;
      }
    }
    running += batch;
  }
  const double seconds = Ms(Clock::now() - t0) / 1000;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double each =
      (ContainersMemoryMb() + ShimsPssMb() + testing::RssMb(server) - server_before) /
      std::max(running, 1);  // None ran: the node's memory was short from the start.
  Print(fmt::format("density_{}", name), running, "pods");
  Print(fmt::format("density_{}_memory_per_pod", name), each, "MB");
  Print(fmt::format("density_{}_seconds", name), seconds, "s");
  return DeleteAll(c, std::chrono::minutes(10));
}

// What metrics cost the agent at 100 pods: kiso has no scrape loop (the
// summaries are read when metrics.k8s.io is asked), so the figure is the CPU
// one PodMetrics list of every pod takes (each container's cgroup read),
// above the server's idle CPU, and what one such read every 15 s
// (metrics-server's default resolution, an HPA's sync period) adds.
bool MetricsCost(client::Client* c, RunningWatch& watch, pid_t server, int resident) {
  constexpr int kPods = 100;
  for (int i = resident; i < kPods; ++i) {
    if (!c->Create(Pods(), "default", PodObject(fmt::format("resident-{}", i))).ok()) return false;
  }
  for (int i = resident; i < kPods; ++i) {
    if (!watch.Wait(fmt::format("resident-{}", i), std::chrono::seconds(60))) {
      fmt::print(stderr, "resident-{} not Running in 60 s\n", i);
      return false;
    }
  }
  const auto* pod_metrics = api::FindResource("metrics.k8s.io", "v1beta1", "pods");
  // The first read starts each container's cpu window; then idle for a baseline.
  (void)c->List(*pod_metrics, "");
  constexpr auto kIdle = std::chrono::seconds(10);
  double cpu0 = testing::CpuMs(server);
  auto t0 = Clock::now();
  std::this_thread::sleep_for(kIdle);
  double idle_ms_per_s = (testing::CpuMs(server) - cpu0) / (Ms(Clock::now() - t0) / 1000);
  constexpr int kReads = 30;
  std::vector<double> latency;
  size_t pods_seen = 0;
  double cpu1 = testing::CpuMs(server);
  auto t1 = Clock::now();
  for (int i = 0; i < kReads; ++i) {
    auto begin = Clock::now();
    auto list = c->List(*pod_metrics, "");
    if (!list.ok()) {
      fmt::print(stderr, "metrics: {}\n", list.status().ToString());
      return false;
    }
    latency.push_back(Ms(Clock::now() - begin));
    pods_seen = api::GetArray(*list, {"items"}).size();
  }
  double busy = testing::CpuMs(server) - cpu1 - idle_ms_per_s * (Ms(Clock::now() - t1) / 1000);
  double per_read = std::max(0.0, busy / kReads);
  Print("server_idle_cpu_100_pods", idle_ms_per_s / 10, "%");
  Print("metrics_pods_listed", static_cast<double>(pods_seen), "pods");
  Print("metrics_read_100_pods_p50", Percentile(latency, 0.5), "ms");
  Print("metrics_read_100_pods_cpu", per_read, "ms");
  Print("metrics_extra_cpu_one_read_per_15s", per_read / 15000 * 100, "%");
  return true;
}

int Run(const std::string& kiso, int sequential, int concurrent, int rounds, int resident,
        int density) {
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
  // The wasm pods' image: only the module (built with the tests, beside kiso-wasm).
  std::string runtime_dir = (fs::path(kiso).parent_path() / ".." / "runtime").string();
  std::string wasm_dir = runtime_dir + "/wasm";
  std::string wasm_rootfs = dir.File("wasm-rootfs");
  fs::create_directories(wasm_rootfs);
  std::error_code copy_error;
  fs::copy_file(wasm_dir + "/sleep.wasm", wasm_rootfs + "/sleep.wasm", copy_error);
  if (copy_error) {
    fmt::print(stderr, "{}/sleep.wasm: {} (build the tests first)\n", wasm_dir,
               copy_error.message());
    return 1;
  }
  std::string wasm_tar =
      testing::BuildOciArchive(dir.path(), wasm_rootfs, "docker.io/library/wasm:bench",
                               {"/sleep.wasm"}, dir.File("wasm.tar"));
  // Memory without the agent, for the agent's share.
  double rss_without = 0, private_without = 0;
  {
    std::string d = dir.File("plain");
    fs::create_directories(d);
    Server plain(kiso, d, false);
    if (!plain.WaitReady()) return 1;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    rss_without = testing::RssMb(plain.pid());
    private_without = testing::PrivateMb(plain.pid());
    PrintMemory("server_idle_without_agent", plain.pid());
  }
  std::string data = dir.File("node");
  fs::create_directories(data);
  for (const auto& image : {tar, wasm_tar}) {
    auto imported = RunCommand({kiso, "image", "--data-dir", data, "import", image});
    if (!imported.ok() || imported->exit_code != 0) {
      fmt::print(stderr, "import of {} failed\n", image);
      return 1;
    }
  }
  std::vector<double> seq, par;
  {
    NodeReset reset(kiso, data);  // Runs after the server below has stopped.
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
    PrintMemory("server_idle_with_agent", server.pid());
    Print("agent_rss_idle", testing::RssMb(server.pid()) - rss_without, "MB");
    Print("agent_private_idle", testing::PrivateMb(server.pid()) - private_without, "MB");

    RunningWatch watch(c);
    seq = StartPods(c, watch, "seq", sequential, 1);
    if (seq.empty()) return 1;
    Print("create_to_running_sequential_p50", Percentile(seq, 0.5), "ms");
    Print("create_to_running_sequential_p99", Percentile(seq, 0.99), "ms");
    par = StartPods(c, watch, "par", concurrent * rounds, concurrent);
    if (par.empty()) return 1;
    Print(fmt::format("create_to_running_{}_at_once_p50", concurrent), Percentile(par, 0.5), "ms");
    Print(fmt::format("create_to_running_{}_at_once_p99", concurrent), Percentile(par, 0.99), "ms");
    // The same pods with RuntimeClass handler crun: the agent's crun beside its runc.
    std::vector<double> seq_crun, par_crun;
    if (!ClassPhase(c, watch, "crun", sequential, concurrent, rounds, &seq_crun, &par_crun))
      return 1;
    Print("runc_pod_over_crun_pod_sequential_p50", Percentile(seq, 0.5) / Percentile(seq_crun, 0.5),
          "x");
    Print(fmt::format("runc_pod_over_crun_pod_{}_at_once_p50", concurrent),
          Percentile(par, 0.5) / Percentile(par_crun, 0.5), "x");

    // The same pods with RuntimeClass wasm: a WASI module in kiso-wasm, no container.
    std::vector<double> seq_wasm, par_wasm;
    if (!ClassPhase(c, watch, "wasm", sequential, concurrent, rounds, &seq_wasm, &par_wasm))
      return 1;
    Print("wasm_pod_over_runc_pod_sequential_p50", Percentile(seq_wasm, 0.5) / Percentile(seq, 0.5),
          "x");
    Print(fmt::format("wasm_pod_over_runc_pod_{}_at_once_p50", concurrent),
          Percentile(par_wasm, 0.5) / Percentile(par, 0.5), "x");
    // Density: how many pods of each class the node runs at once (its
    // memory's limit, or `density`), and what each costs the node.
    if (density > 0) {
      for (const char* runtime_class : {"", "crun", "wasm"}) {
        if (!Density(c, watch, server.pid(), runtime_class, density)) return 1;
      }
    }
    for (int i = 0; i < resident; ++i) {
      if (!c->Create(Pods(), "default", PodObject(fmt::format("wasm-{}", i), "wasm")).ok())
        return 1;
    }
    for (int i = 0; i < resident; ++i) {
      if (!watch.Wait(fmt::format("wasm-{}", i), std::chrono::seconds(60))) {
        fmt::print(stderr, "wasm-{} not Running in 60 s\n", i);
        return 1;
      }
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    // Each wasm container's process: kiso-wasm running its module.
    PrintProcessMemory({"-f", "kiso-wasm .*state-wasm"}, "wasm_container");
    if (!DeleteAll(c)) return 1;
    if (!WasmEngine(wasm_dir, runtime_dir + "/kiso-wasm")) return 1;

    for (int i = 0; i < resident; ++i) {
      if (!c->Create(Pods(), "default", PodObject(fmt::format("resident-{}", i))).ok()) return 1;
    }
    for (int i = 0; i < resident; ++i) {
      if (!watch.Wait(fmt::format("resident-{}", i), std::chrono::seconds(60))) {
        fmt::print(stderr, "resident-{} not Running in 60 s\n", i);
        return 1;
      }
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    PrintMemory(fmt::format("server_with_{}_pods", resident), server.pid());
    PrintProcessMemory({"-x", "kiso-shim"}, "shim");
    if (!MetricsCost(c, watch, server.pid(), resident)) return 1;
    if (!DeleteAll(c)) return 1;

    // The busybox image's unpacked root (the wasm image's is beside it).
    std::string image_rootfs;
    for (const auto& e : fs::directory_iterator(data + "/images/rootfs")) {
      if (fs::exists(e.path() / "bin" / "busybox")) image_rootfs = e.path().string();
    }
    std::vector<double> bare = BareRun("/usr/sbin/runc", image_rootfs, dir.path(), sequential, 1);
    if (bare.empty()) return 1;
    Print("bare_runc_run_sequential_p50", Percentile(bare, 0.5), "ms");
    Print("bare_runc_run_sequential_p99", Percentile(bare, 0.99), "ms");
    Print("sequential_p50_over_bare_runc_p50", Percentile(seq, 0.5) / Percentile(bare, 0.5), "x");
    std::vector<double> bare_par =
        BareRun("/usr/sbin/runc", image_rootfs, dir.path(), concurrent * rounds, concurrent);
    if (bare_par.empty()) return 1;
    Print(fmt::format("bare_runc_run_{}_at_once_p50", concurrent), Percentile(bare_par, 0.5), "ms");
    Print(fmt::format("bare_runc_run_{}_at_once_p99", concurrent), Percentile(bare_par, 0.99),
          "ms");
    Print(fmt::format("{}_at_once_p50_over_bare_runc", concurrent),
          Percentile(par, 0.5) / Percentile(bare_par, 0.5), "x");
    // crun beside runc: the same starts (the host set up as crun needs first).
    if (Status s = runtime::PrepareHostForCrun(); !s.ok()) {
      fmt::print(stderr, "crun: {}\n", s.ToString());
      return 1;
    }
    std::vector<double> crun = BareRun("/usr/bin/crun", image_rootfs, dir.path(), sequential, 1);
    std::vector<double> crun_par =
        BareRun("/usr/bin/crun", image_rootfs, dir.path(), concurrent * rounds, concurrent);
    if (crun.empty() || crun_par.empty()) return 1;
    Print("bare_crun_run_sequential_p50", Percentile(crun, 0.5), "ms");
    Print("bare_crun_run_sequential_p99", Percentile(crun, 0.99), "ms");
    Print(fmt::format("bare_crun_run_{}_at_once_p50", concurrent), Percentile(crun_par, 0.5), "ms");
    Print(fmt::format("bare_crun_run_{}_at_once_p99", concurrent), Percentile(crun_par, 0.99),
          "ms");
    Print("bare_runc_over_bare_crun_sequential_p50", Percentile(bare, 0.5) / Percentile(crun, 0.5),
          "x");
  }
  if (!StandaloneAgentMemory(kiso, dir, tar, resident)) return 1;
  return PullThroughput(kiso, dir.path()) ? 0 : 1;
}

}  // namespace
}  // namespace kiso::bench

int main(int argc, char** argv) {
  if (!kiso::bench::CleanMachine()) return 2;
  CLI::App app{"node_bench: pod start latency and agent memory against bare runc"};
  std::string kiso = "build/src/cmd/kiso";
  int sequential = 1000;
  int concurrent = 20;
  int rounds = 50;
  int resident = 50;
  int density = 500;
  app.add_option("--kiso", kiso, "kiso binary")->capture_default_str();
  app.add_option("--sequential", sequential, "Pods started one after another")
      ->capture_default_str();
  app.add_option("--concurrent", concurrent, "Pods started together in a round")
      ->capture_default_str();
  app.add_option("--rounds", rounds, "Rounds of pods started together")->capture_default_str();
  app.add_option("--resident", resident, "Pods running for the memory figures")
      ->capture_default_str();
  app.add_option("--density", density,
                 "Pods of each RuntimeClass started and left running for the density figures, "
                 "unless the node's memory runs short first (0: none)")
      ->check(CLI::Range(0, 580))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return kiso::bench::Run(kiso, sequential, concurrent, rounds, resident, density);
}
