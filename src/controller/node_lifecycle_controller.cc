#include "controller/node_lifecycle_controller.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }
const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Leases() {
  return *api::FindResource("coordination.k8s.io", "v1", "leases");
}
constexpr std::string_view kUnreachable = "node.kubernetes.io/unreachable";

bool HasTaint(const json::value& node) {
  const auto* taints = api::Find(node, {"spec", "taints"});
  if (!taints || !taints->is_array()) return false;
  for (const auto& t : taints->get_array()) {
    if (api::GetString(t, {"key"}) == kUnreachable && api::GetString(t, {"effect"}) == "NoExecute")
      return true;
  }
  return false;
}

std::string_view ReadyStatus(const json::value& node) {
  const auto* conditions = api::Find(node, {"status", "conditions"});
  if (!conditions || !conditions->is_array()) return "";
  for (const auto& c : conditions->get_array()) {
    if (api::GetString(c, {"type"}) == "Ready") return api::GetString(c, {"status"});
  }
  return "";
}

}  // namespace

NodeLifecycleController::NodeLifecycleController(client::Client* client,
                                                 NodeLifecycleOptions options, Clock* clock,
                                                 client::SharedInformers* shared)
    : Controller(client, "node-lifecycle-controller", 2, shared), options_(options), clock_(clock) {
  nodes_ = Watch(Nodes(), [this](const json::value*, const json::value& node, bool deleted) {
    std::string name(api::GetString(node, {"metadata", "name"}));
    std::lock_guard lock(mu_);
    if (deleted) {
      last_heartbeat_.erase(name);
      tainted_since_.erase(name);
      return;
    }
    // The grace period starts when the node is first seen.
    last_heartbeat_.try_emplace(name, clock_->Now());
    if (HasTaint(node)) {
      tainted_since_.try_emplace(name, clock_->Now());
      Enqueue(name);
    } else {
      tainted_since_.erase(name);
    }
  });
  leases_ = Watch(Leases(), [this](const json::value*, const json::value& lease, bool deleted) {
    if (deleted || api::GetString(lease, {"metadata", "namespace"}) != "kube-node-lease") return;
    std::string name(api::GetString(lease, {"metadata", "name"}));
    std::string renew(api::GetString(lease, {"spec", "renewTime"}));
    std::lock_guard lock(mu_);
    if (last_renew_time_[name] != renew) {
      last_renew_time_[name] = renew;
      last_heartbeat_[name] = clock_->Now();
    }
  });
  pods_ = Watch(Pods(), [this](const json::value*, const json::value& pod, bool deleted) {
    if (deleted) return;
    std::string node(api::GetString(pod, {"spec", "nodeName"}));
    if (node.empty()) return;
    std::lock_guard lock(mu_);
    if (tainted_since_.contains(node)) Enqueue(node);
  });
  monitor_ = std::thread([this] { MonitorLoop(); });
}

NodeLifecycleController::~NodeLifecycleController() { Stop(); }

void NodeLifecycleController::OnStop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (monitor_.joinable()) monitor_.join();
}

std::string NodeLifecycleController::LastRenewTime(const std::string& node) {
  std::lock_guard lock(mu_);
  auto it = last_renew_time_.find(node);
  return it == last_renew_time_.end() ? "" : it->second;
}

void NodeLifecycleController::MonitorLoop() {
  std::unique_lock lock(mu_);
  while (!stop_cv_.wait_for(lock, options_.monitor_period, [&] { return stop_; })) {
    lock.unlock();
    if (nodes_->synced() && leases_->synced()) MonitorOnce();
    lock.lock();
  }
}

