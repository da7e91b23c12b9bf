#include "api/conversion.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "api/custom_resource.h"
#include "api/object.h"
#include "api/structural.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

constexpr std::string_view kMetrics = "autoscaling.alpha.kubernetes.io/metrics";
constexpr std::string_view kCurrentMetrics = "autoscaling.alpha.kubernetes.io/current-metrics";
constexpr std::string_view kBehavior = "autoscaling.alpha.kubernetes.io/behavior";
constexpr std::string_view kConditions = "autoscaling.alpha.kubernetes.io/conditions";

// Moves `from[key]` to `to[as]` when present.
void Move(json::object& from, std::string_view key, json::object& to, std::string_view as) {
  if (auto* v = from.if_contains(key)) {
    to[as] = std::move(*v);
    from.erase(key);
  }
}

// Renames obj[from] to obj[to] when present.
void Rename(json::object& obj, std::string_view from, std::string_view to) {
  auto* v = obj.if_contains(from);
  if (!v) return;
  json::value moved = std::move(*v);
  obj.erase(from);
  obj[to] = std::move(moved);
}

json::object* ObjectAt(json::object& obj, std::string_view key) {
  auto* v = obj.if_contains(key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}

// ---- Metrics: autoscaling/v2's {metric, target} against v1's flat fields ----

// v2 MetricTarget → v1's target fields, named `prefix` + Value/AverageValue/AverageUtilization.
void TargetToV1(json::object& target, json::object& out, std::string_view value_name,
                std::string_view average_value_name, std::string_view utilization_name) {
  if (!value_name.empty()) Move(target, "value", out, value_name);
  Move(target, "averageValue", out, average_value_name);
  if (!utilization_name.empty()) Move(target, "averageUtilization", out, utilization_name);
}

// v1's target fields → a v2 MetricTarget; the type from which is set.
json::object TargetToV2(json::object& in, std::string_view value_name,
                        std::string_view average_value_name, std::string_view utilization_name) {
  json::object target;
  if (!utilization_name.empty() && in.contains(utilization_name)) {
    target["type"] = "Utilization";
    Move(in, utilization_name, target, "averageUtilization");
  } else if (in.contains(average_value_name)) {
    target["type"] = "AverageValue";
    Move(in, average_value_name, target, "averageValue");
  } else if (!value_name.empty() && in.contains(value_name)) {
    target["type"] = "Value";
    Move(in, value_name, target, "value");
  }
  return target;
}

// The source of one metric (spec or status), between the versions. The
// field names of each version's value fields, by source type.
struct Names {
  std::string_view value, average_value, utilization;
};

Names SpecNames(std::string_view type) {
  if (type == "object") return {"targetValue", "averageValue", ""};
  if (type == "pods") return {"", "targetAverageValue", ""};
  if (type == "external") return {"targetValue", "targetAverageValue", ""};
  return {"", "targetAverageValue", "targetAverageUtilization"};  // resource, containerResource
}

Names StatusNames(std::string_view type) {
  if (type == "object") return {"currentValue", "averageValue", ""};
  if (type == "pods") return {"", "currentAverageValue", ""};
  if (type == "external") return {"currentValue", "currentAverageValue", ""};
  return {"", "currentAverageValue", "currentAverageUtilization"};
}

// The source's field name in JSON: "Resource" → "resource", "ContainerResource" →
// "containerResource".
std::string SourceField(std::string_view type) {
  std::string out(type);
  if (!out.empty()) out[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[0])));
  return out;
}

// One v2 metric (spec: target, status: current) in v1's shape.
json::object MetricToV1(json::object metric, bool status) {
  std::string field = SourceField(GetString(metric, {"type"}));
  json::object* source = ObjectAt(metric, field);
  if (source == nullptr) return metric;
  json::object out;
  Names n = status ? StatusNames(field) : SpecNames(field);
  if (json::object* id = ObjectAt(*source, "metric")) {
    Move(*id, "name", out, "metricName");
    Move(*id, "selector", out, field == "external" ? "metricSelector" : "selector");
  }
  Move(*source, "name", out, "name");
  Move(*source, "container", out, "container");
  Move(*source, "describedObject", out, "target");
  if (json::object* value = ObjectAt(*source, status ? "current" : "target")) {
    TargetToV1(*value, out, n.value, n.average_value, n.utilization);
  }
  metric[field] = std::move(out);
  return metric;
}

json::object MetricToV2(json::object metric, bool status) {
  std::string field = SourceField(GetString(metric, {"type"}));
  json::object* source = ObjectAt(metric, field);
  if (source == nullptr) return metric;
  json::object out;
  Names n = status ? StatusNames(field) : SpecNames(field);
  if (source->contains("metricName")) {
    json::object id;
    Move(*source, "metricName", id, "name");
    Move(*source, field == "external" ? "metricSelector" : "selector", id, "selector");
    out["metric"] = std::move(id);
  }
  Move(*source, "name", out, "name");
  Move(*source, "container", out, "container");
  Move(*source, "target", out, "describedObject");
  json::object value = TargetToV2(*source, n.value, n.average_value, n.utilization);
  if (status) value.erase("type");  // MetricValueStatus has no type.
  out[status ? "current" : "target"] = std::move(value);
  metric[field] = std::move(out);
  return metric;
}

