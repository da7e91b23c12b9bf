// JobController: runs a Job's pods to completion (kube-controller-manager's job
// controller): up to spec.parallelism pods at a time until spec.completions have
// succeeded (Complete), or more than spec.backoffLimit have failed (Failed,
// BackoffLimitExceeded, remaining pods deleted). Also:
// - completionMode Indexed: one pod per index 0…completions-1 at a time, each
//   with its index in the batch.kubernetes.io/job-completion-index annotation
//   and label, JOB_COMPLETION_INDEX in its environment and hostname
//   <job>-<index>; status.completedIndexes; backoffLimitPerIndex fails an
//   index after that many retries (status.failedIndexes; the Job fails with
//   FailedIndexes once every index has ended, or MaxFailedIndexesExceeded past
//   maxFailedIndexes); a successPolicy rule met (succeededIndexes,
//   succeededCount) completes it and stops the rest;
// - podFailurePolicy: the first rule matching a failed pod's exit codes or
//   conditions decides — FailJob, FailIndex, Ignore (not counted) or Count;
// - suspend: active pods deleted, Suspended condition, startTime reset on resume;
// - activeDeadlineSeconds: past it, Failed with DeadlineExceeded;
// - ttlSecondsAfterFinished: a finished Job is deleted (with its pods) that
//   long after it finished (the TTL-after-finished controller's role).
// Status counts active, ready, succeeded and failed pods, with startTime and
// completionTime. Like the ReplicaSet controller it waits to see the pods it
// created before it counts again, so a lagging cache never makes it create a
// replacement twice.
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

// The condition that ended a Job (Complete or Failed, status True), or null
// while it runs (the CronJob controller reads it too).
const boost::json::value* FinishedCondition(const boost::json::value& job);

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
