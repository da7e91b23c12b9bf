// DaemonSetController: one pod of a DaemonSet's template on every node that
// should run it (kube-controller-manager's daemon controller). A node should
// run it when it matches the template's nodeSelector and required node
// affinity and every NoSchedule and NoExecute taint is tolerated, with the
// tolerations upstream gives every daemon pod (not-ready and unreachable
// NoExecute; disk, memory and PID pressure and unschedulable NoSchedule;
// network-unavailable for host-network pods). A pod already there may stay
// while only NoSchedule taints are untolerated (upstream's
// shouldContinueRunning).
//
// Pods are made for a node, not placed on it: each gets a required node
// affinity `matchFields metadata.name In [node]` and the scheduler binds it
// (as upstream since 1.12), so resources and ports are checked as for any
// pod. Labels `controller-revision-hash` (the template's hash) and
// `pod-template-generation` tell template versions apart.
//
// Updates: RollingUpdate replaces pods of an older template node by node,
// never leaving more than maxUnavailable (number or percentage of the nodes
// that should run one, default 1) nodes without an available pod, or, with
// maxSurge, starting the new pod beside the old one on at most maxSurge
// nodes at a time and deleting the old one once the new one is available
// (ready for minReadySeconds);
// OnDelete only replaces pods the user deletes. Failed pods are deleted and made
// anew. Each template is kept as a ControllerRevision (revision_history.h), so
// `kubectl rollout history|undo ds/…` work. Status: desired, current, misscheduled, ready,
// available, updated and unavailable counts and observedGeneration (what `kubectl rollout status
// ds/…` reads).
#pragma once

#include <map>
#include <mutex>

#include "controller/controller.h"

namespace kiso::controller {

class DaemonSetController : public Controller {
 public:
  explicit DaemonSetController(client::Client* client, client::SharedInformers* shared = nullptr);
  ~DaemonSetController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  void OnPod(const boost::json::value* old, const boost::json::value& pod, bool deleted);
  void EnqueueAll();

  client::Informer* sets_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* nodes_ = nullptr;
  client::Informer* revisions_ = nullptr;
  Expectations expectations_;  // DS key → its creates/deletes not yet seen.
  std::mutex mu_;
  std::map<std::string, std::string> uid_to_key_;  // DS uid → key; guarded by mu_
};

}  // namespace kiso::controller