void NodeLifecycleController::MonitorOnce() {
  auto now = clock_->Now();
  for (const auto& shared : nodes_->Items()) {  // Every few seconds: shared, not copied.
    const json::value& node = *shared;
    std::string name(api::GetString(node, {"metadata", "name"}));
    bool silent;
    {
      std::lock_guard lock(mu_);
      auto it = last_heartbeat_.find(name);
      if (it == last_heartbeat_.end()) it = last_heartbeat_.emplace(name, now).first;
      silent = now - it->second > options_.grace_period;
    }
    bool tainted = HasTaint(node);
    if (silent && (ReadyStatus(node) != "Unknown" || !tainted)) {
      // Ready and the other conditions become Unknown; the node is tainted unreachable.
      json::value updated = node;
      std::string ts = api::NowRfc3339();
      if (auto* conditions = updated.at("status").as_object().if_contains("conditions");
          conditions && conditions->is_array()) {
        for (auto& c : conditions->as_array()) {
          auto& o = c.as_object();
          if (o["status"] != "Unknown") o["lastTransitionTime"] = ts;
          o["status"] = "Unknown";
          o["reason"] = "NodeStatusUnknown";
          o["message"] = "Kubelet stopped posting node status.";
        }
      }
      auto res = client()->Update(Nodes(), "", updated, "status");
      if (!res.ok()) {
        spdlog::warn("node lifecycle: mark {} unknown: {}", name, res.status().ToString());
        continue;
      }
      if (!tainted) {
        json::value with_taint = *res;
        auto& spec = api::Child(with_taint.as_object(), "spec");
        if (!spec["taints"].is_array()) spec["taints"] = json::array();
        spec["taints"].as_array().push_back(
            json::object{{"key", kUnreachable}, {"effect", "NoExecute"}, {"timeAdded", ts}});
        auto tainted_res = client()->Update(Nodes(), "", with_taint);
        if (!tainted_res.ok())
          spdlog::warn("node lifecycle: taint {}: {}", name, tainted_res.status().ToString());
      }
    } else if (!silent && tainted) {
      // Heartbeats are back: lift the taint (the node agent reports Ready itself).
      json::value without = node;
      auto& taints = without.at("spec").at("taints").as_array();
      taints.erase(std::remove_if(taints.begin(), taints.end(),
                                  [](const json::value& t) {
                                    return api::GetString(t, {"key"}) == kUnreachable;
                                  }),
                   taints.end());
      auto res = client()->Update(Nodes(), "", without);
      if (!res.ok()) spdlog::warn("node lifecycle: untaint {}: {}", name, res.status().ToString());
    }
  }
}

Status NodeLifecycleController::Reconcile(const std::string& node) {
  Clock::TimePoint since;
  {
    std::lock_guard lock(mu_);
    auto it = tainted_since_.find(node);
    if (it == tainted_since_.end()) return Status::Ok();
    since = it->second;
  }
  auto now = clock_->Now();
  Status result = Status::Ok();
  std::optional<Clock::TimePoint> next;
  for (const auto& shared : pods_->Items()) {
    const json::value& pod = *shared;
    if (api::GetString(pod, {"spec", "nodeName"}) != node ||
        !api::GetString(pod, {"metadata", "deletionTimestamp"}).empty())
      continue;
    // The pod's toleration of the taint, if any: forever without tolerationSeconds.
    bool tolerated = false;
    std::optional<int64_t> seconds;
    if (const auto* tols = api::Find(pod, {"spec", "tolerations"}); tols && tols->is_array()) {
      for (const auto& t : tols->get_array()) {
        std::string_view key = api::GetString(t, {"key"});
        std::string_view op = api::GetString(t, {"operator"});
        std::string_view effect = api::GetString(t, {"effect"});
        bool matches = (key == kUnreachable || (key.empty() && op == "Exists")) &&
                       (effect.empty() || effect == "NoExecute");
        if (!matches) continue;
        tolerated = true;
        const auto* s = api::Find(t, {"tolerationSeconds"});
        if (s && s->is_int64()) {
          seconds = seconds ? std::min(*seconds, s->get_int64()) : s->get_int64();
        } else {
          seconds.reset();
          break;
        }
      }
    }
    if (tolerated && !seconds) continue;
    auto deadline = since + std::chrono::seconds(seconds.value_or(0));
    if (deadline > now) {
      next = next ? std::min(*next, deadline) : deadline;
      continue;
    }
    Status s = client()->Delete(Pods(), api::GetString(pod, {"metadata", "namespace"}),
                                api::GetString(pod, {"metadata", "name"}));
    if (!s.ok() && s.code() != Code::kNotFound) result = s;
  }
  if (next) EnqueueAfter(node, *next - now);
  return result;
}

}  // namespace kiso::controller
