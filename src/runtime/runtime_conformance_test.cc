// The runtime conformance suite: one set of tests on every RuntimeClass
// handler — runc and crun (a hybrid cgroup host is set up as crun needs:
// PrepareHostForCrun), and wasm (kiso-wasm, WASI modules) — through the same
// RuntimeService, with real namespaces, cgroups, overlay mounts and CNI on a
// busybox image built on the spot. The workload is one C program
// (testdata/workload.c) built as a static Linux executable and as a WASI
// module, so every handler runs the same steps. What a paradigm cannot have is
// skipped with the reason printed: a WebAssembly module has no processes to
// exec, no signals, no sockets and no system calls of its own. Needs root,
// runc, crun and busybox-static (make deps installs them).
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "common/process.h"
#include "image/image_store.h"
#include "network/cni.h"
#include "runtime/oci_runtime.h"
#include "runtime/oci_spec.h"
#include "support/oci_image.h"
#include "support/temp_dir.h"

namespace kiso::runtime {
namespace {

namespace fs = std::filesystem;

std::string BuildPath(const std::string& env, const std::string& path) {
  const char* from_env = getenv(env.c_str());
  return from_env ? from_env : std::string(KISO_BUILD_DIR_DEFAULT) + path;
}

std::string ShimBinary() { return BuildPath("KISO_SHIM", "/src/runtime/kiso-shim"); }
std::string WasmBinary() { return BuildPath("KISO_WASM", "/src/runtime/kiso-wasm"); }
std::string ProbeBinary() { return std::string(KISO_BUILD_DIR_DEFAULT) + "/tests/seccomp_probe"; }
std::string WorkloadDir() { return std::string(KISO_BUILD_DIR_DEFAULT) + "/src/runtime/workload"; }

// The executable that runs a handler's containers, as `kiso node reset` and a
// test acting as a crash would call it.
std::string RuntimeBinary(const std::string& handler) {
  if (handler == "wasm") return WasmBinary();
  return handler == "runc" ? "/usr/sbin/runc" : "/usr/bin/crun";
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The suite's parameter: the default handler of the runtime under test.
class RuntimeConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    ASSERT_TRUE(testing::MakeBusyboxRootfs(dir_.File("bb"))) << "busybox-static missing";
    fs::copy_file(ProbeBinary(), dir_.File("bb/bin/seccomp_probe"));
    fs::copy_file(WorkloadDir() + "/workload", dir_.File("bb/bin/workload"));
    fs::copy_file(WorkloadDir() + "/workload.wasm", dir_.File("bb/bin/workload.wasm"));
    std::string tar =
        testing::BuildOciArchive(dir_.path(), dir_.File("bb"), "docker.io/library/busybox:test",
                                 {"sh"}, dir_.File("bb.tar"));
    auto images = image::ImageStore::Open(dir_.File("images"));
    ASSERT_TRUE(images.ok());
    images_ = std::move(*images);
    ASSERT_TRUE(images_->Import(tar).ok());
    auto image = images_->Get("busybox:test");
    ASSERT_TRUE(image.ok());
    auto rootfs = images_->Rootfs(*image);
    ASSERT_TRUE(rootfs.ok());
    rootfs_ = *rootfs;
    auto rt = OciRuntime::Create(Options("runtime"));
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    runtime_ = std::move(*rt);
    auto sandbox = runtime_->RunPodSandbox({"pod-a", "default", "uid-1"});
    ASSERT_TRUE(sandbox.ok()) << sandbox.status().ToString();
    sandbox_ = *sandbox;
  }
  void TearDown() override {
    if (runtime_) {
      for (const auto& s : runtime_->ListSandboxes()) {
        Status removed = runtime_->RemovePodSandbox(s);
        EXPECT_TRUE(removed.ok()) << removed.ToString();
      }
      EXPECT_TRUE(runtime_->ListContainers().empty());
    }
    for (const auto& bridge : bridges_) (void)RunCommand({"/usr/sbin/ip", "link", "del", bridge});
    // runc leaves the (now empty) parent cgroup behind: this test's own, removed.
    std::error_code ec;
    for (const auto& c : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      fs::remove(c.path() / CgroupParent(), ec);
    }
  }

  // A parent cgroup of this process's own (not the agent's "kiso", which other
  // tests running beside this one create containers under).
  static std::string CgroupParent() { return "kiso-test-" + std::to_string(getpid()); }

  bool Wasm() const { return GetParam() == "wasm"; }

  // A part of a test this paradigm cannot have, skipped with the reason said.
  void SkipPart(std::string_view what, std::string_view why) const {
    std::cout << "[ SKIPPED  ] on " << GetParam() << ", " << what << ": " << why << "\n";
  }

  // A runtime under `dir` whose default handler is the one under test.
  OciRuntimeOptions Options(const std::string& dir) {
    OciRuntimeOptions options;
    options.root = dir_.File(dir);
    options.runtime = GetParam();
    options.cgroup_parent = CgroupParent();
    options.shim_binary = ShimBinary();
    options.wasm_binary = WasmBinary();
    return options;
  }

