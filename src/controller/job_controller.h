// JobController: runs a Job's pods to completion (kube-controller-manager's job
// controller): up to spec.parallelism pods at a time until spec.completions have
// succeeded (Complete), or more than spec.backoffLimit have failed (Failed,
// BackoffLimitExceeded, remaining pods deleted). Status counts active, ready,
// succeeded and failed pods, with startTime and completionTime. Like the
// ReplicaSet controller it waits to see the pods it created before it counts
// again, so a lagging cache never makes it create a replacement twice.
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class JobController : public Controller {
 public:
  explicit JobController(client::Client* client, client::SharedInformers* shared = nullptr);
  ~JobController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  client::Informer* jobs_ = nullptr;
  client::Informer* pods_ = nullptr;
  Expectations expectations_;  // Job key → its pod creates not yet seen.
};

}  // namespace kiso::controller
