// Agent: the kubelet's role on a real node. It registers the Node (capacity
// read from the machine), heartbeats through its Lease, watches the pods bound
// to it and drives each through the pod lifecycle (seed 07.7.1) on a
// RuntimeService, ImageStore and CniNetwork: sandbox and pod IP, init
// containers in order, then the app containers, restarts with back-off per
// restartPolicy, status a person can act on, graceful termination. Its state
// is the runtime's, so a restarted agent adopts what is still running.
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "agent/container_spec.h"
#include "agent/node_loop.h"
#include "agent/node_registration.h"
#include "agent/pod_phase.h"
#include "apiserver/http/http.h"
#include "client/client.h"
#include "client/event_recorder.h"
#include "client/informer.h"
#include "client/work_queue.h"
#include "image/image_service.h"
#include "network/cni.h"
#include "runtime/runtime.h"

namespace kiso::agent {

struct AgentOptions {
  std::string node_name;  // Default: the host name.
  std::string data_dir;   // pods/ (logs, volumes) live here.
  std::string
      internal_ip;  // The Node's InternalIP (--node-ip); default: the host's primary address.
  // The node's pod range (--pod-cidr), written into the Node it registers.
  // Empty (the default): the Node's spec.podCIDR, which the server's node IPAM
  // controller gives it from --cluster-cidr; pods wait for it. A Node that has
  // one keeps it (the field is fixed once set).
  std::string pod_cidr;
  // The cluster DNS pods resolve with (empty: the node's resolvers) and its domain;
  // the node's own resolver configuration (what dnsPolicy Default gives).
  std::string cluster_dns = "10.43.0.10";
  std::string cluster_domain = "cluster.local";
  std::string resolv_conf = "/etc/resolv.conf";
  // The node's Lease (--node-lease-duration-seconds, the kubelet's
  // nodeLeaseDurationSeconds): its leaseDurationSeconds; renewed every quarter
  // of it (10 s by default), as the kubelet does.
  std::chrono::seconds lease_duration{kDefaultNodeLeaseDuration};
  std::chrono::milliseconds sync_period{200};  // How often a live pod's containers are looked at…
  std::chrono::milliseconds steady_sync_period{1000};  // …and a running one's that holds still.
  // How often a running pod's ConfigMap, Secret and projected volumes are
  // compared with their sources (and rewritten, atomically, when they
  // changed): the kubelet's --sync-frequency. A pod's own labels and
  // annotations reach its downward API files at once.
  std::chrono::milliseconds volume_sync{10'000};
  std::chrono::seconds backoff_base{10};  // CrashLoopBackOff: 10 s doubling to 300 s.
  std::chrono::seconds backoff_max{300};
  int workers = 8;  // Mostly waiting on runc and CNI plugins, not on the CPU.
  // The pods it takes (--max-pods, the kubelet's maxPods): the Node's pods
  // capacity, which the scheduler holds to.
  int max_pods = 110;
};

class Agent {
 public:
  Agent(client::Client* client, AgentOptions options, runtime::RuntimeService* runtime,
        image::ImageService* images, network::CniNetwork* network);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  Status Start();
  // Stops watching; containers keep running (a restarted agent adopts them).
  void Stop();
  const std::string& node_name() const { return options_.node_name; }

  // pods/log, exec, attach and portforward for a pod on this node (the API
  // server routes them here).
  apiserver::Response ServeStream(const boost::json::value& pod, std::string_view subresource,
                                  const apiserver::Request& req);
  // The same for a request the API server forwarded whole (down the agent's
  // tunnel): the pod is the one its path names, as this agent has it.
  apiserver::Response ServeStream(const apiserver::Request& req);
  // The kubelet's /stats/summary (the node's and each running pod's and
  // container's cpu and memory, from /proc and the containers' cgroups), as
  // the node proxy serves it (GET /api/v1/nodes/NAME/proxy/stats/summary).
  boost::json::value StatsSummary();
  apiserver::Response ServeNodeProxy(const apiserver::Request& req);
  apiserver::Response ServeLogs(const boost::json::value& pod, const apiserver::Request& req);
  apiserver::Response ServeExec(const boost::json::value& pod, const apiserver::Request& req);
  // Output from now on (as logged) and, for a container with stdin, input.
  apiserver::Response ServeAttach(const boost::json::value& pod, const apiserver::Request& req);
  // Connections to the pod's ports on its loopback (WebSocket v4 only).
  apiserver::Response ServePortForward(const boost::json::value& pod,
                                       const apiserver::Request& req);

