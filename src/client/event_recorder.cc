#include "client/event_recorder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>

#include "api/object.h"

namespace kiso::client {

namespace json = boost::json;

void EventRecorder::Record(const json::value& object, const std::string& type,
                           const std::string& reason, const std::string& message) {
  const auto* events = api::FindResource("", "v1", "events");
  std::string ns(api::GetString(object, {"metadata", "namespace"}));
  if (ns.empty()) ns = "default";  // Events about cluster-scoped objects live in default.
  std::string uid(api::GetString(object, {"metadata", "uid"}));
  std::string key = fmt::format("{}/{}/{}/{}", uid, type, reason, message);
  std::string now = api::NowRfc3339();
  std::lock_guard lock(mu_);
  auto it = seen_.find(key);
  if (it != seen_.end()) {
    ++it->second.count;
    json::value patch = json::object{{"count", it->second.count}, {"lastTimestamp", now}};
    auto res = client_->Patch(*events, it->second.ns, it->second.name, PatchType::kMerge, patch);
    if (res.ok()) return;
    seen_.erase(it);  // The Event is gone (deleted or expired): write a new one.
  }
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  std::string name = fmt::format("{}.{:x}", api::GetString(object, {"metadata", "name"}), nanos);
  json::value event = json::object{
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", json::object{{"name", name}, {"namespace", ns}}},
      {"involvedObject",
       json::object{{"kind", api::GetString(object, {"kind"})},
                    {"namespace", api::GetString(object, {"metadata", "namespace"})},
                    {"name", api::GetString(object, {"metadata", "name"})},
                    {"uid", uid},
                    {"apiVersion", api::GetString(object, {"apiVersion"})},
                    {"resourceVersion", api::GetString(object, {"metadata", "resourceVersion"})}}},
      {"reason", reason},
      {"message", message},
      {"source", json::object{{"component", component_}}},
      {"firstTimestamp", now},
      {"lastTimestamp", now},
      {"count", 1},
      {"type", type},
      {"reportingComponent", component_},
      {"reportingInstance", ""}};
  auto res = client_->Create(*events, ns, event);
  if (!res.ok()) {
    spdlog::debug("event {} for {}: {}", reason, name, res.status().ToString());
    return;
  }
  if (seen_.size() > 4096) seen_.clear();  // Bounded: aggregation is best effort.
  seen_[key] = {ns, name, 1};
}

}  // namespace kiso::client
