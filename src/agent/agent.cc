#include "agent/agent.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <map>
#include <set>

#include "agent/container_spec.h"
#include "agent/node_registration.h"
#include "agent/prober.h"
#include "api/object.h"
#include "api/quota.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/host_addresses.h"
#include "runtime/oci_runtime.h"

namespace kiso::agent {

namespace fs = std::filesystem;
namespace json = boost::json;
using runtime::ContainerState;
using runtime::ContainerStatus;

namespace {

const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }

using api::KeyOf;

}  // namespace

Agent::Agent(client::Client* client, AgentOptions options, runtime::RuntimeService* runtime,
             image::ImageService* images, network::CniNetwork* network)
    : client_(client),
      options_(std::move(options)),
      runtime_(runtime),
      images_(images),
      network_(network),
      events_(client, "kubelet") {
  if (options_.node_name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    options_.node_name = host;
  }
  if (options_.internal_ip.empty()) options_.internal_ip = PrimaryIpv4();
  pods_ = std::make_unique<client::Informer>(
      client_, &Pods(),
      [this](const json::value*, const json::value& obj, bool deleted) { OnPod(obj, deleted); });
  pods_->SetFieldSelector("spec.nodeName=" + options_.node_name);
}

Agent::~Agent() { Stop(); }

Status Agent::Start() {
  NodeDescription d;
  d.name = options_.node_name;
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGE_SIZE);
  d.capacity = {{"cpu", std::to_string(std::max(1u, std::thread::hardware_concurrency()))},
                {"memory", fmt::format("{}Ki", static_cast<int64_t>(pages) * page / 1024)},
                {"pods", std::to_string(options_.max_pods)},
                {"ephemeral-storage", "100Gi"}};
  std::error_code ec;
  auto space = fs::space(options_.data_dir, ec);
  if (!ec) d.capacity["ephemeral-storage"] = fmt::format("{}Ki", space.capacity / 1024);
  d.internal_ip = options_.internal_ip;
  d.pod_cidr = options_.pod_cidr;
  d.runtime_version = runtime_->Version();
  d.runtime_handlers = runtime_->Handlers();
  d.kernel_version = "linux";
  d.os_image = "kiso";
  d.message = "kiso agent is posting ready status";
  KISO_RETURN_IF_ERROR(RegisterNode(client_, d, options_.lease_duration));
  KISO_RETURN_IF_ERROR(ConfigurePodRange());
  Adopt();
  pods_->Start();
  loop_.Start(
      options_.workers, [this](const std::string& key) { Reconcile(key); },
      std::max(std::chrono::seconds(1), options_.lease_duration / 4),
      [this] {
        Status st = RenewNodeLease(client_, options_.node_name, options_.lease_duration);
        if (st.ok())
          st = ReassertNodeReady(client_, options_.node_name, "kiso agent is posting ready status");
        if (!st.ok()) spdlog::warn("agent: heartbeat: {}", st.ToString());
      });
  spdlog::info("agent: node {} ready ({}, network {})", options_.node_name, runtime_->Version(),
               network_->name());
  return Status::Ok();
}

Status Agent::ConfigurePodRange() {
  auto node = client_->Get(Nodes(), "", options_.node_name);
  if (!node.ok()) return node.status();
  std::string cidr(api::GetString(*node, {"spec", "podCIDR"}));
  if (!cidr.empty()) {
    if (!options_.pod_cidr.empty() && cidr != options_.pod_cidr) {
      spdlog::warn(
          "agent: node {} has the pod range {} (spec.podCIDR is fixed once set); "
          "--pod-cidr {} is not used",
          options_.node_name, cidr, options_.pod_cidr);
    }
    return network_->SetPodCidr(cidr);
  }
  // A new Node: the server's node IPAM controller gives it a range. Pods bound
  // here meanwhile wait (their sandboxes' networks cannot be made yet) and are
  // looked at again the moment it comes.
  spdlog::info("agent: node {} waits for its pod range (spec.podCIDR) from the server",
               options_.node_name);
  node_ = std::make_unique<client::Informer>(
      client_, &Nodes(), [this](const json::value*, const json::value& obj, bool deleted) {
        std::string given(api::GetString(obj, {"spec", "podCIDR"}));
        if (deleted || given.empty() || network_->configured()) return;
        if (Status s = network_->SetPodCidr(given); !s.ok()) {
          spdlog::error("agent: pod range {}: {}", given, s.ToString());
          return;
        }
        spdlog::info("agent: node {} has the pod range {}", options_.node_name, given);
        for (const auto& p : pods_->Items()) loop_.queue().Add(KeyOf(*p));
      });
  node_->SetFieldSelector("metadata.name=" + options_.node_name);
  node_->Start();
  return Status::Ok();
}

void Agent::Stop() {
  if (node_) node_->Stop();
  loop_.Stop();  // The queue is shut down: a termination's requeue is a no-op from here.
  pods_->Stop();
  // Graceful stops under way finish (within their grace periods); nothing of
  // the agent runs once Stop() returns.
  std::vector<Termination> running;
  {
    std::lock_guard lock(mu_);
    running.swap(terminations_);
  }
  for (auto& t : running) t.thread.join();
}