  // A CNI network on a bridge of the test's own, removed at the end whatever happens.
  Result<std::unique_ptr<network::CniNetwork>> Network(const std::string& bridge,
                                                       const std::string& cidr) {
    network::CniOptions cni;
    cni.conflist = dir_.File("cni/net.conflist");
    cni.pod_cidr = cidr;
    cni.bridge = bridge;
    cni.cache_dir = dir_.File("cni");
    bridges_.push_back(bridge);
    return network::CniNetwork::Create(cni);
  }

  // The workload's steps as a container's argv under `handler` (the one under
  // test when empty): the WASI module for wasm, the Linux executable otherwise.
  std::vector<std::string> Workload(std::vector<std::string> steps,
                                    const std::string& handler = "") const {
    const std::string& h = handler.empty() ? GetParam() : handler;
    steps.insert(steps.begin(), h == "wasm" ? "/bin/workload.wasm" : "/bin/workload");
    return steps;
  }

  ContainerConfig Config(const std::string& name, std::vector<std::string> args) {
    ContainerConfig c;
    c.name = name;
    c.image = "busybox:test";
    c.image_rootfs = rootfs_;
    c.args = std::move(args);
    c.env = {"PATH=/bin"};
    c.log_path = dir_.File("logs/" + name + ".log");
    return c;
  }

  // Polls the runtime (never a fixed sleep) until the container has exited.
  Result<ContainerStatus> WaitExited(const std::string& id, RuntimeService* runtime = nullptr) {
    if (!runtime) runtime = runtime_.get();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto s = runtime->GetStatus(id);
      if (!s.ok() || s->state == ContainerState::kExited) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Status(Code::kDeadlineExceeded, "container did not exit");
  }

  // Whether a shim of container `id` is still running (a zombie waiting for
  // init to reap it is not).
  static bool ShimRuns(const std::string& id) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
      const std::string dir = e.path().string();
      std::string cmdline = Read(dir + "/cmdline");
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find("kiso-shim --id " + id + " ") == std::string::npos) continue;
      std::string stat = Read(dir + "/stat");
      size_t paren = stat.rfind(')');
      if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z')
        return true;
    }
    return false;
  }

  // Creates and starts a container; its id.
  std::string Run(const ContainerConfig& config, RuntimeService* runtime = nullptr,
                  const Sandbox* sandbox = nullptr) {
    if (!runtime) runtime = runtime_.get();
    auto id = runtime->CreateContainer(sandbox ? *sandbox : sandbox_, config);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!id.ok()) return "";
    Status started = runtime->StartContainer(*id);
    EXPECT_TRUE(started.ok()) << started.ToString();
    return *id;
  }

  testing::TempDir dir_{"runtime"};
  std::unique_ptr<image::ImageStore> images_;
  std::string rootfs_;
  std::unique_ptr<OciRuntime> runtime_;
  Sandbox sandbox_;
  std::vector<std::string> bridges_;
};

// Lifecycle and logs: created (not yet running), started, exited with its
// times, stdout and stderr as CRI log lines, removed.
TEST_P(RuntimeConformance, RunsAContainerAndLogsItsOutputInCriFormat) {
  std::vector<std::string> steps = {"out", "hello", "err", "oops", "env", "GREETING"};
  if (Wasm()) {
    SkipPart("the sandbox's host name", "WASI has no host name");
  } else {
    steps.emplace_back("hostname");
  }
  ContainerConfig config = Config("hello", Workload(steps));
  config.env.emplace_back("GREETING=hi there");
  auto id = runtime_->CreateContainer(sandbox_, config);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(runtime_->GetStatus(*id)->state, ContainerState::kCreated);
  ASSERT_TRUE(runtime_->StartContainer(*id).ok());
  auto status = WaitExited(*id);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->exit_code, 0);
  EXPECT_EQ(status->reason, "Completed");
  EXPECT_EQ(status->runtime, GetParam());
  // As the node reports it: "runc://1.1.5+ds1", "wasm://1".
  EXPECT_TRUE(runtime_->Version().starts_with(GetParam() + "://")) << runtime_->Version();
  EXPECT_TRUE(std::isdigit(runtime_->Version()[GetParam().size() + 3])) << runtime_->Version();
  EXPECT_EQ(runtime_->Version().find(' '), std::string::npos) << runtime_->Version();
  EXPECT_FALSE(status->started_at.empty());
  EXPECT_FALSE(status->finished_at.empty());
  std::string log = Read(status->log_path);
  EXPECT_NE(log.find(" stdout F hello\n"), std::string::npos) << log;
  EXPECT_NE(log.find(" stderr F oops\n"), std::string::npos) << log;
  EXPECT_NE(log.find(" stdout F GREETING=hi there\n"), std::string::npos) << log;
  if (!Wasm()) {
    EXPECT_NE(log.find(" stdout F hostname pod-a\n"), std::string::npos) << log;
  }
  ASSERT_TRUE(runtime_->RemoveContainer(*id).ok());
  EXPECT_EQ(runtime_->GetStatus(*id).status().code(), Code::kNotFound);
}

