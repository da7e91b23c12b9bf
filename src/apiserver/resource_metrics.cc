// metrics.k8s.io/v1beta1, metrics-server's API inside kiso server: each
// node's and pod's cpu (usageNanoCores) and memory (workingSetBytes) from
// the nodes' /stats/summary, read when asked (no scrape loop), as `kubectl
// top` and the autoscalers read them.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "api/selector.h"
#include "apiserver/http/node_streams.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

json::object Usage(const json::value& stats) {
  return json::object{
      {"cpu", fmt::format("{}n", api::GetInt(stats, {"cpu", "usageNanoCores"}, 0))},
      {"memory", fmt::format("{}Ki", api::GetInt(stats, {"memory", "workingSetBytes"}, 0) / 1024)}};
}

json::object Labelled(const json::value& from, json::object meta) {
  if (const auto* labels = api::Find(from, {"metadata", "labels"})) meta["labels"] = *labels;
  return meta;
}

}  // namespace

Response HandleMetrics(const Context& ctx, const Target& t, const Request& req,
                       NodeStreams& streams) {
  if (t.verb != "get" && t.verb != "list") return ErrorResponse(api::MethodNotAllowed());
  std::optional<api::LabelSelector> selector;
  if (auto text = req.Query("labelSelector"); text && !text->empty()) {
    auto parsed = api::LabelSelector::Parse(*text);
    if (!parsed.ok()) return ErrorResponse(api::BadRequest(parsed.status().message()));
    selector = std::move(*parsed);
  }
  const bool nodes = t.type->plural == "nodes";
  const std::string now = api::NowRfc3339();
  const std::string api_version = "metrics.k8s.io/v1beta1";
  json::array items;
  for (const auto& node : ListFromCache(ctx, *api::FindResource("", "v1", "nodes"), "")) {
    std::string node_name(api::GetString(node, {"metadata", "name"}));
    if (nodes && !t.name.empty() && node_name != t.name) continue;
    auto summary = streams.Summary(json::value(node));
    if (!summary) continue;
    if (nodes) {
      if (selector && !selector->Matches(api::GetLabels(node))) continue;
      const auto* stats = api::Find(*summary, {"node"});
      if (!stats) continue;
      items.push_back(json::object{
          {"kind", "NodeMetrics"},
          {"apiVersion", api_version},
          {"metadata",
           Labelled(node, json::object{{"name", node_name}, {"creationTimestamp", now}})},
          {"timestamp", api::GetString(*stats, {"cpu", "time"})},
          {"window", "10s"},
          {"usage", Usage(*stats)}});
      continue;
    }
    for (const auto& pod : api::GetArray(*summary, {"pods"})) {
      std::string ns(api::GetString(pod, {"podRef", "namespace"}));
      std::string name(api::GetString(pod, {"podRef", "name"}));
      if ((!t.ns.empty() && ns != t.ns) || (!t.name.empty() && name != t.name)) continue;
      auto object = ReadFromCache(ctx, *api::FindResource("", "v1", "pods"), ns, name);
      if (!object) continue;  // Gone meanwhile.
      if (selector && !selector->Matches(api::GetLabels(*object))) continue;
      json::array containers;
      for (const auto& c : api::GetArray(pod, {"containers"})) {
        containers.push_back(
            json::object{{"name", api::GetString(c, {"name"})}, {"usage", Usage(c)}});
      }
      items.push_back(json::object{
          {"kind", "PodMetrics"},
          {"apiVersion", api_version},
          {"metadata",
           Labelled(json::value(*object),
                    json::object{{"name", name}, {"namespace", ns}, {"creationTimestamp", now}})},
          {"timestamp", api::GetString(pod, {"cpu", "time"})},
          {"window", "10s"},
          {"containers", std::move(containers)}});
    }
  }
  if (t.verb == "get") {
    if (items.empty()) return ErrorResponse(api::NotFound(*t.type, t.name));
    return ObjectResponse(200, std::move(items.front()));
  }
  return ObjectResponse(200, json::object{{"kind", nodes ? "NodeMetricsList" : "PodMetricsList"},
                                          {"apiVersion", api_version},
                                          {"metadata", json::object{}},
                                          {"items", std::move(items)}});
}

}  // namespace kiso::apiserver