void Agent::SetSandbox(PodState& state, const runtime::Sandbox& sandbox, const std::string& ip) {
  std::lock_guard lock(mu_);
  state.sandbox_id = sandbox.id;
  state.sandbox = sandbox;
  state.ip = ip;
}

void Agent::StartTermination(const std::string& key, PodState& state, std::chrono::seconds grace,
                             const json::value& pod) {
  // Threads that are done are joined here, so they never pile up.
  std::erase_if(terminations_, [](Termination& t) {
    if (!t.done->load()) return false;
    t.thread.join();
    return true;
  });
  state.terminating = true;
  auto done = std::make_shared<std::atomic<bool>>(false);
  terminations_.push_back({std::thread([this, key, &state, grace, pod, done] {
                             bool ok = Teardown(state, grace, &pod);
                             {
                               std::lock_guard lock(mu_);
                               state.terminating = false;
                               state.stopped = ok;
                             }
                             if (ok) {
                               loop_.queue().Add(key);
                             } else {
                               loop_.queue().AddAfter(key, std::chrono::seconds(1));
                             }
                             *done = true;
                           }),
                           done});
}

// After a restart: sandboxes still here belong to the pods they were made for.
// Their pods are reconciled once the informer lists them; the rest are torn down.
// A sandbox a crash left half made — a namespace missing, or no address
// cached (the agent died during or right after CNI ADD) — has no containers
// yet (they come after both): it is removed, its address released by
// container ID, and its pod starts over with a new one.
void Agent::Adopt() {
  std::lock_guard lock(mu_);
  std::set<std::string> sandboxes;
  for (const auto& info : runtime_->ListPodSandboxes()) {
    const runtime::Sandbox& sandbox = info.sandbox;
    auto ip = network_->Cached(sandbox.id);
    if (!info.ready || !ip.ok()) {
      spdlog::info("agent: removing sandbox {} a crash left half made ({})",
                   sandbox.id.substr(0, 12),
                   !info.ready ? "a namespace is missing" : "no address was cached");
      Status net = network_->Del(sandbox.id, sandbox.netns_path);
      Status rm = runtime_->RemovePodSandbox(sandbox.id);
      if (!net.ok() || !rm.ok()) {
        spdlog::warn("agent: sandbox {}: {} {}", sandbox.id.substr(0, 12), net.ToString(),
                     rm.ToString());
      }
      continue;
    }
    PodState s;
    s.uid = info.config.uid;
    s.ns = info.config.ns;
    s.name = info.config.name;
    s.sandbox_id = sandbox.id;
    s.sandbox = sandbox;
    s.ip = ip->ip;
    std::string key = s.ns + "/" + s.name;
    sandboxes.insert(sandbox.id);
    spdlog::info("agent: adopting sandbox {} of pod {}", sandbox.id.substr(0, 12), key);
    state_[key] = std::move(s);
    loop_.queue().Add(key);
  }
  // Leftovers of a crash between steps: addresses without a sandbox.
  for (const auto& id : network_->Attached()) {
    if (!sandboxes.contains(id)) (void)network_->Del(id, "");
  }
}

void Agent::SetWaiting(const json::value& pod, PodState& s, const std::string& name,
                       const std::string& reason, const std::string& message) {
  auto& w = s.waiting[name];
  if (w.first == reason && w.second == message) return;
  bool new_reason = w.first != reason;
  w = {reason, message};
  if (!new_reason) return;
  if (reason == "CrashLoopBackOff") {
    events_.Record(pod, "Warning", "BackOff",
                   fmt::format("Back-off restarting failed container {} in pod {}_{}({})", name,
                               s.name, s.ns, s.uid));
  } else if (reason == "ImagePullBackOff") {
    events_.Record(pod, "Warning", "BackOff", message);
  } else if (reason == "CreatePodSandboxError") {
    events_.Record(pod, "Warning", "FailedCreatePodSandBox",
                   fmt::format("Failed to create pod sandbox: {}", message));
  } else if (reason == "ErrImagePull") {
    events_.Record(pod, "Warning", "Failed", message);
    events_.Record(pod, "Warning", "Failed", "Error: ErrImagePull");
  } else {
    events_.Record(pod, "Warning", "Failed", fmt::format("Error: {}", message));
  }
}

void Agent::OnPod(const json::value& pod, bool /*deleted*/) { loop_.queue().Add(KeyOf(pod)); }

PodContext Agent::ContextOf(const json::value& pod, const PodState& s) const {
  return PodContext{&pod,
                    s.ip,
                    options_.internal_ip,
                    options_.node_name,
                    PodDir(s),
                    options_.data_dir + "/seccomp",
                    options_.cluster_dns,
                    options_.cluster_domain,
                    options_.resolv_conf};
}

std::string Agent::PodDir(const PodState& s) const {
  return fmt::format("{}/pods/{}_{}_{}", options_.data_dir, s.ns, s.name, s.uid);
}