// Whether a v2 metric is the one v1 carries in its own field: CPU by utilization.
bool IsCpuUtilization(const json::value& metric, bool status) {
  return GetString(metric, {"type"}) == "Resource" &&
         GetString(metric, {"resource", "name"}) == "cpu" &&
         Find(metric, {"resource", status ? "current" : "target", "averageUtilization"}) !=
             nullptr &&
         (status || GetString(metric, {"resource", "target", "type"}) == "Utilization");
}

// ---- HorizontalPodAutoscaler ----

void AutoscalerToV1(json::object& obj) {
  json::object& meta = Child(obj, "metadata");
  json::object annotations;
  if (auto* a = ObjectAt(meta, "annotations")) annotations = *a;
  json::object& spec = Child(obj, "spec");
  json::array others;
  if (auto* metrics = spec.if_contains("metrics"); metrics && metrics->is_array()) {
    for (auto& m : metrics->get_array()) {
      if (!m.is_object()) continue;
      if (!spec.contains("targetCPUUtilizationPercentage") && IsCpuUtilization(m, false)) {
        spec["targetCPUUtilizationPercentage"] =
            *Find(m, {"resource", "target", "averageUtilization"});
      } else {
        others.push_back(MetricToV1(m.get_object(), false));
      }
    }
    spec.erase("metrics");
  }
  if (!others.empty()) annotations[kMetrics] = json::serialize(others);
  if (auto* behavior = spec.if_contains("behavior")) {
    annotations[kBehavior] = json::serialize(*behavior);
    spec.erase("behavior");
  }
  if (auto* status = ObjectAt(obj, "status")) {
    // Neither is omitempty in v1's Go struct: a client may count on both.
    for (std::string_view f : {"currentReplicas", "desiredReplicas"}) {
      if (!status->contains(f)) (*status)[f] = 0;
    }
    json::array current;
    if (auto* metrics = status->if_contains("currentMetrics"); metrics && metrics->is_array()) {
      for (auto& m : metrics->get_array()) {
        if (!m.is_object()) continue;
        if (!status->contains("currentCPUUtilizationPercentage") && IsCpuUtilization(m, true)) {
          (*status)["currentCPUUtilizationPercentage"] =
              *Find(m, {"resource", "current", "averageUtilization"});
        } else {
          current.push_back(MetricToV1(m.get_object(), true));
        }
      }
      status->erase("currentMetrics");
    }
    if (!current.empty()) annotations[kCurrentMetrics] = json::serialize(current);
    if (auto* conditions = status->if_contains("conditions")) {
      if (conditions->is_array() && !conditions->get_array().empty())
        annotations[kConditions] = json::serialize(*conditions);
      status->erase("conditions");
    }
  }
  if (!annotations.empty()) meta["annotations"] = std::move(annotations);
}

// Takes the JSON array or object an annotation holds out of it into `out`;
// 400 when it holds something else.
ApiStatus TakeAnnotation(json::object& annotations, std::string_view key, bool array,
                         std::optional<json::value>& out) {
  auto* v = annotations.if_contains(key);
  if (v == nullptr) return std::nullopt;
  auto parsed = v->is_string() ? ParseJson(v->get_string()) : Result<json::value>(json::value());
  if (!parsed.ok() || (array ? !parsed->is_array() : !parsed->is_object())) {
    return BadRequest(
        fmt::format("metadata.annotations[{}]: not a JSON {}", key, array ? "array" : "object"));
  }
  annotations.erase(key);
  out = std::move(*parsed);
  return std::nullopt;
}

ApiStatus AutoscalerToV2(json::object& obj) {
  json::object& meta = Child(obj, "metadata");
  json::object annotations;
  if (auto* a = ObjectAt(meta, "annotations")) annotations = *a;
  std::optional<json::value> others, current, behavior, conditions;
  for (auto [key, array, out] :
       {std::tuple{kMetrics, true, &others}, std::tuple{kCurrentMetrics, true, &current},
        std::tuple{kBehavior, false, &behavior}, std::tuple{kConditions, true, &conditions}}) {
    if (auto err = TakeAnnotation(annotations, key, array, *out)) return err;
  }
  json::object& spec = Child(obj, "spec");
  json::array metrics;
  if (auto* cpu = spec.if_contains("targetCPUUtilizationPercentage")) {
    metrics.push_back(json::object{
        {"type", "Resource"},
        {"resource", json::object{{"name", "cpu"},
                                  {"target", json::object{{"type", "Utilization"},
                                                          {"averageUtilization", *cpu}}}}}});
    spec.erase("targetCPUUtilizationPercentage");
  }
  if (others) {
    for (auto& m : others->get_array()) {
      if (m.is_object()) metrics.push_back(MetricToV2(m.get_object(), false));
    }
  }
  if (!metrics.empty()) spec["metrics"] = std::move(metrics);
  if (behavior) spec["behavior"] = std::move(*behavior);
  if (auto* status = ObjectAt(obj, "status")) {
    json::array now;
    if (auto* cpu = status->if_contains("currentCPUUtilizationPercentage")) {
      now.push_back(json::object{
          {"type", "Resource"},
          {"resource", json::object{{"name", "cpu"},
                                    {"current", json::object{{"averageUtilization", *cpu}}}}}});
      status->erase("currentCPUUtilizationPercentage");
    }
    if (current) {
      for (auto& m : current->get_array()) {
        if (m.is_object()) now.push_back(MetricToV2(m.get_object(), true));
      }
    }
    if (!now.empty()) (*status)["currentMetrics"] = std::move(now);
    if (conditions) (*status)["conditions"] = std::move(*conditions);
  }
  if (annotations.empty()) {
    meta.erase("annotations");
  } else {
    meta["annotations"] = std::move(annotations);
  }
  return std::nullopt;
}

