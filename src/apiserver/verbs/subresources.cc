// The scale subresource (autoscaling/v1 Scale over spec.replicas) and
// pods/binding (the scheduler's write: set spec.nodeName exactly once).
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/custom_resource.h"
#include "api/object.h"
#include "api/patch.h"
#include "api/selector.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

std::string SelectorString(const json::object& obj) {
  const json::value* sel = api::Find(obj, {"spec", "selector"});
  return sel ? api::FormatLabelSelector(*sel) : "";
}

json::object ScaleOf(const api::ResourceType& type, const json::object& obj) {
  if (type.custom) {
    // AtJsonPath reads a value; the object is copied once for it.
    json::value whole(obj);
    const auto& info = *type.custom;
    const auto* spec_replicas = api::AtJsonPath(whole, info.spec_replicas_path);
    const auto* status_replicas = api::AtJsonPath(whole, info.status_replicas_path);
    const auto* selector = info.label_selector_path.empty()
                               ? nullptr
                               : api::AtJsonPath(whole, info.label_selector_path);
    json::object m;
    for (std::string_view f :
         {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
      if (const auto* v = api::Find(obj, {"metadata", f})) m[f] = *v;
    }
    json::object status{{"replicas", status_replicas ? *status_replicas : json::value(0)}};
    if (selector && selector->is_string()) status["selector"] = *selector;
    return json::object{
        {"kind", "Scale"},
        {"apiVersion", "autoscaling/v1"},
        {"metadata", std::move(m)},
        {"spec", json::object{{"replicas", spec_replicas ? *spec_replicas : json::value(0)}}},
        {"status", std::move(status)}};
  }
  const auto& meta = obj.at("metadata").get_object();
  json::object m;
  for (std::string_view f : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
    if (const auto* v = meta.if_contains(f)) m[f] = *v;
  }
  const auto* spec_replicas = api::Find(obj, {"spec", "replicas"});
  const auto* status_replicas = api::Find(obj, {"status", "replicas"});
  json::object scale;
  scale["kind"] = "Scale";
  scale["apiVersion"] = "autoscaling/v1";
  scale["metadata"] = std::move(m);
  scale["spec"] = json::object{{"replicas", spec_replicas ? *spec_replicas : json::value(0)}};
  scale["status"] = json::object{{"replicas", status_replicas ? *status_replicas : json::value(0)},
                                 {"selector", SelectorString(obj)}};
  return scale;
}

}  // namespace