Attempts AttemptsOf(const std::vector<ContainerStatus>& all, std::string_view name) {
  Attempts out;
  for (const auto& st : all) {
    if (st.name != name) continue;
    if (!out.latest || st.attempt > out.latest->attempt) {
      out.previous = out.latest;
      out.latest = &st;
    } else if (!out.previous || st.attempt > out.previous->attempt) {
      out.previous = &st;
    }
  }
  return out;
}

std::vector<ContainerStatus> Agent::ContainersOf(const std::string& sandbox_id) {
  std::vector<ContainerStatus> out;
  const auto ids = runtime_->ListContainers();
  std::vector<std::string> mine;
  {
    std::lock_guard lock(sandbox_of_mu_);
    if (sandbox_of_.size() > 2 * ids.size() + 64) {  // Forget the containers that went.
      std::set<std::string> live(ids.begin(), ids.end());
      std::erase_if(sandbox_of_, [&](const auto& kv) { return !live.contains(kv.first); });
    }
    for (const auto& id : ids) {
      auto it = sandbox_of_.find(id);
      if (it == sandbox_of_.end() || it->second == sandbox_id) mine.push_back(id);
    }
  }
  for (const auto& id : mine) {
    auto s = runtime_->GetStatus(id);
    if (!s.ok()) continue;
    {
      std::lock_guard lock(sandbox_of_mu_);
      sandbox_of_[id] = s->sandbox_id;
    }
    if (s->sandbox_id == sandbox_id) out.push_back(std::move(*s));
  }
  return out;
}

void Agent::Reconcile(const std::string& key) {
  if (!pods_->synced()) {
    loop_.queue().AddAfter(key, std::chrono::milliseconds(100));
    return;
  }
  auto pod = pods_->Get(key.substr(0, key.find('/')), key.substr(key.find('/') + 1));
  PodState* state = nullptr;
  bool terminating = false;
  std::string sandbox;
  {
    std::lock_guard lock(mu_);
    auto it = state_.find(key);
    if (it != state_.end()) state = &it->second;
    terminating = state && state->terminating;
    if (terminating) sandbox = state->sandbox_id;
  }
  if (terminating) {
    // Its thread requeues the key when done. Force-deleted meanwhile (gone,
    // or a grace period cut to 0): its containers are killed now, which ends
    // the thread's wait.
    const auto* g = pod ? api::Find(*pod, {"metadata", "deletionGracePeriodSeconds"}) : nullptr;
    if (!pod || (g && g->is_int64() && g->get_int64() == 0)) {
      for (const auto& c : ContainersOf(sandbox)) {
        if (c.state == ContainerState::kRunning)
          (void)runtime_->StopContainer(c.id, std::chrono::seconds(0));
      }
    }
    return;
  }
  std::string uid = pod ? std::string(api::GetString(*pod, {"metadata", "uid"})) : "";
  // A pod gone, or replaced by a new one of the same name: tear the old one down.
  if (state && (!pod || state->uid != uid)) {
    if (!Teardown(*state, std::chrono::seconds(0))) {
      loop_.queue().AddAfter(key, std::chrono::seconds(1));
      return;
    }
    std::lock_guard lock(mu_);
    state_.erase(key);
    state = nullptr;
  }
  if (!pod) return;
  if (!api::GetString(*pod, {"metadata", "deletionTimestamp"}).empty()) {
    const auto* g = api::Find(*pod, {"metadata", "deletionGracePeriodSeconds"});
    std::chrono::seconds grace(g && g->is_int64() ? g->get_int64() : 30);
    if (state && !state->stopped) {
      // The grace period must not hold one of the agent's workers.
      std::lock_guard lock(mu_);
      StartTermination(key, *state, grace, *pod);
      return;
    }
    {
      std::lock_guard lock(mu_);
      state_.erase(key);
    }
    // Everything is gone: confirm the deletion (grace 0, this pod's uid only).
    client::DeleteOptions options;
    options.grace_period_seconds = 0;
    options.precondition_uid = uid;
    Status s = client_->Delete(Pods(), key.substr(0, key.find('/')), key.substr(key.find('/') + 1),
                               options);
    if (!s.ok() && s.code() != Code::kNotFound && s.code() != Code::kConflict) {
      loop_.queue().AddAfter(key, std::chrono::seconds(1));
    }
    return;
  }
  if (!state) {
    std::lock_guard lock(mu_);
    PodState fresh;
    fresh.uid = uid;
    fresh.ns = key.substr(0, key.find('/'));
    fresh.name = key.substr(key.find('/') + 1);
    fresh.phase = std::string(api::GetString(*pod, {"status", "phase"}));
    state = &(state_[key] = std::move(fresh));
  }
  SyncPod(*pod, *state);
}

