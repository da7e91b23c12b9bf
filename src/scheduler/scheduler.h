// Scheduler: assigns pending pods to nodes (kube-scheduler's loop). Informers
// on pods and nodes keep a cache of each node's requested resources; one loop
// takes pods from the active queue, runs the framework, assumes the pod on the
// chosen node at once (so the next decision sees it), and binds through
// pods/binding on a pool of binders (threads made while there are binds to
// make, up to SchedulerOptions::binders) so commits batch. A pod that fits nowhere
// gets PodScheduled=False with upstream's message and a FailedScheduling event,
// and waits until the cluster changes (a node added or changed, a pod deleted),
// not on a timer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/event_recorder.h"
#include "client/informer.h"
#include "client/shared_informers.h"
#include "common/worker_pool.h"
#include "scheduler/framework.h"

namespace kiso::scheduler {

struct SchedulerOptions {
  std::string name = "default-scheduler";
  Profile profile;
  int binders = 64;
  // When set, the scheduler watches pods and nodes through these shared informers
  // (its handlers are removed on Stop); else it keeps informers of its own.
  client::SharedInformers* informers = nullptr;
};

class Scheduler {
 public:
  static Result<std::unique_ptr<Scheduler>> Create(client::Client* client,
                                                   const SchedulerOptions& options);
  ~Scheduler();
  void Start();
  void Stop();

  // For tests and benchmarks: pods bound by this scheduler so far.
  int64_t bound() const { return bound_.load(); }

 private:
  Scheduler(client::Client* client, SchedulerOptions options, std::unique_ptr<Framework> framework);
  void OnPod(const boost::json::value* old, const boost::json::value& obj, bool deleted);
  void OnNode(const boost::json::value* old, const boost::json::value& obj, bool deleted);
  void Loop();
  struct BindTask;
  // REQUIRES: mu_ held. Queues the task and starts a binder for it.
  void QueueBind(BindTask task);
  // Takes the oldest bind task and carries it out.
  void BindNext();
  void Bind(const PodInfo& pod, const std::string& node);
  // Fills pod.claims from the informers; the reason no node can take the pod
  // (a claim missing, being deleted, or unbound and binding Immediate), or "".
  std::string ResolveClaims(PodInfo& pod);
  // Asks for the pod's unbound claims to be bound on `node` (the
  // selected-node annotation) and waits until they are; false if they are not.
  bool BindVolumes(const PodInfo& pod, const std::string& node);
  void ReportUnschedulable(const PodInfo& pod, const std::string& message);
  // Evicts the victims (DisruptionTarget condition, Preempted event, deletion)
  // and sets the pod's status.nominatedNodeName.
  void Preempt(const PodInfo& pod, const Preemption& preemption);
  // Whether the pod's earlier preemption is still under way (victims terminating).
  bool PreemptionUnderWay(const std::string& key);
  // REQUIRES: mu_ held.
  void Account(std::shared_ptr<const PodInfo> pod, const std::string& node);
  // Stops counting the pod (on `only_node`, if given). True if it was counted.
  bool Unaccount(const std::string& key, const std::string& only_node = "");
  void RequeueUnschedulable();

  client::Client* client_;
  SchedulerOptions options_;
  std::unique_ptr<Framework> framework_;
  client::EventRecorder events_;
  std::vector<std::unique_ptr<client::Informer>> owned_informers_;
  std::vector<std::pair<client::Informer*, int>> handlers_;  // On shared informers.
  // Handlers for shared informers, added at Start().
  std::vector<std::pair<client::Informer*, client::Informer::Handler>> pending_handlers_;
  client::Informer* pods_informer_ = nullptr;
  client::Informer* nodes_informer_ = nullptr;
  client::Informer* claims_informer_ = nullptr;
  client::Informer* volumes_informer_ = nullptr;
  client::Informer* classes_informer_ = nullptr;
  client::Informer* budgets_informer_ = nullptr;  // PodDisruptionBudgets, for preemption.
  std::thread loop_;
  std::unique_ptr<WorkerPool> binders_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> bound_{0};

  std::mutex mu_;
  std::condition_variable cv_;  // Work for the loop.
  std::map<std::string, NodeInfo> nodes_;
  // nodes_ as a list, with what decisions derive from it: made anew when a
  // node comes or goes, its derived data dropped when a node's labels change.
  NodeSnapshot snapshot_;
  struct Placement {
    std::string node;
    std::shared_ptr<const PodInfo> pod;  // The one copy, shared with the node's NodeInfo.
  };
  std::map<std::string, Placement> placed_;  // Pod key → the node it is counted on.
  std::map<std::string, PodInfo> pending_;   // Unscheduled pods we are responsible for.
  std::deque<std::string> active_;
  std::set<std::string> queued_;
  std::set<std::string> unschedulable_;
  std::map<std::string, std::string> reported_;  // Pod key → message already reported.
  // Unschedulable pods with required pod affinity: tried again when a pod is placed.
  std::set<std::string> waiting_for_pods_;
  NamespaceLabels namespace_labels_;
  struct BindTask {
    std::shared_ptr<const PodInfo> pod;
    std::string node;
    std::string unschedulable_message;     // Set instead of node: report, don't bind.
    std::optional<Preemption> preemption;  // With a message: evict these, nominate the node.
  };
  // Pods that preempted: key → the node nominated (no second preemption while
  // its victims are terminating there).
  std::map<std::string, std::string> nominated_;
  // Decisions waiting for a binder: a lock of their own, so that binding goes
  // on while the loop holds mu_ deciding the next pods.
  std::mutex binds_mu_;
  std::deque<BindTask> binds_;  // Guarded by binds_mu_.
};

}  // namespace kiso::scheduler
