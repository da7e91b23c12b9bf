// DisruptionController: the status of each PodDisruptionBudget (policy/v1),
// as kube-controller-manager's disruption controller keeps it, which the
// eviction subresource reads. expectedPods is the number of pods selected
// when minAvailable is a number, else the replicas of the pods' controllers
// (Deployment, ReplicaSet, StatefulSet, ReplicationController);
// desiredHealthy is minAvailable (a percentage of expected rounded up), or
// expected − maxUnavailable (rounded up); currentHealthy counts ready pods
// that are not being deleted nor in disruptedPods (evictions granted in the
// last two minutes whose pods have not gone yet); disruptionsAllowed is
// currentHealthy − desiredHealthy, never below 0, with the DisruptionAllowed
// condition (SufficientPods, InsufficientPods, or SyncFailed when a selected
// pod has no controller to count from).
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class DisruptionController : public Controller {
 public:
  explicit DisruptionController(client::Client* client, client::SharedInformers* shared = nullptr);
  ~DisruptionController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  // Requeues every budget in `ns`.
  void EnqueueNamespace(std::string_view ns);

  client::Informer* budgets_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* deployments_ = nullptr;
  client::Informer* replicasets_ = nullptr;
  client::Informer* statefulsets_ = nullptr;
  client::Informer* replication_controllers_ = nullptr;
};

}  // namespace kiso::controller