bool Agent::Teardown(PodState& s, std::chrono::seconds grace, const json::value* pod) {
  std::atomic<bool> ok = true;
  if (!s.sandbox_id.empty()) {
    // Every container at once, as the kubelet does: the preStop hook, then
    // SIGTERM, then SIGKILL when the grace period (hook included) is over;
    // sidecars once the others have stopped, within what is left of it.
    std::map<std::string, const json::value*> specs;
    std::set<std::string> sidecars;
    if (pod) {
      for (const char* list : {"containers", "initContainers"}) {
        for (const auto& c : api::GetArray(*pod, {"spec", list})) {
          std::string name(api::GetString(c, {"name"}));
          specs[name] = &c;
          if (api::IsSidecar(c)) sidecars.insert(std::move(name));
        }
      }
    }
    const auto deadline = std::chrono::steady_clock::now() + grace;
    auto left = [&deadline] {
      return std::max(std::chrono::duration_cast<std::chrono::seconds>(
                          deadline - std::chrono::steady_clock::now()),
                      std::chrono::seconds(0));
    };
    auto stop_wave = [&](bool sidecar_wave) {
      std::vector<std::thread> stops;
      for (const auto& c : ContainersOf(s.sandbox_id)) {
        if (sidecars.contains(c.name) != sidecar_wave) continue;
        if (c.state != ContainerState::kRunning) {
          (void)runtime_->StopContainer(c.id, std::chrono::seconds(0));
          continue;
        }
        const json::value* spec = specs.contains(c.name) ? specs[c.name] : nullptr;
        stops.emplace_back([this, &s, &ok, &left, c, pod, spec] {
          if (pod) {
            events_.Record(*pod, "Normal", "Killing", fmt::format("Stopping container {}", c.name));
            const auto* hook = spec ? api::Find(*spec, {"lifecycle", "preStop"}) : nullptr;
            if (hook && hook->is_object()) {
              ProbeResult r = RunHook(*hook, *spec, runtime_, c.id, s.ip,
                                      std::max(left(), std::chrono::seconds(1)));
              if (!r.success) {
                events_.Record(*pod, "Warning", "FailedPreStopHook",
                               fmt::format("PreStopHook failed: {}", r.message));
              }
            }
          }
          Status st = runtime_->StopContainer(c.id, left());
          if (!st.ok()) {
            spdlog::warn("agent: stop {} of {}/{}: {}", c.name, s.ns, s.name, st.ToString());
            ok = false;
          }
        });
      }
      for (auto& t : stops) t.join();
    };
    stop_wave(false);
    if (!sidecars.empty()) stop_wave(true);
    if (!ok) return false;
    Status net = network_->Del(s.sandbox_id, s.sandbox.netns_path);
    if (!net.ok()) spdlog::warn("agent: {}/{}: {}", s.ns, s.name, net.ToString());
    Status rm = runtime_->RemovePodSandbox(s.sandbox_id);
    if (!rm.ok()) {
      spdlog::warn("agent: remove sandbox of {}/{}: {}", s.ns, s.name, rm.ToString());
      return false;
    }
  }
  // Its memory-backed volumes (tmpfs) first, then everything of it.
  std::vector<std::string> unmounted, failed;
  runtime::UnmountBelow(PodDir(s), &unmounted, &failed);
  for (const auto& f : failed) spdlog::warn("agent: {}/{}: unmount {}", s.ns, s.name, f);
  std::error_code ec;
  fs::remove_all(PodDir(s), ec);
  return true;
}

bool Agent::AppContainersDone(const json::value& pod, const PodState& s) {
  std::string policy(api::GetString(pod, {"spec", "restartPolicy"}));
  if (policy.empty() || policy == "Always" || s.sandbox_id.empty() || !s.initialized) return false;
  const auto& containers = api::GetArray(pod, {"spec", "containers"});
  if (containers.empty()) return false;
  auto all = ContainersOf(s.sandbox_id);
  for (const auto& c : containers) {
    const auto* latest = AttemptsOf(all, api::GetString(c, {"name"})).latest;
    if (!latest || latest->state != ContainerState::kExited) return false;
    if (policy == "OnFailure" && latest->exit_code != 0) return false;
  }
  return true;
}

void Agent::FailPod(const json::value& pod, PodState& s, std::string_view reason,
                    std::string message, std::chrono::seconds grace) {
  if (s.fail_reason.empty()) events_.Record(pod, "Warning", std::string(reason), message);
  s.fail_reason = std::string(reason);
  s.fail_message = std::move(message);
  if (!s.sandbox_id.empty()) {
    for (const auto& c : ContainersOf(s.sandbox_id)) {
      if (c.state == ContainerState::kRunning) (void)runtime_->StopContainer(c.id, grace);
    }
  }
  WriteStatus(pod, s);
}

Result<std::string> Agent::PodRuntimeHandler(const json::value& pod) {
  std::string_view class_name = api::GetString(pod, {"spec", "runtimeClassName"});
  if (class_name.empty()) return std::string();
  auto rc = client_->Get(*api::FindResource("node.k8s.io", "v1", "runtimeclasses"), "",
                         std::string(class_name));
  if (!rc.ok()) {
    return Status(rc.status().code(), rc.status().code() == Code::kNotFound
                                          ? fmt::format("RuntimeClass {:?} not found", class_name)
                                          : fmt::format("looking up RuntimeClass {:?}: {}",
                                                        class_name, rc.status().message()));
  }
  std::string handler(api::GetString(*rc, {"handler"}));
  const std::vector<std::string> runs = runtime_->Handlers();
  if (handler.empty() || std::find(runs.begin(), runs.end(), handler) != runs.end()) {
    return handler;
  }
  return MakeStatus(Code::kInvalidArgument,
                    "RuntimeHandler {:?} not supported: node {:?} runs {} (RuntimeClass {:?})",
                    handler, options_.node_name, fmt::join(runs, ", "), class_name);
}

