// DeploymentController: rolls a Deployment's pod template out through
// ReplicaSets (kube-controller-manager's deployment controller). Each distinct
// template gets a ReplicaSet named <deployment>-<pod-template-hash> with a
// deployment.kubernetes.io/revision annotation; RollingUpdate scales the new
// one up within maxSurge and the old ones down within maxUnavailable,
// Recreate scales the old ones to zero first. Status carries replica counts,
// observedGeneration and the Available and Progressing conditions, so
// `kubectl rollout status|history|undo|restart|pause|resume` behave as upstream.
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class DeploymentController : public Controller {
 public:
  explicit DeploymentController(client::Client* client, client::SharedInformers* shared = nullptr);
  ~DeploymentController() override { Stop(); }

  // The pod-template-hash of a template (FNV-1a, encoded like upstream's SafeEncodeString).
  static std::string TemplateHash(const boost::json::value& pod_template);

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  client::Informer* deployments_ = nullptr;
  client::Informer* sets_ = nullptr;
};

}  // namespace kiso::controller