bool IsAutoscalerV1(const ResourceType& t) {
  return t.group == "autoscaling" && t.kind == "HorizontalPodAutoscaler" && t.version == "v1";
}

// ---- events.k8s.io/v1 Event against core/v1's (the same objects) ----

bool IsEventsV1(const ResourceType& t) { return t.group == "events.k8s.io" && t.kind == "Event"; }

// events.k8s.io/v1 field → core/v1 field.
constexpr std::pair<std::string_view, std::string_view> kEventFields[] = {
    {"regarding", "involvedObject"},
    {"note", "message"},
    {"reportingController", "reportingComponent"},
    {"deprecatedSource", "source"},
    {"deprecatedFirstTimestamp", "firstTimestamp"},
    {"deprecatedLastTimestamp", "lastTimestamp"},
    {"deprecatedCount", "count"}};

// What upstream's validation asks of an Event written at events.k8s.io/v1
// (core/v1's own rules, looser for old clients, apply after conversion).
ApiStatus ValidateEventsV1(const ResourceType& served, const json::object& obj) {
  std::vector<Cause> causes;
  auto text = [&](std::string_view field) { return GetString(obj, {field}); };
  auto required = [&](std::string_view field, size_t max) {
    if (text(field).empty()) {
      causes.push_back({"FieldValueRequired", "Required value", std::string(field)});
    } else if (text(field).size() > max) {
      causes.push_back({"FieldValueTooLong",
                        fmt::format("Too long: may not be more than {} bytes", max),
                        std::string(field)});
    }
  };
  if (text("eventTime").empty())
    causes.push_back({"FieldValueRequired", "Required value", "eventTime"});
  required("reportingController", 253);
  required("reportingInstance", 128);
  required("action", 128);
  required("reason", 128);
  if (text("type") != "Normal" && text("type") != "Warning") {
    causes.push_back({"FieldValueNotSupported",
                      fmt::format("Unsupported value: \"{}\": supported values: \"Normal\", "
                                  "\"Warning\"",
                                  text("type")),
                      "type"});
  }
  if (text("note").size() > 1024) {
    causes.push_back({"FieldValueTooLong", "Too long: may not be more than 1024 bytes", "note"});
  }
  if (causes.empty()) return std::nullopt;
  return Invalid(served, std::string(GetString(obj, {"metadata", "name"})), std::move(causes));
}

}  // namespace

ApiStatus ConvertToStorage(const ResourceType& served, json::object& obj) {
  const ResourceType& stored = served.Storage();
  if (&stored == &served) return std::nullopt;
  if (IsAutoscalerV1(served)) {
    if (auto err = AutoscalerToV2(obj)) return err;
  }
  if (IsEventsV1(served)) {
    if (auto err = ValidateEventsV1(served, obj)) return err;
    for (const auto& [v1, core] : kEventFields) Rename(obj, v1, core);
  }
  obj["apiVersion"] = stored.GroupVersion();
  return std::nullopt;
}

void ConvertFromStorage(const ResourceType& served, json::object& obj) {
  const ResourceType& stored = served.Storage();
  if (&stored == &served || GetString(obj, {"kind"}) != served.kind) return;
  if (served.custom) {
    // `None` conversion: an object of the kind's group at any version (one
    // stored before the storage version changed, too) only changes apiVersion.
    std::string_view av = GetString(obj, {"apiVersion"});
    if (!av.starts_with(served.group + "/")) return;
    obj["apiVersion"] = served.GroupVersion();
    // Read at a version: what its schema has no field for is pruned.
    if (served.custom->schema) {
      json::value whole(std::move(obj));
      Prune(*served.custom->schema, whole);
      obj = std::move(whole.as_object());
    }
    return;
  }
  if (GetString(obj, {"apiVersion"}) != stored.GroupVersion()) return;
  if (IsAutoscalerV1(served)) AutoscalerToV1(obj);
  if (IsEventsV1(served)) {
    for (const auto& [v1, core] : kEventFields) Rename(obj, core, v1);
  }
  obj["apiVersion"] = served.GroupVersion();
}

}  // namespace kiso::api