void Agent::SyncPod(const json::value& pod, PodState& s) {
  std::string key = s.ns + "/" + s.name;
  if (s.phase == "Succeeded" || s.phase == "Failed" || !s.fail_reason.empty()) {
    // Terminal: nothing restarts; whatever still runs (sidecars of a pod
    // whose app containers have finished) is stopped.
    if (!s.sandbox_id.empty()) {
      const auto* g = api::Find(pod, {"spec", "terminationGracePeriodSeconds"});
      for (const auto& c : ContainersOf(s.sandbox_id)) {
        if (c.state == ContainerState::kRunning) {
          (void)runtime_->StopContainer(
              c.id, std::chrono::seconds(g && g->is_int64() ? g->get_int64() : 30));
        }
      }
    }
    WriteStatus(pod, s);
    return;
  }
  if (s.start_time.empty()) {
    s.start_time = std::string(api::GetString(pod, {"status", "startTime"}));
    if (s.start_time.empty()) s.start_time = api::NowRfc3339();
  }
  if (s.sandbox_id.empty()) {
    auto handler = PodRuntimeHandler(pod);
    if (!handler.ok()) {
      // The kubelet's answer to a handler its runtime lacks; retried, in case
      // the class was missing only for a moment.
      SetWaiting(pod, s, "*", "CreatePodSandboxError", handler.status().message());
      WriteStatus(pod, s);
      loop_.queue().AddAfter(key, std::chrono::seconds(10));
      return;
    }
    auto sandbox = runtime_->RunPodSandbox(
        {s.name, s.ns, s.uid, std::string(api::GetString(pod, {"spec", "hostname"})), *handler});
    if (!sandbox.ok()) {
      SetWaiting(pod, s, "*", "CreatePodSandboxError", sandbox.status().message());
      WriteStatus(pod, s);
      loop_.queue().AddAfter(key, std::chrono::seconds(2));
      return;
    }
    std::vector<network::PortMapping> ports;
    for (const auto& c : api::GetArray(pod, {"spec", "containers"})) {
      for (const auto& p : api::GetArray(c, {"ports"})) {
        const auto* hp = api::Find(p, {"hostPort"});
        const auto* cp = api::Find(p, {"containerPort"});
        if (hp && hp->is_int64() && hp->get_int64() > 0 && cp && cp->is_int64()) {
          std::string proto(api::GetString(p, {"protocol"}));
          for (auto& ch : proto) ch = static_cast<char>(std::tolower(ch));
          ports.push_back({static_cast<int>(hp->get_int64()), static_cast<int>(cp->get_int64()),
                           proto.empty() ? "tcp" : proto});
        }
      }
    }
    auto attached = network_->Add(sandbox->id, sandbox->netns_path, ports);
    if (!attached.ok()) {
      (void)runtime_->RemovePodSandbox(sandbox->id);
      SetWaiting(pod, s, "*", "CreatePodSandboxError", attached.status().message());
      WriteStatus(pod, s);
      loop_.queue().AddAfter(key, std::chrono::seconds(2));
      return;
    }
    CrashPoint("cni-cached");
    SetSandbox(s, *sandbox, attached->ip);
    s.waiting.erase("*");
  }
  // Volumes: before any container, then again when the pod's metadata
  // changed (downward API) or the sync period passed (sources, tokens).
  std::string from = json::serialize(json::array{
      api::Find(pod, {"metadata", "labels"}) ? *api::Find(pod, {"metadata", "labels"}) : nullptr,
      api::Find(pod, {"metadata", "annotations"}) ? *api::Find(pod, {"metadata", "annotations"})
                                                  : nullptr});
  const auto now = std::chrono::steady_clock::now();
  if (!s.volumes_ready || from != s.volumes_from || now - s.volumes_at >= options_.volume_sync) {
    Status volumes = PrepareVolumes(client_, ContextOf(pod, s));
    if (!volumes.ok() && !s.volumes_ready) {
      SetWaiting(pod, s, "*", "CreateContainerConfigError", volumes.message());
      WriteStatus(pod, s);
      loop_.queue().AddAfter(key, std::chrono::seconds(2));
      return;
    }
    if (!volumes.ok()) {
      // Its containers keep the files they have, as the kubelet's do.
      events_.Record(pod, "Warning", "FailedMount",
                     fmt::format("MountVolume.SetUp failed: {}", volumes.message()));
    }
    s.volumes_ready = true;
    s.volumes_from = std::move(from);
    s.volumes_at = now;
    // The eviction manager's local storage check: an emptyDir past its sizeLimit.
    if (auto over = EmptyDirOverLimit(ContextOf(pod, s))) {
      FailPod(pod, s, "Evicted", std::move(*over), std::chrono::seconds(0));
      return;
    }
  }
  // activeDeadlineSeconds, counted from the pod's start on this node.
  if (const auto* d = api::Find(pod, {"spec", "activeDeadlineSeconds"}); d && d->is_int64()) {
    auto started = ParseTime(s.start_time);
    if (started &&
        std::chrono::system_clock::now() >= *started + std::chrono::seconds(d->get_int64())) {
      const auto* g = api::Find(pod, {"spec", "terminationGracePeriodSeconds"});
      FailPod(pod, s, "DeadlineExceeded",
              "Pod was active on the node longer than the specified deadline",
              std::chrono::seconds(g && g->is_int64() ? g->get_int64() : 30));
      return;
    }
  }
  s.waiting.erase("*");
  // Init containers one at a time: each to success, a sidecar (restartPolicy
  // Always) until it has started; then all app containers. Once initialized a
  // pod stays so: its sidecars are kept running (restarted whenever they
  // exit) beside the app containers, and stopped when those have finished
  // for good.
  bool initialized = true;
  const bool app_done = AppContainersDone(pod, s);
  for (const auto& c : api::GetArray(pod, {"spec", "initContainers"})) {
    const bool sidecar = api::IsSidecar(c);
    if (s.initialized && !sidecar) continue;
    std::string name(api::GetString(c, {"name"}));
    if (sidecar && app_done) {
      s.ready[name] = false;
      for (const auto& st : ContainersOf(s.sandbox_id)) {
        if (st.name != name || st.state != ContainerState::kRunning) continue;
        const auto* g = api::Find(pod, {"spec", "terminationGracePeriodSeconds"});
        (void)runtime_->StopContainer(
            st.id, std::chrono::seconds(g && g->is_int64() ? g->get_int64() : 30));
      }
      continue;
    }
    auto st = SyncContainer(pod, s, c, /*init=*/true);
    if (sidecar) {
      const bool up = st && st->state == ContainerState::kRunning;
      if (up) {
        Probe(pod, s, c, *st);
      } else {
        s.ready[name] = false;
      }
      if (!s.initialized && !(up && (!s.started.contains(name) || s.started[name]))) {
        initialized = false;
        break;
      }
      continue;
    }
    if (!st || st->state != ContainerState::kExited || st->exit_code != 0) {
      initialized = false;
      break;
    }
  }
  if (initialized) s.initialized = true;
  if (initialized) {
    for (const auto& c : api::GetArray(pod, {"spec", "containers"})) {
      auto st = SyncContainer(pod, s, c, false);
      std::string name(api::GetString(c, {"name"}));
      if (st && st->state == ContainerState::kRunning) {
        Probe(pod, s, c, *st);
      } else {
        s.ready[name] = false;
      }
    }
  }
  const std::string before = s.last_status;
  WriteStatus(pod, s);
  // Again soon while the pod is changing; once it runs and its status holds
  // still, at the kubelet's relist period (PLEG: 1 s), which probes and
  // container exits are noticed within.
  if (s.phase != "Succeeded" && s.phase != "Failed") {
    const bool steady = s.phase == "Running" && s.last_status == before;
    loop_.queue().AddAfter(key, steady ? options_.steady_sync_period : options_.sync_period);
  }
}

