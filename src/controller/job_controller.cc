#include "controller/job_controller.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <map>
#include <set>

#include "api/object.h"
#include "common/clock.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Jobs() { return *api::FindResource("batch", "v1", "jobs"); }
const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }

bool Finished(const json::value& job) { return FinishedCondition(job) != nullptr; }

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

namespace {

constexpr std::string_view kIndexKey = "batch.kubernetes.io/job-completion-index";

std::optional<int64_t> IndexOf(const json::value& pod) {
  return ParseWholeNumber(api::GetString(pod, {"metadata", "annotations", kIndexKey}));
}

// "0-2,4,6-7".
std::string Intervals(const std::set<int64_t>& indexes) {
  std::string out;
  for (auto it = indexes.begin(); it != indexes.end();) {
    int64_t first = *it, last = *it;
    while (++it != indexes.end() && *it == last + 1) last = *it;
    out += fmt::format("{}{}", out.empty() ? "" : ",",
                       first == last ? std::to_string(first) : fmt::format("{}-{}", first, last));
  }
  return out;
}

enum class Action { kCount, kIgnore, kFailJob, kFailIndex };

// The podFailurePolicy rule a failed pod matches, and what to say about it.
std::pair<Action, std::string> PolicyFor(const json::value& job, const json::value& pod) {
  const auto* rules = api::Find(job, {"spec", "podFailurePolicy", "rules"});
  if (!rules || !rules->is_array()) return {Action::kCount, ""};
  const std::string who = fmt::format("{}/{}", api::GetString(pod, {"metadata", "namespace"}),
                                      api::GetString(pod, {"metadata", "name"}));
  size_t i = 0;
  for (const auto& rule : rules->get_array()) {
    const size_t at = i++;
    std::string_view a = api::GetString(rule, {"action"});
    Action action = a == "FailJob"     ? Action::kFailJob
                    : a == "FailIndex" ? Action::kFailIndex
                    : a == "Ignore"    ? Action::kIgnore
                                       : Action::kCount;
    std::string matched;
    if (const auto* codes = api::Find(rule, {"onExitCodes"}); codes && codes->is_object()) {
      std::string_view only = api::GetString(*codes, {"containerName"});
      const bool in = api::GetString(*codes, {"operator"}) != "NotIn";
      std::set<int64_t> values;
      if (const auto* v = api::Find(*codes, {"values"}); v && v->is_array()) {
        for (const auto& x : v->get_array())
          if (x.is_int64()) values.insert(x.get_int64());
      }
      for (std::string_view list : {"initContainerStatuses", "containerStatuses"}) {
        const auto* statuses = api::Find(pod, {"status", list});
        if (!statuses || !statuses->is_array() || !matched.empty()) continue;
        for (const auto& cs : statuses->get_array()) {
          const auto* code = api::Find(cs, {"state", "terminated", "exitCode"});
          if (!code || !code->is_int64() || code->get_int64() == 0) continue;
          if (!only.empty() && api::GetString(cs, {"name"}) != only) continue;
          if (values.count(code->get_int64()) == (in ? 1U : 0U)) {
            matched = fmt::format("Container {} for pod {} failed with exit code {}",
                                  api::GetString(cs, {"name"}), who, code->get_int64());
            break;
          }
        }
      }
    } else if (const auto* conds = api::Find(rule, {"onPodConditions"});
               conds && conds->is_array()) {
      const auto* have = api::Find(pod, {"status", "conditions"});
      for (const auto& want : conds->get_array()) {
        std::string_view status = api::GetString(want, {"status"});
        if (status.empty()) status = "True";
        if (!have || !have->is_array() || !matched.empty()) continue;
        for (const auto& c : have->get_array()) {
          if (api::GetString(c, {"type"}) == api::GetString(want, {"type"}) &&
              api::GetString(c, {"status"}) == status)
            matched = fmt::format("Pod {} has condition {}", who, api::GetString(c, {"type"}));
        }
      }
    }
    if (!matched.empty())
      return {action, fmt::format("{} matching {} rule at index {}", matched, a, at)};
  }
  return {Action::kCount, ""};
}

// "0-2,5" as indexes; nullopt when it does not parse.
std::optional<std::set<int64_t>> ParseIntervals(std::string_view text) {
  std::set<int64_t> out;
  size_t at = 0;
  while (at <= text.size()) {
    size_t comma = text.find(',', at);
    std::string_view part =
        text.substr(at, comma == std::string_view::npos ? text.npos : comma - at);
    size_t dash = part.find('-');
    auto first = ParseWholeNumber(part.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : ParseWholeNumber(part.substr(dash + 1));
    if (!first || !last || *first < 0 || *last < *first || *last - *first > 100000)
      return std::nullopt;
    for (int64_t i = *first; i <= *last; ++i) out.insert(i);
    if (comma == std::string_view::npos) break;
    at = comma + 1;
  }
  return out;
}

// The first successPolicy rule the succeeded indexes meet: every index of
// succeededIndexes, at least succeededCount (of them, when both are given).
std::optional<size_t> SuccessRuleMet(const json::value& job, const std::set<int64_t>& done) {
  const auto* rules = api::Find(job, {"spec", "successPolicy", "rules"});
  if (!rules || !rules->is_array()) return std::nullopt;
  for (size_t i = 0; i < rules->get_array().size(); ++i) {
    const auto& rule = rules->get_array()[i];
    const auto* listed = api::Find(rule, {"succeededIndexes"});
    const auto* count = api::Find(rule, {"succeededCount"});
    std::optional<std::set<int64_t>> wanted;
    if (listed && listed->is_string()) {
      wanted = ParseIntervals(listed->get_string());
      if (!wanted) continue;
    }
    int64_t have = 0;
    for (int64_t d : done) have += !wanted || wanted->count(d) ? 1 : 0;
    const int64_t need = count && count->is_int64()
                             ? count->get_int64()
                             : (wanted ? static_cast<int64_t>(wanted->size()) : -1);
    if (need >= 0 && have >= need) return i;
  }
  return std::nullopt;
}

// When the Job finished: its Complete or Failed condition's transition.
std::optional<std::chrono::system_clock::time_point> FinishedAt(const json::value& job) {
  const auto* c = FinishedCondition(job);
  return c ? ParseTime(api::GetString(*c, {"lastTransitionTime"})) : std::nullopt;
}

}  // namespace

const json::value* FinishedCondition(const json::value& job) {
  const auto* conditions = api::Find(job, {"status", "conditions"});
  if (!conditions || !conditions->is_array()) return nullptr;
  for (const auto& c : conditions->get_array()) {
    auto type = api::GetString(c, {"type"});
    if ((type == "Complete" || type == "Failed") && api::GetString(c, {"status"}) == "True")
      return &c;
  }
  return nullptr;
}

Status JobController::Reconcile(const std::string& key) {
  const auto [ns_part, name_part] = SplitKey(key);
  const std::string& ns = ns_part;
  const std::string& name = name_part;
  auto found = jobs_->Get(ns, name);
  if (!found || !api::GetString(*found, {"metadata", "deletionTimestamp"}).empty())
    return Status::Ok();
  const json::value& job = *found;
  const auto now_tp = std::chrono::system_clock::now();
  if (Finished(job)) {
    // ttlSecondsAfterFinished: the Job (and, in the background, its pods) goes.
    const auto* ttl = api::Find(job, {"spec", "ttlSecondsAfterFinished"});
    auto at = FinishedAt(job);
    if (!ttl || !ttl->is_int64() || !at) return Status::Ok();
    const auto due = *at + std::chrono::seconds(ttl->get_int64());
    if (now_tp < due) {
      EnqueueAfter(key,
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(due - now_tp) +
                       std::chrono::milliseconds(100));
      return Status::Ok();
    }
    Status s = client()->Delete(
        Jobs(), ns, name,
        {.propagation_policy = "Background",
         .precondition_uid = std::string(api::GetString(job, {"metadata", "uid"}))});
    return s.ok() || s.code() == Code::kNotFound || s.code() == Code::kConflict ? Status::Ok() : s;
  }
  // Wait to see our own creates; their events requeue us.
  if (!expectations_.Satisfied(key)) return Status::Ok();
  std::string uid(api::GetString(job, {"metadata", "uid"}));
  const int64_t completions = api::GetInt(job, {"spec", "completions"}, 1);
  const int64_t parallelism = api::GetInt(job, {"spec", "parallelism"}, 1);
  const int64_t backoff_limit = api::GetInt(job, {"spec", "backoffLimit"}, 6);
  const bool indexed = api::GetString(job, {"spec", "completionMode"}) == "Indexed";
  const auto* per_index_v = api::Find(job, {"spec", "backoffLimitPerIndex"});
  const std::optional<int64_t> per_index = indexed && per_index_v && per_index_v->is_int64()
                                               ? std::optional(per_index_v->get_int64())
                                               : std::nullopt;
  const auto* suspend_v = api::Find(job, {"spec", "suspend"});
  const bool suspend = suspend_v && suspend_v->is_bool() && suspend_v->get_bool();

  std::vector<json::value> active;
  int64_t succeeded = 0, failed = 0, counted = 0, ready = 0;
  std::set<int64_t> done_indexes, failed_indexes, active_indexes;
  std::map<int64_t, int64_t> index_failures;
  std::string fail_job;                        // A FailJob rule's message.
  for (const auto& shared : pods_->Items()) {  // Shared: only the Job's active pods are copied.
    const json::value& pod = *shared;
    if (api::GetString(pod, {"metadata", "namespace"}) != ns || ControllerUid(pod, "Job") != uid)
      continue;
    auto phase = api::GetString(pod, {"status", "phase"});
    auto index = IndexOf(pod);
    if (indexed && (!index || *index < 0 || *index >= completions)) continue;  // Not one of ours.
    if (phase == "Succeeded") {
      ++succeeded;
      if (index) done_indexes.insert(*index);
    } else if (phase == "Failed") {
      auto [action, message] = PolicyFor(job, pod);
      if (action == Action::kIgnore) continue;
      ++failed;
      if (action == Action::kFailJob && fail_job.empty()) fail_job = message;
      if (action == Action::kFailIndex && index) failed_indexes.insert(*index);
      ++counted;
      if (index) ++index_failures[*index];
    } else if (api::GetString(pod, {"metadata", "deletionTimestamp"}).empty()) {
      if (IsReadyPod(pod)) ++ready;
      if (index) active_indexes.insert(*index);
      active.push_back(pod);
    }
  }
  if (per_index) {
    for (const auto& [index, n] : index_failures) {
      if (n > *per_index) failed_indexes.insert(index);
    }
  }
  for (int64_t i : done_indexes) failed_indexes.erase(i);  // A success ends the index.
  if (indexed) succeeded = static_cast<int64_t>(done_indexes.size());

  std::string now = api::NowRfc3339();
  json::value next = job;
  auto& status = api::Child(next.as_object(), "status");
  json::array conditions;
  if (const auto* c = status.if_contains("conditions"); c && c->is_array())
    conditions = c->get_array();
  auto set_condition = [&](std::string_view type, std::string_view value, std::string_view reason,
                           std::string_view message) {
    for (auto& c : conditions) {
      if (api::GetString(c, {"type"}) != type) continue;
      if (api::GetString(c, {"status"}) != value) {
        c = Condition(type, reason, message, now);
        c.as_object()["status"] = value;
      }
      return;
    }
    json::object c = Condition(type, reason, message, now);
    c["status"] = value;
    conditions.push_back(std::move(c));
  };
  auto delete_active = [&] {
    for (const auto& pod : active) {
      (void)client()->Delete(Pods(), ns, std::string(api::GetString(pod, {"metadata", "name"})));
    }
    active.clear();
  };
  auto fail = [&](std::string_view reason, std::string_view message) {
    delete_active();
    set_condition("FailureTarget", "True", reason, message);
    set_condition("Failed", "True", reason, message);
  };

  const auto* deadline = api::Find(job, {"spec", "activeDeadlineSeconds"});
  auto started = ParseTime(api::GetString(job, {"status", "startTime"}));
  const bool every_index_ended =
      indexed && static_cast<int64_t>(done_indexes.size() + failed_indexes.size()) >= completions;
  const auto* max_failed = api::Find(job, {"spec", "maxFailedIndexes"});
  const std::optional<size_t> success_rule =
      indexed ? SuccessRuleMet(job, done_indexes) : std::nullopt;
  Status result = Status::Ok();
  if (!fail_job.empty()) {
    fail("PodFailurePolicy", fail_job);
  } else if (per_index && max_failed && max_failed->is_int64() &&
             static_cast<int64_t>(failed_indexes.size()) > max_failed->get_int64()) {
    fail("MaxFailedIndexesExceeded",
         "Job has exceeded the specified maximal number of failed indexes");
  } else if (!per_index && counted > backoff_limit) {
    fail("BackoffLimitExceeded", "Job has reached the specified backoff limit");
  } else if (!suspend && deadline && deadline->is_int64() && started &&
             now_tp >= *started + std::chrono::seconds(deadline->get_int64())) {
    fail("DeadlineExceeded", "Job was active longer than specified deadline");
  } else if (every_index_ended && !failed_indexes.empty()) {
    fail("FailedIndexes", "Job has failed indexes");
  } else if (success_rule) {
    // The successPolicy decides: done, whatever is still running.
    const std::string why = fmt::format("Matched rules at index {}", *success_rule);
    delete_active();
    set_condition("SuccessCriteriaMet", "True", "SuccessPolicy", why);
    set_condition("Complete", "True", "SuccessPolicy", why);
    status["completionTime"] = now;
  } else if (succeeded >= completions) {
    set_condition("SuccessCriteriaMet", "True", "CompletionsReached",
                  "Reached expected number of succeeded pods");
    set_condition("Complete", "True", "CompletionsReached",
                  "Reached expected number of succeeded pods");
    status["completionTime"] = now;
  } else if (suspend) {
    delete_active();
    set_condition("Suspended", "True", "JobSuspended", "Job suspended");
    status.erase("startTime");
  } else {
    if (!status.contains("startTime")) {
      status["startTime"] = now;
      started = now_tp;
    }
    for (const auto& c : conditions) {
      if (api::GetString(c, {"type"}) == "Suspended" && api::GetString(c, {"status"}) == "True") {
        set_condition("Suspended", "False", "JobResumed", "Job resumed");
        break;
      }
    }
    // What to start: NonIndexed, pods up to parallelism; Indexed, the lowest
    // indexes without a success, a failure that ended them, or a pod.
    std::vector<std::optional<int64_t>> starts;
    const int64_t room = std::max<int64_t>(parallelism - static_cast<int64_t>(active.size()), 0);
    if (indexed) {
      for (int64_t i = 0; i < completions && static_cast<int64_t>(starts.size()) < room; ++i) {
        if (!done_indexes.count(i) && !failed_indexes.count(i) && !active_indexes.count(i))
          starts.emplace_back(i);
      }
    } else {
      const int64_t want =
          std::min(room, completions - succeeded - static_cast<int64_t>(active.size()));
      for (int64_t i = 0; i < want; ++i) starts.emplace_back(std::nullopt);
    }
    if (!starts.empty()) {
      expectations_.Expect(key, static_cast<int>(starts.size()), 0);
      for (size_t i = 0; i < starts.size(); ++i) {
        json::value pod = json::object{{"apiVersion", "v1"}, {"kind", "Pod"}};
        const auto* tmpl_spec = api::Find(job, {"spec", "template", "spec"});
        pod.as_object()["spec"] = tmpl_spec && tmpl_spec->is_object() ? *tmpl_spec : json::object();
        pod.as_object()["metadata"] = PodMetadataFromTemplate(job);
        // References into the pod from here on: no more members are added to it.
        auto& meta = pod.as_object()["metadata"].as_object();
        meta["namespace"] = ns;
        meta["ownerReferences"] = json::array{json::object{{"apiVersion", "batch/v1"},
                                                           {"kind", "Job"},
                                                           {"name", name},
                                                           {"uid", uid},
                                                           {"controller", true},
                                                           {"blockOwnerDeletion", true}}};
        if (const auto& index = starts[i]) {
          const std::string text = std::to_string(*index);
          meta["generateName"] = fmt::format("{}-{}-", name, text);
          api::Child(meta, "annotations")[kIndexKey] = text;
          api::Child(meta, "labels")[kIndexKey] = text;
          auto& spec = pod.as_object()["spec"].as_object();
          if (!spec.contains("hostname")) spec["hostname"] = fmt::format("{}-{}", name, text);
          for (std::string_view list : {"initContainers", "containers"}) {
            auto* cs = spec.if_contains(list);
            if (!cs || !cs->is_array()) continue;
            for (auto& c : cs->get_array()) {
              if (!c.is_object()) continue;
              auto& env = c.as_object()["env"];
              if (!env.is_array()) env = json::array();
              env.as_array().emplace_back(
                  json::object{{"name", "JOB_COMPLETION_INDEX"}, {"value", text}});
            }
          }
        } else {
          meta["generateName"] = name + "-";
        }
        auto created = client()->Create(Pods(), ns, pod);
        if (!created.ok()) {
          for (size_t j = i; j < starts.size(); ++j) expectations_.Created(key);  // Never seen.
          result = created.status();
          break;
        }
        active.push_back(std::move(*created));  // Active from now on, not yet ready.
      }
    }
    if (deadline && deadline->is_int64() && started) {
      const auto due = *started + std::chrono::seconds(deadline->get_int64());
      EnqueueAfter(key, std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::max(due - now_tp, std::chrono::system_clock::duration::zero())) +
                            std::chrono::milliseconds(100));
    }
  }
  status["active"] = static_cast<int64_t>(active.size());
  status["succeeded"] = succeeded;
  status["failed"] = failed;
  status["ready"] = ready;
  status["terminating"] = 0;
  status["uncountedTerminatedPods"] = json::object();
  if (indexed) {
    if (done_indexes.empty()) {
      status.erase("completedIndexes");
    } else {
      status["completedIndexes"] = Intervals(done_indexes);
    }
    if (per_index) status["failedIndexes"] = Intervals(failed_indexes);
  }
  if (!conditions.empty()) status["conditions"] = std::move(conditions);
  if (next == job) return result;
  auto res = client()->Update(Jobs(), ns, next, "status");
  if (!res.ok() && res.status().code() != Code::kNotFound) return res.status();
  // Finished now: the TTL, if any, counts from here.
  if (Finished(next) && api::Find(job, {"spec", "ttlSecondsAfterFinished"})) Enqueue(key);
  return result;
}

}  // namespace kiso::controller
