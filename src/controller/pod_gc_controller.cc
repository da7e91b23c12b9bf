#include "controller/pod_gc_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <set>

#include "api/object.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }

bool Terminated(const json::value& pod) {
  auto phase = api::GetString(pod, {"status", "phase"});
  return phase == "Succeeded" || phase == "Failed";
}

}  // namespace

PodGcController::PodGcController(client::Client* client, PodGcOptions options,
                                 client::SharedInformers* shared)
    : Controller(client, "pod-garbage-collector", 1, shared), options_(options) {
  pods_ = Watch(Pods(), [](const json::value*, const json::value&, bool) {});
  nodes_ = Watch(Nodes(), [this](const json::value*, const json::value&, bool deleted) {
    if (deleted) Enqueue(std::string(kKey));
  });
  Enqueue(std::string(kKey));
}

Status PodGcController::Reconcile(const std::string& key) {
  EnqueueAfter(key, options_.period);  // The next pass, whatever this one finds.
  std::set<std::string> nodes;
  for (const auto& n : nodes_->Items()) nodes.emplace(api::GetString(*n, {"metadata", "name"}));
  std::vector<json::value> terminated;
  Status result = Status::Ok();
  auto force_delete = [&](const json::value& pod) {
    Status s = client()->Delete(
        Pods(), api::GetString(pod, {"metadata", "namespace"}),
        api::GetString(pod, {"metadata", "name"}),
        {.grace_period_seconds = 0,
         .precondition_uid = std::string(api::GetString(pod, {"metadata", "uid"}))});
    if (!s.ok() && s.code() != Code::kNotFound && s.code() != Code::kConflict && result.ok())
      result = s;
  };
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, std::chrono::steady_clock::time_point> missing;
  for (const auto& shared : pods_->Items()) {
    const json::value& pod = *shared;
    // A pass over many pods (each stranded one costs a few requests) ends when the
    // controller stops, so that a server shutting down is not held up by it.
    if (stopping()) return Status::Ok();
    const std::string node(api::GetString(pod, {"spec", "nodeName"}));
    const bool deleting = !api::GetString(pod, {"metadata", "deletionTimestamp"}).empty();
    if (node.empty()) {
      if (deleting) force_delete(pod);  // Never scheduled: no kubelet will finish it.
      continue;
    }
    if (!nodes.count(node)) {
      auto it = missing_since_.find(node);
      const auto since = it == missing_since_.end() ? now : it->second;
      missing[node] = since;
      if (now - since < options_.quarantine) continue;
      // The cache may lag behind a node that just registered: ask the API.
      auto there = client()->Get(Nodes(), "", node);
      if (there.ok() || there.status().code() != Code::kNotFound) continue;
      if (!Terminated(pod)) {
        const std::string at = api::NowRfc3339();
        json::object status{
            {"phase", "Failed"},
            {"conditions", json::array{json::object{{"type", "DisruptionTarget"},
                                                    {"status", "True"},
                                                    {"reason", "DeletionByPodGC"},
                                                    {"message", "PodGC: node no longer exists"},
                                                    {"lastTransitionTime", at}}}}};
        (void)client()->Patch(Pods(), api::GetString(pod, {"metadata", "namespace"}),
                              api::GetString(pod, {"metadata", "name"}),
                              client::PatchType::kStrategic,
                              json::object{{"status", std::move(status)}}, "status");
      }
      force_delete(pod);
      continue;
    }
    if (Terminated(pod) && !deleting) terminated.push_back(pod);
  }
  missing_since_ = std::move(missing);  // Nodes that came back, or whose pods went, are forgotten.
  if (!missing_since_.empty()) {
    EnqueueAfter(
        key, std::min<std::chrono::steady_clock::duration>(options_.period, options_.quarantine));
  }
  if (options_.terminated_threshold > 0 &&
      static_cast<int64_t>(terminated.size()) > options_.terminated_threshold) {
    // Oldest first; within a second (timestamps have no more), by namespace and name.
    auto age = [](const json::value& p) {
      return std::make_tuple(api::GetString(p, {"metadata", "creationTimestamp"}),
                             api::GetString(p, {"metadata", "namespace"}),
                             api::GetString(p, {"metadata", "name"}));
    };
    std::sort(terminated.begin(), terminated.end(),
              [&](const json::value& a, const json::value& b) { return age(a) < age(b); });
    const auto excess = terminated.size() - static_cast<size_t>(options_.terminated_threshold);
    for (size_t i = 0; i < excess && !stopping(); ++i) force_delete(terminated[i]);
  }
  return result;
}

}  // namespace kiso::controller