void Agent::Probe(const json::value& pod, PodState& s, const json::value& c,
                  const ContainerStatus& st) {
  std::string name(api::GetString(c, {"name"}));
  auto now = std::chrono::steady_clock::now();
  auto fresh = [&](PodState::Probe& p, const json::value& spec) {
    if (p.container_id == st.id) return;
    p = PodState::Probe{st.id, now + TimingOf(spec).initial_delay, 0, 0};
  };
  auto due = [&](PodState::Probe& p) { return now >= p.next; };
  auto kill = [&](std::string_view which, const std::string& why) {
    events_.Record(pod, "Warning", "Unhealthy", fmt::format("{} probe failed: {}", which, why));
    events_.Record(pod, "Normal", "Killing",
                   fmt::format("Container {} failed {} probe, will be restarted", name,
                               which == "Liveness" ? "liveness" : "startup"));
    const auto* g = api::Find(pod, {"spec", "terminationGracePeriodSeconds"});
    (void)runtime_->StopContainer(st.id,
                                  std::chrono::seconds(g && g->is_int64() ? g->get_int64() : 30));
    s.ready[name] = false;
  };
  // Startup first: until it succeeds, the others wait.
  const json::value* startup = api::Find(c, {"startupProbe"});
  bool started = true;
  if (startup && startup->is_object()) {
    auto& p = s.startup[name];
    bool was_new = p.container_id != st.id;
    fresh(p, *startup);
    if (was_new) s.started[name] = false;
    started = s.started[name];
    if (!started && due(p)) {
      ProbeTiming t = TimingOf(*startup);
      p.next = now + t.period;
      ProbeResult r = RunProbe(*startup, c, runtime_, st.id, s.ip);
      if (r.success) {
        s.started[name] = started = true;
      } else if (++p.failures >= t.failure_threshold) {
        kill("Startup", r.message);
        return;
      }
    }
  }
  s.started[name] = started;
  if (!started) {
    s.ready[name] = false;
    return;
  }
  if (const json::value* live = api::Find(c, {"livenessProbe"}); live && live->is_object()) {
    auto& p = s.liveness[name];
    fresh(p, *live);
    if (due(p)) {
      ProbeTiming t = TimingOf(*live);
      p.next = now + t.period;
      ProbeResult r = RunProbe(*live, c, runtime_, st.id, s.ip);
      if (r.success) {
        p.failures = 0;
      } else if (++p.failures >= t.failure_threshold) {
        kill("Liveness", r.message);
        return;
      }
    }
  }
  const json::value* ready = api::Find(c, {"readinessProbe"});
  if (!ready || !ready->is_object()) {
    s.ready[name] = true;
    return;
  }
  auto& p = s.readiness[name];
  bool was_new = p.container_id != st.id;
  fresh(p, *ready);
  if (was_new) s.ready[name] = false;
  if (!due(p)) return;
  ProbeTiming t = TimingOf(*ready);
  p.next = now + t.period;
  ProbeResult r = RunProbe(*ready, c, runtime_, st.id, s.ip);
  if (r.success) {
    p.failures = 0;
    if (++p.successes >= t.success_threshold) s.ready[name] = true;
  } else {
    p.successes = 0;
    events_.Record(pod, "Warning", "Unhealthy",
                   fmt::format("Readiness probe failed: {}", r.message));
    if (++p.failures >= t.failure_threshold) s.ready[name] = false;
  }
}

