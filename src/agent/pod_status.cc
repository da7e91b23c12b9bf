// The pod status the agent reports: container statuses, conditions and the
// phase, computed as the kubelet's getPhase does.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "agent/agent.h"
#include "api/object.h"
#include "api/quota.h"

namespace kiso::agent {

namespace json = boost::json;
using runtime::ContainerState;
using runtime::ContainerStatus;

namespace {

const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }

json::object Terminated(const ContainerStatus& c) {
  return json::object{{"terminated", json::object{{"exitCode", c.exit_code},
                                                  {"reason", c.reason},
                                                  {"startedAt", c.started_at},
                                                  {"finishedAt", c.finished_at},
                                                  {"containerID", c.runtime + "://" + c.id}}}};
}

}  // namespace

void Agent::WriteStatus(const json::value& pod, PodState& s) {
  std::vector<ContainerStatus> all;
  if (!s.sandbox_id.empty()) all = ContainersOf(s.sandbox_id);
  std::string policy(api::GetString(pod, {"spec", "restartPolicy"}));
  if (policy.empty()) policy = "Always";
  bool initializing = false;  // Set while the app containers wait for the init containers.
  auto status_of = [&](const json::value& c, ContainerTally* tally) {
    std::string name(api::GetString(c, {"name"}));
    auto [latest, previous] = AttemptsOf(all, name);
    json::object out{{"name", name},
                     {"image", api::GetString(c, {"image"})},
                     {"imageID", s.image_ids.contains(name) ? s.image_ids[name] : ""},
                     {"ready", false},
                     {"started", false},
                     {"restartCount", latest ? latest->attempt : 0}};
    auto waiting = s.waiting.find(name);
    bool running = latest && latest->state == ContainerState::kRunning;
    if (latest) out["containerID"] = latest->runtime + "://" + latest->id;
    if (waiting != s.waiting.end() && !running) {
      out["state"] = json::object{{"waiting", json::object{{"reason", waiting->second.first},
                                                           {"message", waiting->second.second}}}};
      if (latest && latest->state == ContainerState::kExited) {
        out["lastState"] = Terminated(*latest);
        ++tally->stopped;
        (latest->exit_code == 0 ? tally->succeeded : tally->failed)++;
      } else {
        ++tally->waiting;
      }
      return out;
    }
    if (previous && previous->state == ContainerState::kExited) {
      out["lastState"] = Terminated(*previous);
    } else {
      out["lastState"] = json::object();
    }
    if (!latest || latest->state == ContainerState::kCreated ||
        latest->state == ContainerState::kUnknown) {
      // An app container waiting for the init containers says so, as the kubelet's does;
      // what holds up the whole pod before any container (its sandbox, its volumes, a
      // RuntimeClass handler this node lacks) is each container's reason, so `kubectl get`
      // shows it rather than ContainerCreating.
      json::object waiting{{"reason", initializing ? "PodInitializing" : "ContainerCreating"}};
      if (auto pod_wide = s.waiting.find("*"); !latest && pod_wide != s.waiting.end()) {
        waiting =
            json::object{{"reason", pod_wide->second.first}, {"message", pod_wide->second.second}};
      }
      out["state"] = json::object{{"waiting", std::move(waiting)}};
      ++tally->waiting;
    } else if (running) {
      out["state"] = json::object{{"running", json::object{{"startedAt", latest->started_at}}}};
      out["ready"] = s.ready[name];
      out["started"] = s.started.contains(name) ? s.started[name] : true;
      ++tally->running;
      if (s.ready[name]) ++tally->ready;
    } else {
      out["state"] = Terminated(*latest);
      ++tally->stopped;
      (latest->exit_code == 0 ? tally->succeeded : tally->failed)++;
    }
    return out;
  };

  json::array init_statuses;
  ContainerTally init;
  bool initialized = true;
  bool init_failed = false;
  bool sidecars_ready = true;
  for (const auto& c : api::GetArray(pod, {"spec", "initContainers"})) {
    ContainerTally t;
    init_statuses.push_back(status_of(c, &t));
    if (api::IsSidecar(c)) {
      // Initialized once started; its readiness is the pod's too.
      if (t.ready != 1) sidecars_ready = false;
      if (t.running != 1 && !s.initialized) initialized = false;
    } else {
      if ((t.succeeded != 1 || t.stopped != 1) && !s.initialized) initialized = false;
      if (t.failed > 0 && policy == "Never") init_failed = true;
    }
    if (!initialized) break;
  }
  json::array statuses;
  ContainerTally app;
  initializing = !initialized;
  for (const auto& c : api::GetArray(pod, {"spec", "containers"}))
    statuses.push_back(status_of(c, &app));

  app.total = static_cast<int>(statuses.size());
  std::string phase = PodPhase(app, initialized, init_failed, policy);
  if (!s.fail_reason.empty()) phase = "Failed";
  if (!AllowedPhaseTransition(s.phase, phase)) {
    spdlog::error("agent: pod {}/{}: refused phase transition {} → {} (a bug)", s.ns, s.name,
                  s.phase, phase);
    phase = s.phase;
  }
  bool ready = phase == "Running" && app.ready == app.total && sidecars_ready;
  std::string now = api::NowRfc3339();
  auto condition = [&](std::string_view type, bool status, std::string_view reason = "") {
    json::object c{{"type", type},
                   {"status", status ? "True" : "False"},
                   {"lastProbeTime", nullptr},
                   {"lastTransitionTime", now}};
    // Keep the transition time of an unchanged condition.
    for (const auto& old : api::GetArray(pod, {"status", "conditions"})) {
      if (api::GetString(old, {"type"}) == type &&
          api::GetString(old, {"status"}) == (status ? "True" : "False")) {
        c["lastTransitionTime"] = api::GetString(old, {"lastTransitionTime"});
      }
    }
    if (!reason.empty()) c["reason"] = reason;
    return c;
  };
  bool completed = phase == "Succeeded" || phase == "Failed";
  json::array conditions{
      condition("PodReadyToStartContainers", !s.sandbox_id.empty() && !completed),
      condition("Initialized", initialized, initialized ? "" : "ContainersNotInitialized"),
      condition("Ready", ready,
                ready       ? ""
                : completed ? "PodCompleted"
                            : "ContainersNotReady"),
      condition("ContainersReady", ready,
                ready       ? ""
                : completed ? "PodCompleted"
                            : "ContainersNotReady"),
      condition("PodScheduled", true)};
  if (s.fail_reason == "Evicted") {
    json::object c = condition("DisruptionTarget", true, "TerminationByKubelet");
    c["message"] = s.fail_message;
    conditions.push_back(std::move(c));
  }
  json::object status{{"phase", phase},
                      {"conditions", std::move(conditions)},
                      {"hostIP", options_.internal_ip},
                      {"hostIPs", json::array{json::object{{"ip", options_.internal_ip}}}},
                      {"startTime", s.start_time},
                      {"containerStatuses", std::move(statuses)}};
  if (!init_statuses.empty()) status["initContainerStatuses"] = std::move(init_statuses);
  if (!s.ip.empty()) {
    status["podIP"] = s.ip;
    status["podIPs"] = json::array{json::object{{"ip", s.ip}}};
  }
  if (!s.fail_reason.empty()) {
    status["reason"] = s.fail_reason;
    status["message"] = s.fail_message;
  } else if (auto it = s.waiting.find("*"); it != s.waiting.end()) {
    status["message"] = it->second.second;
    status["reason"] = it->second.first;
  }
  std::string text = json::serialize(status);
  if (text == s.last_status) return;
  auto res = client_->Patch(Pods(), s.ns, s.name, client::PatchType::kMerge,
                            json::object{{"status", std::move(status)}}, "status");
  if (!res.ok()) {
    if (res.status().code() != Code::kNotFound)
      spdlog::warn("agent: status of {}/{}: {}", s.ns, s.name, res.status().ToString());
    return;
  }
  s.last_status = std::move(text);
  s.phase = phase;
}

}  // namespace kiso::agent