// RuntimeClass handlers: another runtime as a further handler; each
// sandbox's containers run with its handler, each runtime keeping its own
// state, and a node reset finds both.
TEST_P(RuntimeConformance, RunsEachSandboxWithItsHandler) {
  const std::string other = GetParam() == "runc" ? "crun" : "runc";
  OciRuntimeOptions options = Options("handlers");
  options.extra_handlers = {other, "no-such-runtime"};  // The second is left out.
  auto rt = OciRuntime::Create(options);
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  auto& runtime = **rt;
  EXPECT_EQ(runtime.Handlers(), (std::vector<std::string>{GetParam(), other}));
  auto refused = runtime.RunPodSandbox({"pod-x", "default", "uid-x", "", "no-such-runtime"});
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  // The containers each runtime's state holds (kiso-wasm's: a directory each).
  auto listed = [&](const std::string& handler, const std::string& state) {
    if (handler == "wasm") {
      std::string out;
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(state, ec)) out += e.path().filename().string();
      return out;
    }
    auto r = RunCommand({RuntimeBinary(handler), "--root", state, "list", "-q"});
    return r.ok() ? r->out : std::string("(failed)");
  };
  std::map<std::string, std::string> ids;  // handler → its container
  for (const std::string& handler : {std::string(), other}) {
    auto sandbox = runtime.RunPodSandbox({"pod-" + other, "default", "uid-h", "", handler});
    ASSERT_TRUE(sandbox.ok()) << sandbox.status().ToString();
    ids[handler] = Run(Config("sleeper", Workload({"sleep", "300"}, handler)), &runtime, &*sandbox);
    ASSERT_FALSE(ids[handler].empty());
    EXPECT_EQ(runtime.GetStatus(ids[handler])->state, ContainerState::kRunning);
    EXPECT_EQ(runtime.GetStatus(ids[handler])->runtime, handler.empty() ? GetParam() : handler);
  }
  auto in_default = listed(GetParam(), options.root + "/state");
  auto in_other = listed(other, options.root + "/state-" + other);
  EXPECT_NE(in_default.find(ids[""]), std::string::npos) << in_default;
  EXPECT_EQ(in_default.find(ids[other]), std::string::npos) << in_default;
  EXPECT_NE(in_other.find(ids[other]), std::string::npos) << in_other;
  auto exec = runtime.ExecSync(ids[other], {"echo", "in"}, std::chrono::seconds(10));
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  EXPECT_EQ(exec->stdout_data, "in\n");
  ASSERT_TRUE(runtime.StopContainer(ids[other], std::chrono::seconds(0)).ok());
  EXPECT_EQ(runtime.GetStatus(ids[other])->state, ContainerState::kExited);
  // What `kiso node reset` does: both runtimes' containers go, processes too.
  auto pid = runtime.GetStatus(ids[""])->pid;
  ASSERT_GT(pid, 0);
  std::vector<std::string> removed, failed;
  ResetContainers(options.root, GetParam(), &removed, &failed);
  EXPECT_TRUE(failed.empty()) << failed.front();
  EXPECT_NE(kill(pid, 0), 0) << "the default handler's container still runs";
  EXPECT_EQ(listed(other, options.root + "/state-" + other), "");
  if (!Wasm()) {
    EXPECT_EQ(listed(GetParam(), options.root + "/state"), "");
  }
  for (const auto& s : runtime.ListSandboxes()) EXPECT_TRUE(runtime.RemovePodSandbox(s).ok());
}

// Exit codes, and a memory limit held: the OCI runtimes' cgroup kills the
// process (OOMKilled); the wasm engine refuses memory.grow past the limit,
// so the module's malloc says no and it goes on.
TEST_P(RuntimeConformance, ReportsExitCodesAndHoldsMemoryLimits) {
  std::string failing = Run(Config("fail", Workload({"out", "failing", "exit", "3"})));
  auto status = WaitExited(failing);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->exit_code, 3);
  EXPECT_EQ(status->reason, "Error");

  auto hog_config = Config("hog", Workload({"grow", "64", "exit", "9"}));
  hog_config.memory_limit = 16 << 20;
  std::string hog = Run(hog_config);
  status = WaitExited(hog);
  ASSERT_TRUE(status.ok());
  std::string log = Read(hog_config.log_path);
  int most = 0;  // The most it held: "have N MiB" lines.
  for (size_t at = 0; (at = log.find("have ", at)) != std::string::npos; ++at)
    most = std::max(most, std::atoi(log.c_str() + at + 5));
  EXPECT_GT(most, 4) << log;
  EXPECT_LT(most, 16) << log;
  if (Wasm()) {
    EXPECT_NE(log.find("refused at "), std::string::npos) << log;
    EXPECT_EQ(status->exit_code, 9);  // It went on after malloc said no.
  } else {
    EXPECT_EQ(status->exit_code, 137);
    EXPECT_EQ(status->reason, "OOMKilled");
  }
}