 private:
  // What runs for one pod. The key's worker (or, while `terminating`, its
  // termination thread) is the only writer; the stream handlers read
  // sandbox_id, sandbox and ip under mu_, so those are written under mu_.
  struct PodState {
    std::string uid;
    std::string ns;
    std::string name;
    std::string sandbox_id;    // guarded by mu_ for writes
    runtime::Sandbox sandbox;  // guarded by mu_ for writes
    std::string ip;            // guarded by mu_ for writes
    std::string phase;
    // Per container: when it may restart (CrashLoopBackOff), and image pull failures.
    std::map<std::string, std::chrono::steady_clock::time_point> restart_at;
    std::map<std::string, int> pull_failures;
    std::map<std::string, std::chrono::steady_clock::time_point> pull_retry_at;
    std::map<std::string, std::chrono::steady_clock::time_point> pull_failed_at;
    std::map<std::string, std::pair<std::string, std::string>> waiting;  // reason, message.
    std::map<std::string, std::string> image_ids;  // Container → repo@manifest digest.
    std::string last_status;  // The status last written, to skip identical writes.
    // Probes, per container name; reset when the container is replaced.
    struct Probe {
      std::string container_id;
      std::chrono::steady_clock::time_point next;
      int successes = 0;
      int failures = 0;
    };
    std::map<std::string, Probe> liveness, readiness, startup;
    std::map<std::string, bool> ready;    // Readiness as the probes (or running) say.
    std::map<std::string, bool> started;  // Past its startup probe.
    std::string start_time;
    // Its volumes: made once (until then no container starts), then kept
    // current; what they were made from (the pod's labels and annotations)
    // and when.
    // Failed by the node itself (past activeDeadlineSeconds; evicted): the
    // status's reason and message; its containers are stopped, none restarts.
    std::string fail_reason, fail_message;
    // Its init containers have all run (sidecars started): it stays so.
    bool initialized = false;
    bool volumes_ready = false;
    std::string volumes_from;
    std::chrono::steady_clock::time_point volumes_at;
    // Graceful termination runs on a thread of its own (it may take the whole
    // grace period): while it does, the pod's key is left alone.
    bool terminating = false;
    bool stopped = false;  // …and when it is done, everything of the pod is gone.
  };

