// CronJobController: creates a CronJob's Jobs on its schedule
// (kube-controller-manager's cronjob controller, v2): at each scheduled time
// (spec.schedule read in spec.timeZone; common/cron.h) a Job named
// <cronjob>-<scheduled time in minutes since the epoch> from
// spec.jobTemplate, owned by the CronJob. A time missed by more than
// startingDeadlineSeconds is skipped (an event says so); concurrencyPolicy
// Allow runs Jobs side by side, Forbid skips a run while one is active (it
// runs when that one ends, if still within its deadline), Replace deletes the
// active ones first; suspend stops new runs. Finished Jobs beyond
// successfulJobsHistoryLimit and failedJobsHistoryLimit are deleted, oldest
// first. Status: active (references to the running Jobs), lastScheduleTime,
// lastSuccessfulTime. The key is requeued for the next scheduled time; time
// comes from a Clock, so tests move a fake one.
#pragma once

#include "common/clock.h"
#include "controller/controller.h"

namespace kiso::controller {

class CronJobController : public Controller {
 public:
  CronJobController(client::Client* client, Clock* clock,
                    client::SharedInformers* shared = nullptr);
  ~CronJobController() override { Stop(); }

  // Whether its cache holds the CronJob `key` at `resource_version` or later
  // (what a test waits for before it moves the clock).
  bool Sees(const std::string& key, std::string_view resource_version) const;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  Clock* clock_;
  client::Informer* cronjobs_ = nullptr;
  client::Informer* jobs_ = nullptr;
};

}  // namespace kiso::controller