// A new attempt of a container in the same sandbox (what the agent does on a
// restart): its own log, its attempt in the status, the first left as it was.
TEST_P(RuntimeConformance, RestartsAsNewAttemptsInTheSameSandbox) {
  ContainerConfig first = Config("app", Workload({"out", "attempt 0", "exit", "1"}));
  std::string id0 = Run(first);
  ASSERT_TRUE(WaitExited(id0).ok());
  ContainerConfig second = Config("app", Workload({"out", "attempt 1"}));
  second.attempt = 1;
  second.log_path = dir_.File("logs/app-1.log");
  std::string id1 = Run(second);
  ASSERT_NE(id0, id1);
  auto status = WaitExited(id1);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->attempt, 1);
  EXPECT_EQ(status->exit_code, 0);
  EXPECT_EQ(runtime_->GetStatus(id0)->exit_code, 1);
  EXPECT_EQ(runtime_->GetStatus(id0)->attempt, 0);
  EXPECT_NE(Read(first.log_path).find("stdout F attempt 0"), std::string::npos);
  EXPECT_NE(Read(second.log_path).find("stdout F attempt 1"), std::string::npos);
  EXPECT_EQ(Read(second.log_path).find("attempt 0"), std::string::npos);
  auto listed = runtime_->ListContainers();
  EXPECT_EQ(listed.size(), 2u);
  ASSERT_TRUE(runtime_->RemoveContainer(id0).ok());
  EXPECT_EQ(runtime_->ListContainers(), std::vector<std::string>{id1});
}

// Volumes: a read-write one the container writes and the node reads, a
// read-only one it reads and cannot write, whatever the handler.
TEST_P(RuntimeConformance, MountsVolumesReadWriteAndReadOnly) {
  std::string data = dir_.File("volumes/data"), config = dir_.File("volumes/config");
  fs::create_directories(data);
  fs::create_directories(config);
  testing::WriteFile(config + "/greeting", "hi from a volume\n");
  ContainerConfig c = Config(
      "volumes", Workload({"read", "/config/greeting", "write", "/data/out", "from the container",
                           "write", "/config/greeting", "overwritten"}));
  c.mounts = {{"/data", data, false}, {"/config", config, true}};
  auto status = WaitExited(Run(c));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->exit_code, 0);
  std::string log = Read(c.log_path);
  EXPECT_NE(log.find("stdout F hi from a volume\n"), std::string::npos) << log;
  EXPECT_NE(log.find("stdout F wrote /data/out\n"), std::string::npos) << log;
  EXPECT_NE(log.find("stdout F cannot write /config/greeting: Read-only file system\n"),
            std::string::npos)
      << log;
  EXPECT_EQ(Read(data + "/out"), "from the container\n");
  EXPECT_EQ(Read(config + "/greeting"), "hi from a volume\n");
}

// Exec (what exec probes and `kubectl exec` use): exit codes and output. A
// WebAssembly module has no processes to start beside its own: the wasm
// runtime refuses with a clear error instead.
TEST_P(RuntimeConformance, ExecRunsBesideTheContainerOrIsRefusedClearly) {
  std::string id = Run(Config("target", Workload({"sleep", "300"})));
  if (Wasm()) {
    auto exec = runtime_->ExecSync(id, {"/bin/workload.wasm", "out", "x"}, std::chrono::seconds(5));
    ASSERT_FALSE(exec.ok());
    EXPECT_NE(exec.status().message().find("not supported by the wasm runtime"), std::string::npos)
        << exec.status().ToString();
    EXPECT_EQ(runtime_->GetStatus(id)->state, ContainerState::kRunning);
    GTEST_SKIP() << "exec probes and exec: a WebAssembly module has no processes to start";
  }
  auto ok = runtime_->ExecSync(id, Workload({"out", "probed"}), std::chrono::seconds(10));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->exit_code, 0);
  EXPECT_EQ(ok->stdout_data, "probed\n");
  auto failing =
      runtime_->ExecSync(id, Workload({"err", "down", "exit", "7"}), std::chrono::seconds(10));
  ASSERT_TRUE(failing.ok());
  EXPECT_EQ(failing->exit_code, 7);
  EXPECT_EQ(failing->stderr_data, "down\n");
}