Result<image::Image> Agent::EnsureImage(const json::value& pod, const json::value& c,
                                        bool restart) {
  std::string image_ref(api::GetString(c, {"image"}));
  std::string policy(api::GetString(c, {"imagePullPolicy"}));
  auto local = images_->ImageStatus(image_ref);
  bool pull = policy == "Always" ? true : !local.ok();
  if (!pull) {
    if (!restart) {
      events_.Record(pod, "Normal", "Pulled",
                     fmt::format("Container image {:?} already present on machine", image_ref));
    }
    return local;
  }
  if (policy == "Never") {
    return MakeStatus(Code::kNotFound,
                      "Container image {:?} is not present with pull policy of Never", image_ref);
  }
  KISO_RETURN_IF_ERROR(image::ParseReference(image_ref).status());
  events_.Record(pod, "Normal", "Pulling", fmt::format("Pulling image {:?}", image_ref));
  auto begin = std::chrono::steady_clock::now();
  auto pulled = images_->PullImage(image_ref, {});
  if (!pulled.ok()) return pulled.status();
  events_.Record(pod, "Normal", "Pulled",
                 fmt::format("Successfully pulled image {:?} in {}ms", image_ref,
                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - begin)
                                 .count()));
  return pulled;
}

std::optional<ContainerStatus> Agent::SyncContainer(const json::value& pod, PodState& s,
                                                    const json::value& c, bool init) {
  std::string name(api::GetString(c, {"name"}));
  std::string policy(api::GetString(pod, {"spec", "restartPolicy"}));
  if (policy.empty()) policy = "Always";
  if (init && api::IsSidecar(c)) {
    policy = "Always";  // A sidecar restarts whenever it exits, whatever the pod's policy.
  } else if (init && policy == "Always") {
    policy = "OnFailure";  // Init containers never restart on success.
  }
  std::optional<ContainerStatus> latest;
  {
    auto all = ContainersOf(s.sandbox_id);
    if (const auto* l = AttemptsOf(all, name).latest) latest = *l;
  }
  int attempt = 0;
  auto now = std::chrono::steady_clock::now();
  if (!latest) {
    // A start that failed before: wait out its back-off.
    auto it = s.restart_at.find(name);
    if (it != s.restart_at.end() && now < it->second) return latest;
    if (it != s.restart_at.end()) s.restart_at.erase(it);
  }
  if (latest && latest->state == ContainerState::kCreated) {
    // Created and never started: the agent died between the two (each sync
    // does both). Started now, or replaced if it cannot be.
    Status started = runtime_->StartContainer(latest->id);
    if (started.ok()) {
      auto now_status = runtime_->GetStatus(latest->id);
      if (now_status.ok()) return *now_status;
    }
    spdlog::warn("agent: {}/{}: container {} left created: {}", s.ns, s.name, name,
                 started.ToString());
    (void)runtime_->RemoveContainer(latest->id);
    attempt = latest->attempt;
    latest.reset();
  } else if (latest && latest->state == ContainerState::kUnknown) {
    // Neither its process nor its shim is there, and no exit was recorded
    // (the shim was killed, or a create was cut short): replaced, same attempt.
    spdlog::warn("agent: {}/{}: container {} is gone without a recorded exit; replacing it", s.ns,
                 s.name, name);
    (void)runtime_->RemoveContainer(latest->id);
    attempt = latest->attempt;
    latest.reset();
  }
  if (latest) {
    if (latest->state != ContainerState::kExited) return latest;
    bool restart = policy == "Always" || (policy == "OnFailure" && latest->exit_code != 0);
    if (!restart) return latest;
    auto it = s.restart_at.find(name);
    if (it == s.restart_at.end()) {
      // Back-off doubles with each restart: 10 s, 20 s, 40 s … up to 5 minutes.
      auto delay = std::min<std::chrono::seconds>(
          options_.backoff_base * (1 << std::min(latest->attempt, 5)), options_.backoff_max);
      s.restart_at[name] = now + delay;
      SetWaiting(pod, s, name, "CrashLoopBackOff",
                 fmt::format("back-off {}s restarting failed container={} pod={}_{}({})",
                             delay.count(), name, s.name, s.ns, s.uid));
      return latest;
    }
    if (now < it->second) return latest;
    s.restart_at.erase(it);
    attempt = latest->attempt + 1;
  }
  // Create and start (again).
  std::string image_ref(api::GetString(c, {"image"}));
  if (auto retry = s.pull_retry_at.find(name);
      retry != s.pull_retry_at.end() && now < retry->second) {
    // ErrImagePull stays on show for a moment (the kubelet's next sync), then the back-off.
    if (now < s.pull_failed_at[name] + std::chrono::seconds(2)) return latest;
    SetWaiting(pod, s, name, "ImagePullBackOff",
               fmt::format("Back-off pulling image {:?}", image_ref));
    return latest;
  }
  auto image = EnsureImage(pod, c, latest.has_value());
  if (!image.ok()) {
    // ErrImagePull, then ImagePullBackOff for 10 s, 20 s … 300 s between tries.
    int failures = ++s.pull_failures[name];
    auto delay = std::min<std::chrono::seconds>(
        options_.backoff_base * (1 << std::min(failures - 1, 5)), options_.backoff_max);
    s.pull_retry_at[name] = now + delay;
    s.pull_failed_at[name] = now;
    if (api::GetString(c, {"imagePullPolicy"}) == "Never") {
      SetWaiting(pod, s, name, "ErrImageNeverPull", image.status().message());
      return latest;
    }
    SetWaiting(pod, s, name, "ErrImagePull",
               fmt::format("failed to pull image {:?}: {}", image_ref, image.status().message()));
    return latest;
  }
  s.pull_failures.erase(name);
  s.pull_retry_at.erase(name);
  s.pull_failed_at.erase(name);
  auto rootfs = images_->ImageRootfs(*image);
  if (!rootfs.ok()) {
    SetWaiting(pod, s, name, "CreateContainerError", rootfs.status().message());
    return latest;
  }
  PodContext ctx = ContextOf(pod, s);
  auto config = BuildContainerConfig(client_, ctx, c, *image, *rootfs);
  if (!config.ok()) {
    SetWaiting(pod, s, name, "CreateContainerConfigError", config.status().message());
    return latest;
  }
  config->attempt = attempt;
  config->log_path = fmt::format("{}/{}/{}.log", PodDir(s), name, attempt);
  // The previous attempt stays (for --previous); older ones go.
  if (latest && latest->attempt < attempt) {
    for (const auto& st : ContainersOf(s.sandbox_id)) {
      if (st.name == name && st.attempt < attempt - 1) (void)runtime_->RemoveContainer(st.id);
    }
  }
  auto id = runtime_->CreateContainer(s.sandbox, *config);
  if (!id.ok()) {
    SetWaiting(pod, s, name, "CreateContainerError", id.status().message());
    return latest;
  }
  CrashPoint("container-created");
  Status started = runtime_->StartContainer(*id);
  if (!started.ok()) {
    // The process could not be started (a missing executable…): report it, retry later.
    (void)runtime_->RemoveContainer(*id);
    SetWaiting(pod, s, name, "RunContainerError", started.message());
    s.restart_at[name] = now + options_.backoff_base;
    return latest;
  }
  CrashPoint("container-started");
  s.waiting.erase(name);
  events_.Record(pod, "Normal", "Created", fmt::format("Created container {}", name));
  events_.Record(pod, "Normal", "Started", fmt::format("Started container {}", name));
  // postStart: run once the process is started; the container is not running
  // for the pod until it returns, and a failure kills it (restarted by policy).
  if (const auto* hook = api::Find(c, {"lifecycle", "postStart"}); hook && hook->is_object()) {
    ProbeResult r = RunHook(*hook, c, runtime_, *id, s.ip, std::chrono::seconds(30));
    if (!r.success) {
      events_.Record(pod, "Warning", "FailedPostStartHook",
                     fmt::format("PostStartHook failed: {}", r.message));
      (void)runtime_->StopContainer(*id, std::chrono::seconds(0));
    }
  }
  s.image_ids[name] =
      fmt::format("{}@{}", image->name.substr(0, image->name.rfind(':')), image->manifest_digest);
  auto now_status = runtime_->GetStatus(*id);
  if (now_status.ok()) return *now_status;
  return latest;
}

}  // namespace kiso::agent