  void OnPod(const boost::json::value& pod, bool deleted);
  void Reconcile(const std::string& key);
  void SyncPod(const boost::json::value& pod, PodState& state);
  // Whether every app container has finished for good (restartPolicy Never,
  // or OnFailure and each succeeded): the pod's sidecars are then stopped.
  bool AppContainersDone(const boost::json::value& pod, const PodState& state);
  // Fails the pod on the node's own account: records the event, stops its
  // containers (within `grace`) and writes phase Failed with the reason.
  void FailPod(const boost::json::value& pod, PodState& state, std::string_view reason,
               std::string message, std::chrono::seconds grace);
  // Stops and removes everything of the pod; true when done.
  // With `pod`, runs the containers' preStop hooks first and records events.
  bool Teardown(PodState& state, std::chrono::seconds grace,
                const boost::json::value* pod = nullptr);
  // Ensures container `c` (init or app) is running or finished as the
  // restartPolicy wants. Returns its current runtime status, if any.
  // The container's image per its imagePullPolicy: local, or pulled.
  Result<image::Image> EnsureImage(const boost::json::value& pod, const boost::json::value& c,
                                   bool restart);
  std::optional<runtime::ContainerStatus> SyncContainer(const boost::json::value& pod,
                                                        PodState& state,
                                                        const boost::json::value& c, bool init);
  std::vector<runtime::ContainerStatus> ContainersOf(const std::string& sandbox_id);
  // Container → its sandbox, learnt once per container (it never changes):
  // so that a pod's sync reads the status of its own containers only, not of
  // every container on the node.
  std::mutex sandbox_of_mu_;
  std::map<std::string, std::string> sandbox_of_;
  // Runs the container's due probes: readiness sets `ready`; a failed liveness
  // or startup probe kills the container (restartPolicy then restarts it).
  void Probe(const boost::json::value& pod, PodState& state, const boost::json::value& c,
             const runtime::ContainerStatus& status);
  std::string PodDir(const PodState& state) const;
  PodContext ContextOf(const boost::json::value& pod, const PodState& state) const;
  void WriteStatus(const boost::json::value& pod, PodState& state);
  // The container a stream request names (?container=, or the only one), or
  // the error response to send.
  std::variant<runtime::ContainerStatus, apiserver::Response> FindContainer(
      const boost::json::value& pod, const apiserver::Request& req, bool previous);
  // The same, and it must be running to `verb` ("exec in", "attach to").
  std::variant<runtime::ContainerStatus, apiserver::Response> RunningContainer(
      const boost::json::value& pod, const apiserver::Request& req, std::string_view verb);
  // The network's pod range from this Node's spec.podCIDR, now or (a new Node
  // without one) as soon as the server gives it.
  Status ConfigurePodRange();
  void Adopt();
  // Sets container `name`'s waiting reason; records an event when it is new.
  // The RuntimeClass handler the pod runs with ("": the node's default), or
  // why it cannot run here (its class is gone, or names a handler this
  // node's runtime lacks).
  Result<std::string> PodRuntimeHandler(const boost::json::value& pod);
  void SetWaiting(const boost::json::value& pod, PodState& state, const std::string& name,
                  const std::string& reason, const std::string& message);

  client::Client* client_;
  AgentOptions options_;
  runtime::RuntimeService* runtime_;
  image::ImageService* images_;
  network::CniNetwork* network_;
  std::unique_ptr<client::Informer> pods_;
  // This Node, watched until it has a pod range (only when it registered without one).
  std::unique_ptr<client::Informer> node_;
  client::EventRecorder events_;
  NodeLoop loop_;
  // Stops `state`'s containers within `grace` on a thread of its own, then
  // requeues `key`. REQUIRES: mu_ held.
  void StartTermination(const std::string& key, PodState& state, std::chrono::seconds grace,
                        const boost::json::value& pod);

  // Sets the pod's sandbox and address (what the stream handlers read).
  void SetSandbox(PodState& state, const runtime::Sandbox& sandbox, const std::string& ip);

  std::mutex mu_;
  std::map<std::string, PodState> state_;  // "ns/name" → what runs for it; guarded by mu_
  // Termination threads, owned and joined (a finished one when the next
  // starts, all of them in Stop()); each sets its flag when done.
  struct Termination {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Termination> terminations_;  // guarded by mu_
  // The last cpu reading of each container (and of the node, ""), for rates.
  struct CpuSample {
    std::chrono::system_clock::time_point at;
    uint64_t ns = 0;
    uint64_t nano_cores = 0;  // The rate last computed (a reading sooner than 1 s gets it).
  };
  std::mutex stats_mu_;
  std::map<std::string, CpuSample> cpu_samples_;  // guarded by stats_mu_
};

// A container's latest attempt (its current instance) and the one before (for
// `--previous` and lastState), among a sandbox's containers; null when none.
struct Attempts {
  const runtime::ContainerStatus* latest = nullptr;
  const runtime::ContainerStatus* previous = nullptr;
};
Attempts AttemptsOf(const std::vector<runtime::ContainerStatus>& all, std::string_view name);

}  // namespace kiso::agent