// Delete: a graceful stop (SIGTERM, which a Linux process may catch), then
// removal; a stop of an exited container is no error.
TEST_P(RuntimeConformance, StopsGracefullyAndRemoves) {
  ContainerConfig c = Config("server", Workload({"on-term", "bye", "out", "up", "sleep", "300"}));
  std::string id = Run(c);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (Read(c.log_path).find("stdout F up") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(Read(c.log_path).find("stdout F up"), std::string::npos);
  int pid = runtime_->GetStatus(id)->pid;
  ASSERT_TRUE(runtime_->StopContainer(id, std::chrono::seconds(10)).ok());
  auto status = runtime_->GetStatus(id);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state, ContainerState::kExited);
  if (Wasm()) {
    SkipPart("a TERM handler", "a WASI module has no signals: SIGTERM ends it");
    EXPECT_EQ(status->exit_code, 128 + SIGTERM);
  } else {
    EXPECT_EQ(status->exit_code, 0);  // Its TERM handler ran: a graceful stop.
    EXPECT_NE(Read(c.log_path).find("stdout F bye"), std::string::npos) << Read(c.log_path);
  }
  EXPECT_NE(kill(pid, 0), 0);
  EXPECT_TRUE(runtime_->StopContainer(id, std::chrono::seconds(1)).ok());
  ASSERT_TRUE(runtime_->RemoveContainer(id).ok());
  EXPECT_TRUE(runtime_->ListContainers().empty());

  // A running container removed at once (a forced delete, as a pod sandbox's
  // removal does): its shim ends too, though it may find no bundle left to
  // record the exit in.
  std::string running = Run(Config("removed", Workload({"sleep", "300"})));
  ASSERT_TRUE(ShimRuns(running));
  ASSERT_TRUE(runtime_->RemoveContainer(running).ok());
  EXPECT_TRUE(runtime_->ListContainers().empty());
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ShimRuns(running) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(ShimRuns(running)) << "the shim of a removed container lives on";
}

TEST_P(RuntimeConformance, PodsReachEachOtherThroughCni) {
  if (Wasm()) GTEST_SKIP() << "pod to pod: kiso's WASI preview 1 has no sockets";
  // A bridge and range per runtime: ctest runs the two at once.
  const bool runc = GetParam() == "runc";
  const std::string prefix = runc ? "10.231." : "10.233.";
  auto net = Network(runc ? "kisotestrunc" : "kisotestcrun", prefix + "0.0/24");
  ASSERT_TRUE(net.ok()) << net.status().ToString();
  auto server_ip = (*net)->Add(sandbox_.id, sandbox_.netns_path);
  ASSERT_TRUE(server_ip.ok()) << server_ip.status().ToString();
  auto other = runtime_->RunPodSandbox({"pod-b", "default", "uid-2"});
  ASSERT_TRUE(other.ok());
  auto client_ip = (*net)->Add(other->id, other->netns_path);
  ASSERT_TRUE(client_ip.ok()) << client_ip.status().ToString();
  EXPECT_NE(server_ip->ip, client_ip->ip);
  EXPECT_TRUE(server_ip->ip.starts_with(prefix + "0."));

  auto server = runtime_->CreateContainer(
      sandbox_, Config("server", {"sh", "-c",
                                  "trap 'echo bye; exit 0' TERM; "
                                  "echo hi > /tmp/index.html; httpd -p 8080 -h /tmp; "
                                  "while true; do sleep 0.1; done"}));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_TRUE(runtime_->StartContainer(*server).ok());
  // Within the pod, on localhost (polled until httpd listens).
  std::string body;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline && body != "hi\n") {
    auto r = runtime_->ExecSync(*server, {"wget", "-q", "-O", "-", "http://127.0.0.1:8080/"},
                                std::chrono::seconds(5));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    body = r->stdout_data;
  }
  EXPECT_EQ(body, "hi\n");
  // From the other pod, by the pod IP.
  auto client = runtime_->CreateContainer(
      *other, Config("client", {"wget", "-q", "-O", "-", "http://" + server_ip->ip + ":8080/"}));
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(runtime_->StartContainer(*client).ok());
  auto status = WaitExited(*client);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->exit_code, 0) << Read(status->log_path);
  EXPECT_NE(Read(status->log_path).find("stdout F hi"), std::string::npos);

  ASSERT_TRUE(runtime_->StopContainer(*server, std::chrono::seconds(5)).ok());
  status = runtime_->GetStatus(*server);
  EXPECT_EQ(status->state, ContainerState::kExited);
  EXPECT_EQ(status->exit_code, 0);  // The TERM trap ran: a graceful stop.
  EXPECT_NE(Read(status->log_path).find("stdout F bye"), std::string::npos);

  EXPECT_TRUE((*net)->Del(sandbox_.id, sandbox_.netns_path).ok());
  EXPECT_TRUE((*net)->Del(other->id, other->netns_path).ok());
  EXPECT_TRUE((*net)->Attached().empty());
  // host-local released both addresses.
  size_t leases = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_.File("cni/ipam"))) {
    leases += e.path().filename().string().starts_with(prefix);
  }
  EXPECT_EQ(leases, 0u);
}

TEST_P(RuntimeConformance, ACreateFailureNamesTheCause) {
  auto id = runtime_->CreateContainer(sandbox_, Config("missing", {"/no/such/binary"}));
  if (id.ok()) {
    // runc reports a missing executable at start (exec in the container).
    Status started = runtime_->StartContainer(*id);
    if (started.ok()) {
      auto status = WaitExited(*id);
      ASSERT_TRUE(status.ok());
      EXPECT_NE(status->exit_code, 0);
    } else {
      // runc and crun make the container as it starts: the start names the cause.
      EXPECT_NE(started.message().find("/no/such/binary"), std::string::npos) << started.ToString();
    }
  } else {
    EXPECT_NE(id.status().message().find("/no/such/binary"), std::string::npos)
        << id.status().ToString();
  }
  if (Wasm()) {  // A program that is not a module: refused at create, saying so.
    auto linux_program = runtime_->CreateContainer(sandbox_, Config("native", {"/bin/workload"}));
    ASSERT_FALSE(linux_program.ok());
    EXPECT_NE(linux_program.status().message().find("not a WebAssembly module"), std::string::npos)
        << linux_program.status().ToString();
  }
}