Response HandleScale(const Context& ctx, const Target& t, const Request& req) {
  if (req.method == "GET") {
    auto kv = ReadObject(ctx, t);
    if (!kv.ok()) return ErrorResponse(kv.error());
    auto obj = DecodeStored(*kv);
    if (!obj.ok()) return ErrorResponse(obj.error());
    return ObjectResponse(200, ScaleOf(*t.type, obj->get_object()));
  }
  auto parsed = ParseBody(req);
  if (!parsed.ok()) return ErrorResponse(api::BadRequest(parsed.status().message()));
  json::value body = std::move(*parsed);
  std::string content_type(req.Header("content-type"));
  content_type = content_type.substr(0, content_type.find(';'));
  Target main = t;
  main.subresource.clear();
  auto updated = GuaranteedUpdate(ctx, main, req, [&](json::object& current) -> api::ApiStatus {
    json::value scale = ScaleOf(*t.type, current);
    api::Child(scale.get_object(), "metadata").erase("resourceVersion");
    if (req.method == "PUT") {
      scale = body;
    } else if (content_type == "application/json-patch+json") {
      auto out = api::ApplyJsonPatch(scale, body);
      if (!out.ok()) return api::BadRequest(out.status().message());
      scale = std::move(*out);
    } else if (content_type == "application/strategic-merge-patch+json") {
      auto out = api::ApplyStrategicMergePatch(scale, body, "Scale");
      if (!out.ok()) return api::BadRequest(out.status().message());
      scale = std::move(*out);
    } else {
      scale = api::ApplyMergePatch(scale, body);
    }
    const auto* replicas = api::Find(scale, {"spec", "replicas"});
    if (!replicas || !replicas->is_int64() || replicas->get_int64() < 0) {
      api::ApiError e =
          api::Invalid(api::ResourceType{"autoscaling", "v1", "Scale", "scale", "scale"}, t.name,
                       {{"FieldValueInvalid",
                         fmt::format("Invalid value: {}: must be greater than or equal to 0",
                                     replicas ? json::serialize(*replicas) : "null"),
                         "spec.replicas"}});
      return e;
    }
    if (t.type->custom) {
      // A path of object keys under the object (".spec.replicas"); created as needed.
      std::string_view path = t.type->custom->spec_replicas_path;
      json::object* at = &current;
      std::string key;
      for (size_t i = 1; i <= path.size(); ++i) {
        if (i == path.size() || path[i] == '.') {
          if (i < path.size()) {
            at = &api::Child(*at, key);
          } else {
            (*at)[key] = *replicas;
          }
          key.clear();
        } else {
          key += path[i];
        }
      }
    } else {
      api::Child(current, "spec")["replicas"] = *replicas;
    }
    std::string_view rv = api::GetString(scale, {"metadata", "resourceVersion"});
    if (!rv.empty()) api::Child(current, "metadata")["resourceVersion"] = rv;
    return std::nullopt;
  });
  if (!updated.ok()) return ErrorResponse(updated.error());
  return ObjectResponse(200, ScaleOf(*t.type, updated->get_object()));
}

Response HandleBinding(const Context& ctx, const Target& t, const Request& req) {
  auto parsed = ParseBody(req);
  if (!parsed.ok() || !parsed->is_object()) {
    return ErrorResponse(api::BadRequest("Binding: the request body must be a JSON object"));
  }
  std::string node(api::GetString(*parsed, {"target", "name"}));
  if (node.empty()) {
    return ErrorResponse(api::Invalid(*api::FindResource("", "v1", "pods"), t.name,
                                      {{"FieldValueRequired", "Required value", "target.name"}}));
  }
  std::string uid(api::GetString(*parsed, {"metadata", "uid"}));
  auto updated = GuaranteedUpdate(
      ctx, t, req,
      [&](json::object& pod) -> api::ApiStatus {
        std::string_view current = api::GetString(pod, {"spec", "nodeName"});
        if (!current.empty()) {
          return api::Conflict(
              *t.type, t.name,
              fmt::format("pod {} is already assigned to node \"{}\"", t.name, current));
        }
        if (!uid.empty() && uid != api::GetString(pod, {"metadata", "uid"})) {
          return api::Conflict(*t.type, t.name, "Precondition failed: UID in precondition: " + uid);
        }
        if (!api::GetString(pod, {"metadata", "deletionTimestamp"}).empty()) {
          return api::Conflict(*t.type, t.name,
                               "pod is being deleted, cannot be assigned to a host");
        }
        api::Child(pod, "spec")["nodeName"] = node;
        // The binding also records PodScheduled=True (pkg/registry/core/pod/storage assignPod).
        auto& status = api::Child(pod, "status");
        json::value& conditions = status["conditions"];
        if (!conditions.is_array()) conditions = json::array();
        auto& list = conditions.get_array();
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [](const json::value& c) {
                                    return api::GetString(c, {"type"}) == "PodScheduled";
                                  }),
                   list.end());
        list.push_back(json::object{{"type", "PodScheduled"},
                                    {"status", "True"},
                                    {"lastProbeTime", nullptr},
                                    {"lastTransitionTime", api::NowRfc3339()}});
        return std::nullopt;
      },
      UpdateChecks::kStorageOnly);  // As upstream's: no pod validation, admission or managedFields.
  if (!updated.ok()) return ErrorResponse(updated.error());
  return JsonResponse(
      201, R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201})");
}

}  // namespace kiso::apiserver
