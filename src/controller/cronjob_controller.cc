#include "controller/cronjob_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "api/object.h"
#include "common/cron.h"
#include "controller/job_controller.h"

namespace kiso::controller {

namespace json = boost::json;
using Time = CronSchedule::Time;

namespace {

const api::ResourceType& CronJobs() { return *api::FindResource("batch", "v1", "cronjobs"); }
const api::ResourceType& Jobs() { return *api::FindResource("batch", "v1", "jobs"); }

constexpr std::string_view kScheduledAnnotation = "batch.kubernetes.io/cronjob-scheduled-timestamp";
constexpr int kManyMissed = 100;

std::string Rfc3339(Time t) { return FormatRfc3339(t); }

// "Complete" or "Failed" once the Job has finished, else "".
std::string_view FinishedAs(const json::value& job) {
  const auto* c = FinishedCondition(job);
  return c ? api::GetString(*c, {"type"}) : "";
}

// The latest scheduled time in (earliest, now], if any; `missed` counts the
// ones in between (counting stops past kManyMissed).
std::optional<Time> MostRecent(const CronSchedule& s, std::string_view tz, Time earliest, Time now,
                               int& missed) {
  missed = 0;
  auto t = s.Next(earliest, tz);
  if (!t || *t > now) return std::nullopt;
  missed = 1;
  for (;;) {
    auto n = s.Next(*t, tz);
    if (!n || *n > now) return t;
    t = n;
    if (++missed > kManyMissed) break;
  }
  // Many missed: look back from now in doubling windows for the last one.
  for (auto back = std::chrono::minutes(1); now - back > *t; back *= 2) {
    auto first = s.Next(now - back, tz);
    if (!first || *first > now) continue;
    for (;;) {
      auto n = s.Next(*first, tz);
      if (!n || *n > now) return first;
      first = n;
    }
  }
  for (;;) {  // The window reached the last one found: walk from there.
    auto n = s.Next(*t, tz);
    if (!n || *n > now) return t;
    t = n;
  }
}

json::object Reference(const json::value& job) {
  return json::object{{"apiVersion", "batch/v1"},
                      {"kind", "Job"},
                      {"namespace", api::GetString(job, {"metadata", "namespace"})},
                      {"name", api::GetString(job, {"metadata", "name"})},
                      {"uid", api::GetString(job, {"metadata", "uid"})},
                      {"resourceVersion", api::GetString(job, {"metadata", "resourceVersion"})}};
}

}  // namespace

CronJobController::CronJobController(client::Client* client, Clock* clock,
                                     client::SharedInformers* shared)
    : Controller(client, "cronjob-controller", 2, shared), clock_(clock) {
  cronjobs_ = Watch(CronJobs(), [this](const json::value*, const json::value& cj, bool deleted) {
    if (!deleted) Enqueue(KeyOf(cj));
  });
  jobs_ = Watch(Jobs(), [this](const json::value*, const json::value& job, bool) {
    for (const auto& key : OwnerKeys(job, "CronJob")) Enqueue(key);
  });
}

bool CronJobController::Sees(const std::string& key, std::string_view resource_version) const {
  const auto [ns, name] = SplitKey(key);
  auto cached = cronjobs_->Get(ns, name);
  if (!cached) return false;
  auto have = ParseWholeNumber(api::GetString(*cached, {"metadata", "resourceVersion"}));
  auto want = ParseWholeNumber(resource_version);
  return have && want && *have >= *want;
}

Status CronJobController::Reconcile(const std::string& key) {
  const auto [ns_part, name_part] = SplitKey(key);
  const std::string& ns = ns_part;
  const std::string& name = name_part;
  auto found = cronjobs_->Get(ns, name);
  if (!found || !api::GetString(*found, {"metadata", "deletionTimestamp"}).empty())
    return Status::Ok();
  const json::value& cj = *found;
  const std::string uid(api::GetString(cj, {"metadata", "uid"}));
  const std::string tz(api::GetString(cj, {"spec", "timeZone"}));
  const Time now = clock_->WallNow();

  // The Jobs it owns: running, and finished ones by outcome, oldest first.
  std::vector<json::value> active, succeeded, failed;
  // The latest time a Job was made for, whoever made it: the status follows
  // the Jobs (a pass whose status write was lost to a conflict, or another
  // instance's pass, leaves its Job to say so).
  std::optional<Time> latest_scheduled;
  for (auto& job : jobs_->List()) {
    if (api::GetString(job, {"metadata", "namespace"}) != ns ||
        ControllerUid(job, "CronJob") != uid)
      continue;
    if (auto t = ParseTime(api::GetString(job, {"metadata", "annotations", kScheduledAnnotation}));
        t && (!latest_scheduled || *t > *latest_scheduled))
      latest_scheduled = t;
    auto done = FinishedAs(job);
    if (done == "Complete") {
      succeeded.push_back(std::move(job));
    } else if (done == "Failed") {
      failed.push_back(std::move(job));
    } else if (api::GetString(job, {"metadata", "deletionTimestamp"}).empty()) {
      active.push_back(std::move(job));
    }
  }
  auto by_age = [](const json::value& a, const json::value& b) {
    auto at = [](const json::value& j) {
      auto start = api::GetString(j, {"status", "startTime"});
      return std::make_pair(
          std::string(start.empty() ? api::GetString(j, {"metadata", "creationTimestamp"}) : start),
          std::string(api::GetString(j, {"metadata", "name"})));
    };
    return at(a) < at(b);
  };
  std::sort(active.begin(), active.end(), by_age);
  std::sort(succeeded.begin(), succeeded.end(), by_age);
  std::sort(failed.begin(), failed.end(), by_age);

  std::optional<Time> last_success;
  for (const auto& job : succeeded) {
    auto t = ParseTime(api::GetString(job, {"status", "completionTime"}));
    if (t && (!last_success || *t > *last_success)) last_success = t;
  }
  // History: the oldest finished Jobs beyond the limits go (their pods with them).
  // Not a Job whose scheduled time the status does not record yet: once it is
  // gone, nothing else says that time has run, and a pass would run it again.
  // The status write below records it, and its event brings the pass that
  // deletes it (this cache only moves forward, so every later pass sees it).
  Status result = Status::Ok();
  const auto recorded = ParseTime(api::GetString(cj, {"status", "lastScheduleTime"}));
  auto prune = [&](std::vector<json::value>& finished, int64_t limit) {
    limit = std::max<int64_t>(limit, 0);
    for (size_t i = 0; i + static_cast<size_t>(limit) < finished.size(); ++i) {
      auto scheduled =
          ParseTime(api::GetString(finished[i], {"metadata", "annotations", kScheduledAnnotation}));
      if (scheduled && (!recorded || *scheduled > *recorded)) continue;
      std::string job_name(api::GetString(finished[i], {"metadata", "name"}));
      Status s = client()->Delete(Jobs(), ns, job_name, {.propagation_policy = "Background"});
      if (s.ok()) {
        RecordEvent(cj, "Normal", "SuccessfulDelete", fmt::format("Deleted job {}", job_name));
      } else if (s.code() != Code::kNotFound && result.ok()) {
        result = s;
      }
    }
  };
  prune(succeeded, api::GetInt(cj, {"spec", "successfulJobsHistoryLimit"}, 3));
  prune(failed, api::GetInt(cj, {"spec", "failedJobsHistoryLimit"}, 1));

  auto schedule = CronSchedule::Parse(api::GetString(cj, {"spec", "schedule"}));
  std::optional<Time> scheduled_now;
  if (!schedule.ok()) {
    RecordEvent(cj, "Warning", "UnparseableSchedule",
                fmt::format("unparseable schedule: {}: {}",
                            api::GetString(cj, {"spec", "schedule"}), schedule.status().message()));
  } else if (!KnownTimeZone(tz)) {
    RecordEvent(cj, "Warning", "UnknownTimeZone", fmt::format("invalid timeZone: {}", tz));
  } else if (const auto* suspend = api::Find(cj, {"spec", "suspend"});
             !(suspend && suspend->is_bool() && suspend->get_bool())) {
    auto earliest = ParseTime(api::GetString(cj, {"status", "lastScheduleTime"}));
    if (latest_scheduled && (!earliest || *latest_scheduled > *earliest))
      earliest = latest_scheduled;
    if (!earliest) earliest = ParseTime(api::GetString(cj, {"metadata", "creationTimestamp"}));
    int missed = 0;
    auto t = earliest ? MostRecent(*schedule, tz, *earliest, now, missed) : std::nullopt;
    if (missed > kManyMissed) {
      RecordEvent(cj, "Warning", "TooManyMissedTimes",
                  "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or "
                  "check clock skew");
    }
    const auto* deadline = api::Find(cj, {"spec", "startingDeadlineSeconds"});
    const std::string policy(api::GetString(cj, {"spec", "concurrencyPolicy"}));
    const bool forbidden = policy == "Forbid" && !active.empty();
    if (!t || forbidden) {
      // Nothing due; or, forbidden while a Job runs, due when it ends (its
      // event requeues this), if still in time.
    } else if (deadline && deadline->is_int64() &&
               *t + std::chrono::seconds(deadline->get_int64()) < now) {
      RecordEvent(cj, "Warning", "MissSchedule",
                  fmt::format("Missed scheduled time to start a job: {}", FormatInZone(*t, tz)));
    } else {
      const std::string job_name = fmt::format(
          "{}-{}", name,
          std::chrono::duration_cast<std::chrono::minutes>(t->time_since_epoch()).count());
      if (policy == "Replace") {
        // Not this time's own Job (a pass that does not see its status write yet).
        std::vector<json::value> kept;
        for (auto& job : active) {
          std::string other(api::GetString(job, {"metadata", "name"}));
          if (other == job_name) {
            kept.push_back(std::move(job));
            continue;
          }
          Status s = client()->Delete(Jobs(), ns, other, {.propagation_policy = "Background"});
          if (!s.ok() && s.code() != Code::kNotFound) return s;
          RecordEvent(cj, "Normal", "SuccessfulDelete", fmt::format("Deleted job {}", other));
        }
        active = std::move(kept);
      }
      json::value job = json::object{{"apiVersion", "batch/v1"}, {"kind", "Job"}};
      auto& meta = api::Child(job.as_object(), "metadata");
      for (std::string_view f : {"labels", "annotations"}) {
        if (const auto* m = api::Find(cj, {"spec", "jobTemplate", "metadata", f});
            m && m->is_object())
          meta[f] = *m;
      }
      api::Child(meta, "annotations")[kScheduledAnnotation] = FormatInZone(*t, tz);
      meta["name"] = job_name;
      meta["namespace"] = ns;
      meta["ownerReferences"] = json::array{json::object{{"apiVersion", "batch/v1"},
                                                         {"kind", "CronJob"},
                                                         {"name", name},
                                                         {"uid", uid},
                                                         {"controller", true},
                                                         {"blockOwnerDeletion", true}}};
      if (const auto* spec = api::Find(cj, {"spec", "jobTemplate", "spec"}))
        job.as_object()["spec"] = *spec;
      auto created = client()->Create(Jobs(), ns, job);
      if (created.ok()) {
        RecordEvent(cj, "Normal", "SuccessfulCreate", fmt::format("Created job {}", job_name));
        active.push_back(std::move(*created));
        scheduled_now = t;
      } else if (created.status().code() == Code::kAlreadyExists) {
        // Created by an earlier pass whose status write this one does not see yet.
        auto existing = client()->Get(Jobs(), ns, job_name);
        if (existing.ok() && ControllerUid(*existing, "CronJob") == uid) {
          if (FinishedAs(*existing).empty() &&
              std::none_of(active.begin(), active.end(), [&](const json::value& j) {
                return api::GetString(j, {"metadata", "name"}) == job_name;
              }))
            active.push_back(std::move(*existing));
          scheduled_now = t;
        } else {
          RecordEvent(cj, "Warning", "FailedCreate",
                      fmt::format("Error creating job: a job named {} exists and is not this "
                                  "CronJob's",
                                  job_name));
        }
      } else {
        RecordEvent(cj, "Warning", "FailedCreate",
                    fmt::format("Error creating job: {}", created.status().message()));
        return created.status();
      }
    }
  }

  // Status, when it changed.
  json::value next = cj;
  auto& status = api::Child(next.as_object(), "status");
  json::array refs;
  for (const auto& job : active) refs.push_back(Reference(job));
  if (refs.empty()) {
    status.erase("active");
  } else {
    status["active"] = std::move(refs);
  }
  if (scheduled_now && (!latest_scheduled || *scheduled_now > *latest_scheduled))
    latest_scheduled = scheduled_now;
  if (latest_scheduled) {
    auto have = ParseTime(api::GetString(cj, {"status", "lastScheduleTime"}));
    if (!have || *latest_scheduled > *have) status["lastScheduleTime"] = Rfc3339(*latest_scheduled);
  }
  if (last_success) {
    auto have = ParseTime(api::GetString(cj, {"status", "lastSuccessfulTime"}));
    if (!have || *last_success > *have) status["lastSuccessfulTime"] = Rfc3339(*last_success);
  }
  if (!(next == cj)) {
    auto res = client()->Update(CronJobs(), ns, next, "status");
    if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
  }
  // Again at the next scheduled time.
  if (schedule.ok()) {
    if (auto n = schedule->Next(now, tz)) {
      EnqueueAfter(key, std::chrono::duration_cast<std::chrono::steady_clock::duration>(*n - now) +
                            std::chrono::milliseconds(100));
    }
  }
  return result;
}

}  // namespace kiso::controller