TEST_P(RuntimeConformance, RotatesContainerLogsAsTheKubeletDoes) {
  OciRuntimeOptions options = Options("rotating");
  options.container_log_max_size = 64 << 10;
  options.container_log_max_files = 3;
  auto rt = OciRuntime::Create(options);
  ASSERT_TRUE(rt.ok()) << rt.status().ToString();
  auto sandbox = (*rt)->RunPodSandbox({"pod-r", "default", "uid-r"});
  ASSERT_TRUE(sandbox.ok());
  // About 1 MiB of numbered lines, then a last one.
  std::string id =
      Run(Config("chatty", Workload({"lines", "100000", "out", "the end"})), rt->get(), &*sandbox);
  auto status = WaitExited(id, rt->get());
  ASSERT_TRUE(status.ok() && status->state == ContainerState::kExited);
  std::vector<std::string> rotated;
  uintmax_t total = 0;
  for (const auto& e : fs::directory_iterator(fs::path(status->log_path).parent_path())) {
    std::string name = e.path().filename();
    if (!name.starts_with("chatty.log")) continue;
    total += fs::file_size(e.path());
    EXPECT_LE(fs::file_size(e.path()), (64u << 10) + 128) << name;  // One line past the limit.
    if (name != "chatty.log") rotated.push_back(name);
  }
  EXPECT_EQ(rotated.size(), 2u) << "three files kept, the current one included";
  EXPECT_LT(total, 3u * ((64u << 10) + 128));
  std::string current = Read(status->log_path);
  EXPECT_NE(current.find(" stdout F the end\n"), std::string::npos);
  EXPECT_TRUE((*rt)->RemovePodSandbox(sandbox->id).ok());
}

TEST_P(RuntimeConformance, WhatACrashLeavesHalfDoneIsFoundAndFinished) {
  // A sandbox whose namespaces a crash never made: listed, not ready, removable.
  std::string half = dir_.File("runtime/sandboxes/0123456789abcdef");
  fs::create_directories(half);
  std::ofstream(half + "/sandbox.json") << R"({"name":"p","namespace":"default","uid":"u"})";
  std::map<std::string, bool> ready;
  for (const auto& info : runtime_->ListPodSandboxes()) ready[info.sandbox.id] = info.ready;
  EXPECT_TRUE(ready.at(sandbox_.id));
  EXPECT_FALSE(ready.at("0123456789abcdef"));
  EXPECT_TRUE(runtime_->RemovePodSandbox("0123456789abcdef").ok());
  EXPECT_FALSE(fs::exists(half));
  // A container started by the runtime before the agent could record it
  // (started_at is written last): running, not created.
  auto id = runtime_->CreateContainer(sandbox_, Config("started", Workload({"sleep", "60"})));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(runtime_->GetStatus(*id)->state, ContainerState::kCreated);
  ASSERT_TRUE(runtime_->StartContainer(*id).ok());
  const std::string started_at = dir_.File("runtime/containers/" + *id + "/started_at");
  ASSERT_TRUE(fs::remove(started_at));
  EXPECT_EQ(runtime_->GetStatus(*id)->state, ContainerState::kRunning);
  EXPECT_TRUE(fs::exists(started_at)) << "recorded when found running";
  EXPECT_TRUE(runtime_->StopContainer(*id, std::chrono::seconds(0)).ok());
  // Created and never started (the agent died in between): stopped and
  // removed without ever running.
  auto idle = runtime_->CreateContainer(sandbox_, Config("idle", Workload({"sleep", "60"})));
  ASSERT_TRUE(idle.ok()) << idle.status().ToString();
  EXPECT_TRUE(runtime_->StopContainer(*idle, std::chrono::seconds(0)).ok());
  auto stopped = runtime_->GetStatus(*idle);
  ASSERT_TRUE(stopped.ok());
  EXPECT_TRUE(stopped->state == ContainerState::kCreated ||
              stopped->state == ContainerState::kExited)
      << static_cast<int>(stopped->state);
  EXPECT_TRUE(runtime_->RemoveContainer(*idle).ok());
  EXPECT_FALSE(runtime_->GetStatus(*idle).ok());
}

