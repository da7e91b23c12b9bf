#include "agent/hollow.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "agent/node_registration.h"
#include "api/object.h"

namespace kiso::agent {

namespace json = boost::json;

namespace {
const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
constexpr std::string_view kExitCode = "kiso.dev/hollow-exit-code";
}  // namespace

HollowNodes::HollowNodes(client::Client* client, HollowOptions options)
    : client_(client), options_(std::move(options)) {
  for (int i = 0; i < options_.count; ++i) {
    names_.insert(fmt::format("{}-{}", options_.prefix, options_.first + i));
  }
  pods_ = std::make_unique<client::Informer>(
      client_, &Pods(),
      [this](const json::value*, const json::value& obj, bool deleted) { OnPod(obj, deleted); });
}

HollowNodes::~HollowNodes() { Stop(); }

std::vector<std::string> HollowNodes::names() const { return {names_.begin(), names_.end()}; }

Status HollowNodes::Register(const std::string& name) {
  NodeDescription d;
  d.name = name;
  d.capacity = {{"cpu", options_.cpu},
                {"memory", options_.memory},
                {"pods", std::to_string(options_.pods)},
                {"ephemeral-storage", options_.ephemeral_storage}};
  d.labels = {{"kiso.dev/hollow", "true"}};
  d.kubelet_version = "v1.32.0-kiso-hollow";
  d.message = "hollow node";
  return RegisterNode(client_, d, options_.heartbeat * 4);
}

Status HollowNodes::Renew(const std::string& name) {
  KISO_RETURN_IF_ERROR(RenewNodeLease(client_, name, options_.heartbeat * 4));
  return ReassertNodeReady(client_, name, "kiso hollow node is posting ready status");
}

Status HollowNodes::Start() {
  for (const auto& name : names_) KISO_RETURN_IF_ERROR(Register(name));
  pods_->Start();
  loop_.Start(
      options_.workers, [this](const std::string& key) { Reconcile(key); }, options_.heartbeat,
      [this] { Heartbeat(); });
  return Status::Ok();
}

void HollowNodes::Stop() {
  loop_.Stop();
  pods_->Stop();
}

void HollowNodes::Silence(const std::string& node) {
  std::lock_guard lock(mu_);
  silenced_.insert(node);
}

void HollowNodes::Heartbeat() {
  std::set<std::string> silenced;
  {
    std::lock_guard lock(mu_);
    silenced = silenced_;
  }
  for (const auto& name : names_) {
    if (silenced.contains(name)) continue;
    Status st = Renew(name);
    if (!st.ok()) spdlog::warn("hollow {}: heartbeat: {}", name, st.ToString());
  }
}

void HollowNodes::OnPod(const json::value& obj, bool deleted) {
  if (deleted) return;
  std::string node(api::GetString(obj, {"spec", "nodeName"}));
  if (!names_.contains(node)) return;
  {
    std::lock_guard lock(mu_);
    if (silenced_.contains(node)) return;  // A silent node does nothing at all.
  }
  bool deleting = !api::GetString(obj, {"metadata", "deletionTimestamp"}).empty();
  std::string_view phase = api::GetString(obj, {"status", "phase"});
  bool settled =
      phase == "Succeeded" || phase == "Failed" ||
      (phase == "Running" && api::GetString(obj, {"metadata", "annotations", kExitCode}).empty());
  if (deleting || !settled) {
    loop_.queue().Add(std::string(api::GetString(obj, {"metadata", "namespace"})) + "/" +
                      std::string(api::GetString(obj, {"metadata", "name"})));
  }
}

void HollowNodes::Reconcile(const std::string& key) {
  std::string ns = key.substr(0, key.find('/'));
  std::string name = key.substr(key.find('/') + 1);
  auto pod = pods_->Get(ns, name);
  if (!pod) return;
  if (!api::GetString(*pod, {"metadata", "deletionTimestamp"}).empty()) {
    // No containers to stop: confirm the termination at once.
    client::DeleteOptions options;
    options.grace_period_seconds = 0;
    options.precondition_uid = api::GetString(*pod, {"metadata", "uid"});
    Status s = client_->Delete(Pods(), ns, name, options);
    if (!s.ok() && s.code() != Code::kNotFound && s.code() != Code::kConflict)
      loop_.queue().AddAfter(key, std::chrono::milliseconds(200));
    return;
  }
  std::string_view phase = api::GetString(*pod, {"status", "phase"});
  std::string_view exit_code = api::GetString(*pod, {"metadata", "annotations", kExitCode});
  if (phase == "Succeeded" || phase == "Failed" || (phase == "Running" && exit_code.empty()))
    return;
  std::string now = api::NowRfc3339();
  if (!exit_code.empty()) {
    int code = std::atoi(std::string(exit_code).c_str());
    json::array finished;
    if (const auto* cs = api::Find(*pod, {"spec", "containers"}); cs && cs->is_array()) {
      for (const auto& c : cs->get_array()) {
        finished.push_back(json::object{
            {"name", api::GetString(c, {"name"})},
            {"state",
             json::object{{"terminated", json::object{{"exitCode", code},
                                                      {"reason", code == 0 ? "Completed" : "Error"},
                                                      {"startedAt", now},
                                                      {"finishedAt", now}}}}},
            {"ready", false},
            {"started", false},
            {"restartCount", 0},
            {"image", api::GetString(c, {"image"})},
            {"imageID", ""}});
      }
    }
    json::value done =
        json::object{{"status", json::object{{"phase", code == 0 ? "Succeeded" : "Failed"},
                                             {"startTime", now},
                                             {"containerStatuses", std::move(finished)}}}};
    auto res = client_->Patch(Pods(), ns, name, client::PatchType::kStrategic, done, "status");
    if (!res.ok() && res.status().code() != Code::kNotFound)
      loop_.queue().AddAfter(key, std::chrono::milliseconds(200));
    return;
  }
  json::array statuses;
  if (const auto* cs = api::Find(*pod, {"spec", "containers"}); cs && cs->is_array()) {
    for (const auto& c : cs->get_array()) {
      statuses.push_back(json::object{
          {"name", api::GetString(c, {"name"})},
          {"state", json::object{{"running", json::object{{"startedAt", now}}}}},
          {"ready", true},
          {"started", true},
          {"restartCount", 0},
          {"image", api::GetString(c, {"image"})},
          {"imageID", ""},
          {"containerID", fmt::format("hollow://{}/{}", name, api::GetString(c, {"name"}))}});
    }
  }
  json::array conditions;
  for (const char* type :
       {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"}) {
    conditions.push_back(json::object{{"type", type},
                                      {"status", "True"},
                                      {"lastProbeTime", nullptr},
                                      {"lastTransitionTime", now}});
  }
  // A stable fake address per pod from its UID: no network on a hollow node.
  size_t h = std::hash<std::string_view>()(api::GetString(*pod, {"metadata", "uid"}));
  std::string ip = fmt::format("10.42.{}.{}", (h >> 8) % 256, 1 + h % 254);
  json::value patch =
      json::object{{"status", json::object{{"phase", "Running"},
                                           {"conditions", std::move(conditions)},
                                           {"hostIP", "127.0.0.1"},
                                           {"podIP", ip},
                                           {"podIPs", json::array{json::object{{"ip", ip}}}},
                                           {"startTime", now},
                                           {"containerStatuses", std::move(statuses)}}}};
  auto res = client_->Patch(Pods(), ns, name, client::PatchType::kStrategic, patch, "status");
  if (!res.ok() && res.status().code() != Code::kNotFound)
    loop_.queue().AddAfter(key, std::chrono::milliseconds(200));
}

}  // namespace kiso::agent
