#include "controller/job_controller.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Jobs() { return *api::FindResource("batch", "v1", "jobs"); }
const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }

int64_t Int(const json::value& v, std::initializer_list<std::string_view> path, int64_t fallback) {
  const auto* x = api::Find(v, path);
  return x && x->is_int64() ? x->get_int64() : fallback;
}

bool Finished(const json::value& job) {
  const auto* conditions = api::Find(job, {"status", "conditions"});
  if (!conditions || !conditions->is_array()) return false;
  for (const auto& c : conditions->get_array()) {
    auto type = api::GetString(c, {"type"});
    if ((type == "Complete" || type == "Failed") && api::GetString(c, {"status"}) == "True")
      return true;
  }
  return false;
}

json::object Condition(std::string_view type, std::string_view reason, std::string_view message,
                       const std::string& now) {
  return json::object{{"type", type},         {"status", "True"},
                      {"lastProbeTime", now}, {"lastTransitionTime", now},
                      {"reason", reason},     {"message", message}};
}

}  // namespace

JobController::JobController(client::Client* client, client::SharedInformers* shared)
    : Controller(client, "job-controller", 2, shared) {
  jobs_ = Watch(Jobs(), [this](const json::value*, const json::value& job, bool deleted) {
    if (deleted) {
      expectations_.Forget(KeyOf(job));
    } else {
      Enqueue(KeyOf(job));
    }
  });
  pods_ = Watch(Pods(), [this](const json::value* old, const json::value& pod, bool deleted) {
    for (const auto& key : OwnerKeys(pod, "Job")) {
      if (!old && !deleted) expectations_.Created(key);
      Enqueue(key);
    }
  });
}

Status JobController::Reconcile(const std::string& key) {
  const auto [ns_part, name_part] = SplitKey(key);
  const std::string& ns = ns_part;
  const std::string& name = name_part;
  auto found = jobs_->Get(ns, name);
  if (!found || Finished(*found) ||
      !api::GetString(*found, {"metadata", "deletionTimestamp"}).empty())
    return Status::Ok();
  // Wait to see our own creates; their events requeue us.
  if (!expectations_.Satisfied(key)) return Status::Ok();
  const json::value& job = *found;
  std::string uid(api::GetString(job, {"metadata", "uid"}));
  int64_t completions = Int(job, {"spec", "completions"}, 1);
  int64_t parallelism = Int(job, {"spec", "parallelism"}, 1);
  int64_t backoff_limit = Int(job, {"spec", "backoffLimit"}, 6);
  std::vector<json::value> active;
  int64_t succeeded = 0, failed = 0, ready = 0;
  for (auto& pod : pods_->List()) {
    if (api::GetString(pod, {"metadata", "namespace"}) != ns || ControllerUid(pod, "Job") != uid)
      continue;
    auto phase = api::GetString(pod, {"status", "phase"});
    if (phase == "Succeeded") {
      ++succeeded;
    } else if (phase == "Failed") {
      ++failed;
    } else if (api::GetString(pod, {"metadata", "deletionTimestamp"}).empty()) {
      if (IsReadyPod(pod)) ++ready;
      active.push_back(std::move(pod));
    }
  }
  std::string now = api::NowRfc3339();
  json::value next = job;
  auto& status = api::Child(next.as_object(), "status");
  if (!status.contains("startTime")) status["startTime"] = now;
  Status result = Status::Ok();
  json::array conditions;
  if (failed > backoff_limit) {
    for (const auto& pod : active) {
      (void)client()->Delete(Pods(), ns, std::string(api::GetString(pod, {"metadata", "name"})));
    }
    active.clear();
    conditions.push_back(Condition("FailureTarget", "BackoffLimitExceeded",
                                   "Job has reached the specified backoff limit", now));
    conditions.push_back(Condition("Failed", "BackoffLimitExceeded",
                                   "Job has reached the specified backoff limit", now));
  } else if (succeeded >= completions) {
    conditions.push_back(Condition("SuccessCriteriaMet", "CompletionsReached",
                                   "Reached expected number of succeeded pods", now));
    conditions.push_back(Condition("Complete", "CompletionsReached",
                                   "Reached expected number of succeeded pods", now));
    status["completionTime"] = now;
  } else {
    int64_t want = std::min(parallelism, completions - succeeded);
    int64_t missing = want - static_cast<int64_t>(active.size());
    if (missing > 0) {
      json::value pod = json::object{{"apiVersion", "v1"}, {"kind", "Pod"}};
      auto& meta = api::Child(pod.as_object(), "metadata");
      meta = PodMetadataFromTemplate(job);
      meta["generateName"] = name + "-";
      meta["namespace"] = ns;
      meta["ownerReferences"] = json::array{json::object{{"apiVersion", "batch/v1"},
                                                         {"kind", "Job"},
                                                         {"name", name},
                                                         {"uid", uid},
                                                         {"controller", true},
                                                         {"blockOwnerDeletion", true}}};
      if (const auto* spec = api::Find(job, {"spec", "template", "spec"}))
        pod.as_object()["spec"] = *spec;
      expectations_.Expect(key, static_cast<int>(missing), 0);
      for (int64_t i = 0; i < missing; ++i) {
        auto created = client()->Create(Pods(), ns, pod);
        if (!created.ok()) {
          for (int64_t j = i; j < missing; ++j) expectations_.Created(key);  // Never to be seen.
          result = created.status();
          break;
        }
        active.push_back(std::move(*created));  // Active from now on, not yet ready.
      }
    }
  }
  status["active"] = static_cast<int64_t>(active.size());
  status["succeeded"] = succeeded;
  status["failed"] = failed;
  status["ready"] = ready;
  status["terminating"] = 0;
  status["uncountedTerminatedPods"] = json::object();
  if (!conditions.empty()) status["conditions"] = std::move(conditions);
  if (next == job) return result;
  auto res = client()->Update(Jobs(), ns, next, "status");
  if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
  return result;
}

}  // namespace kiso::controller