// The calls Docker's and containerd's default profiles refuse are refused
// here (EPERM; clone3 ENOSYS, so that libc falls back to clone), what every
// program needs is not, and the capability that a refused call needs gives it
// back. The probe (tests/support/seccomp_probe.cc) makes each call in turn.
TEST_P(RuntimeConformance, RuntimeDefaultSeccompRefusesWhatTheDefaultProfilesRefuse) {
  if (Wasm()) {
    GTEST_SKIP() << "seccomp: a WebAssembly module makes no system calls of its own, only the "
                    "WASI calls the engine answers";
  }
  auto probe = [&](const std::string& name, const std::function<void(ContainerConfig&)>& adjust) {
    // The 32-bit call forks: before ptrace, which makes the probe a tracee
    // that its child's end would stop.
    ContainerConfig c = Config(name, {"/bin/seccomp_probe",
                                      "getpid",
                                      "x32_getpid",
                                      "i386_getpid",
                                      "clone",
                                      "socket_inet",
                                      "personality_query",
                                      "ptrace",
                                      "process_vm_readv",
                                      "kcmp",
                                      "keyctl",
                                      "unshare_user",
                                      "mount",
                                      "clone_newuser",
                                      "clone3",
                                      "io_uring_setup",
                                      "userfaultfd",
                                      "bpf",
                                      "reboot",
                                      "personality_bsd",
                                      "socket_vsock",
                                      "unknown"});
    adjust(c);
    auto id = runtime_->CreateContainer(sandbox_, c);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!id.ok() || !runtime_->StartContainer(*id).ok())
      return std::map<std::string, std::string>();
    auto status = WaitExited(*id);
    EXPECT_TRUE(status.ok() && status->exit_code == 0);
    std::map<std::string, std::string> out;
    std::istringstream log(Read(c.log_path));
    std::string line;
    while (std::getline(log, line)) {  // "<time> stdout F <call> <result>"
      std::istringstream words(line);
      std::string time, stream, tag, call, result;
      words >> time >> stream >> tag >> call >> result;
      out[call] = result;
    }
    return out;
  };
  auto runtime_default = probe("default", [](ContainerConfig&) {});
  for (const char* allowed : {"getpid", "clone", "socket_inet", "personality_query"})
    EXPECT_EQ(runtime_default[allowed], "ok") << allowed;
  for (const char* refused :
       {"ptrace", "process_vm_readv", "kcmp", "keyctl", "unshare_user", "mount", "clone_newuser",
        "io_uring_setup", "userfaultfd", "bpf", "reboot", "personality_bsd", "socket_vsock"})
    EXPECT_EQ(runtime_default[refused], "EPERM") << refused;
  EXPECT_EQ(runtime_default["clone3"], "ENOSYS");
  // A call newer than the profile knows: runc answers ENOSYS (its filter's stub for numbers
  // past the last it knows, so libc falls back), crun 1.8.1 the profile's default (EPERM):
  // it has no such stub. A difference of the runtimes the suite shows, not kiso's choice.
  EXPECT_EQ(runtime_default["unknown"], GetParam() == "runc" ? "ENOSYS" : "EPERM");
  // It is the profile that refuses them: unconfined, keyctl and ptrace of itself work.
  auto unconfined =
      probe("unconfined", [](ContainerConfig& c) { c.seccomp = Seccomp::kUnconfined; });
  EXPECT_EQ(unconfined["keyctl"], "ok");
  EXPECT_EQ(unconfined["ptrace"], "ok");
  // The other ABIs' getpid fares as the kernel has it, filtered or not: the
  // profile lists the ABIs the kernel runs (the 32-bit one only there), and
  // a kernel's ENOSYS for x32 stays ENOSYS rather than a killed caller.
  for (const char* abi : {"x32_getpid", "i386_getpid"}) {
    EXPECT_FALSE(unconfined[abi].empty()) << abi;
    EXPECT_EQ(runtime_default[abi], unconfined[abi]) << abi;
  }
  // A capability gives its calls back.
  auto traced = probe("ptracer", [](ContainerConfig& c) { c.add_caps = {"SYS_PTRACE"}; });
  EXPECT_EQ(traced["ptrace"], "ok");
  EXPECT_EQ(traced["kcmp"], "ok");
  EXPECT_EQ(traced["keyctl"], "EPERM");  // Never given back.
}

// A real multi-process server (Debian's nginx: a master, workers that drop to
// nobody, epoll, sendfile) runs under RuntimeDefault and serves.
TEST_P(RuntimeConformance, NginxServesUnderRuntimeDefaultSeccomp) {
  if (Wasm()) GTEST_SKIP() << "nginx: a Linux program, and kiso's WASI preview 1 has no sockets";
  std::string root = dir_.File("nginx-root");
  ASSERT_TRUE(testing::MakeBusyboxRootfs(root));
  if (!testing::AddProgram(root, "/usr/sbin/nginx")) GTEST_SKIP() << "nginx is not installed";
  for (const char* d : {"var/lib/nginx/body", "var/log/nginx", "var/www", "run", "etc/nginx"})
    fs::create_directories(root + "/" + d);
  testing::WriteFile(root + "/var/www/index.html", "served by nginx\n");
  testing::WriteFile(root + "/etc/nginx/nginx.conf",
                     "daemon off; worker_processes 2; user nobody nogroup;\n"
                     "error_log stderr; pid /run/nginx.pid;\n"
                     "events { worker_connections 64; }\n"
                     "http { access_log off; sendfile on;\n"
                     "  server { listen 8080; root /var/www; } }\n");
  std::string tar = testing::BuildOciArchive(dir_.path(), root, "docker.io/library/nginx:test",
                                             {"nginx"}, dir_.File("nginx.tar"));
  ASSERT_TRUE(images_->Import(tar).ok());
  auto image = images_->Get("nginx:test");
  ASSERT_TRUE(image.ok());
  auto rootfs = images_->Rootfs(*image);
  ASSERT_TRUE(rootfs.ok());
  // The pod's loopback comes up with its network (the CNI loopback plugin).
  // A bridge and range per runtime: ctest runs the two at once.
  auto net = GetParam() == "runc" ? Network("kisotest1runc", "10.232.0.0/24")
                                  : Network("kisotest1crun", "10.234.0.0/24");
  ASSERT_TRUE(net.ok()) << net.status().ToString();
  ASSERT_TRUE((*net)->Add(sandbox_.id, sandbox_.netns_path).ok());
  ContainerConfig c = Config("nginx", {"/usr/sbin/nginx", "-c", "/etc/nginx/nginx.conf"});
  c.image_rootfs = *rootfs;
  auto id = runtime_->CreateContainer(sandbox_, c);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(runtime_->StartContainer(*id).ok());
  std::string body, last_error;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline && body != "served by nginx\n") {
    auto st = runtime_->GetStatus(*id);
    ASSERT_TRUE(st.ok() && st->state == ContainerState::kRunning) << Read(c.log_path);
    auto r = runtime_->ExecSync(*id, {"wget", "-q", "-O", "-", "http://127.0.0.1:8080/"},
                                std::chrono::seconds(5));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    body = r->stdout_data;
    if (body != "served by nginx\n") last_error = r->stderr_data;
  }
  EXPECT_EQ(body, "served by nginx\n") << last_error << Read(c.log_path);
  auto workers = runtime_->ExecSync(*id, {"ps", "-o", "user,args"}, std::chrono::seconds(5));
  ASSERT_TRUE(workers.ok());
  size_t count = 0;
  for (size_t at = 0;
       (at = workers->stdout_data.find("nobody   nginx: worker", at)) != std::string::npos; ++at)
    ++count;
  EXPECT_EQ(count, 2u) << workers->stdout_data;
  EXPECT_TRUE(runtime_->StopContainer(*id, std::chrono::seconds(5)).ok());
  EXPECT_TRUE((*net)->Del(sandbox_.id, sandbox_.netns_path).ok());
}

// The generated config.json against the runtime-spec's own JSON schema
// (Debian's golang-github-opencontainers-specs-dev), checked by python3-jsonschema.
TEST(OciSpecTest, ConfigValidatesAgainstTheRuntimeSpecSchema) {
  const std::string schema =
      "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema/config-schema.json";
  ASSERT_TRUE(fs::exists(schema)) << "install golang-github-opencontainers-specs-dev";
  testing::TempDir dir("spec");
  ContainerConfig plain;
  plain.args = {"sh"};
  plain.env = {"PATH=/bin"};
  plain.memory_limit = 64 << 20;
  plain.cpu_shares = 256;
  plain.cpu_quota_us = 50000;
  plain.mounts = {{"/data", "/tmp", true}};
  ContainerConfig privileged = plain;
  privileged.privileged = true;
  privileged.read_only_rootfs = true;
  ContainerConfig narrow = plain;  // And plain has the default seccomp profile.
  narrow.drop_caps = {"ALL"};
  narrow.add_caps = {"NET_ADMIN"};
  narrow.no_new_privileges = true;
  narrow.seccomp = Seccomp::kLocalhost;
  narrow.seccomp_profile = R"({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
      {"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]})";
  Sandbox sandbox{"s", "/run/x/net", "/run/x/ipc", "/run/x/uts"};
  for (const auto* config : {&plain, &privileged, &narrow}) {
    std::ofstream(dir.File("config.json"))
        << boost::json::serialize(BuildSpec(*config, sandbox, "/rootfs", "pod", "/kiso/c"));
    const std::string validator =
        "import json, pathlib, sys, jsonschema\n"
        "schema_path = pathlib.Path(sys.argv[1])\n"
        "schema = json.loads(schema_path.read_text())\n"
        "resolver = jsonschema.RefResolver(schema_path.parent.as_uri() + '/', schema)\n"
        "jsonschema.validate(json.loads(pathlib.Path(sys.argv[2]).read_text()), schema,\n"
        "                    resolver=resolver)\n";
    auto r = RunCommand({"/usr/bin/python3", "-c", validator, schema, dir.File("config.json")});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->exit_code, 0) << r->err;
  }
}

INSTANTIATE_TEST_SUITE_P(Runtimes, RuntimeConformance, ::testing::Values("runc", "crun", "wasm"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kiso::runtime
