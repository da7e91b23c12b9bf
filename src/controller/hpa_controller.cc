#include "controller/hpa_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <climits>
#include <cmath>

#include "api/object.h"
#include "api/selector.h"
#include "api/validation.h"
#include "client/client.h"

namespace kiso::controller {

namespace json = boost::json;
using std::chrono::seconds;

namespace {

const api::ResourceType& Hpas() {
  return *api::FindResource("autoscaling", "v2", "horizontalpodautoscalers");
}
const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }

// The target's type: any served kind with a scale subresource (custom ones
// included), by scaleTargetRef's apiVersion and kind; the apps kinds and
// ReplicationController when apiVersion is left out.
const api::ResourceType* TargetType(std::string_view api_version, std::string_view kind) {
  const api::ResourceType* type = nullptr;
  if (!api_version.empty()) {
    type = api::FindKind(api_version, kind);
  } else if (kind == "ReplicationController") {
    type = api::FindResource("", "v1", "replicationcontrollers");
  } else {
    type = api::FindKind("apps/v1", kind);
  }
  if (!type) return nullptr;
  for (const auto& sub : type->subresources) {
    if (sub.name == "scale") return type;
  }
  return nullptr;
}

int64_t Milli(std::string_view quantity) {
  long double milli = 0;
  if (!api::ParseQuantityMilli(quantity, &milli)) return 0;
  return static_cast<int64_t>(std::llround(milli));
}

// A container's request for `resource` (cpu in millicores, memory in bytes).
int64_t Request(const json::value& container, std::string_view resource) {
  int64_t milli = Milli(api::GetString(container, {"resources", "requests", resource}));
  return resource == "cpu" ? milli : milli / 1000;
}

int64_t UsageOf(const ContainerUsage& u, std::string_view resource) {
  return resource == "cpu" ? u.cpu_milli : u.memory_bytes;
}

std::string Quantity(int64_t amount, std::string_view resource) {
  return resource == "cpu" ? fmt::format("{}m", amount) : std::to_string(amount);
}

// Sets condition `type` in `conditions`, keeping its transition time when its status stays.
void SetCondition(json::array& conditions, std::string_view type, bool status,
                  std::string_view reason, std::string_view message, const std::string& now) {
  std::string_view value = status ? "True" : "False";
  for (auto& c : conditions) {
    if (api::GetString(c, {"type"}) != type) continue;
    auto& o = c.as_object();
    if (api::GetString(c, {"status"}) != value) o["lastTransitionTime"] = now;
    o["status"] = value;
    o["reason"] = reason;
    o["message"] = message;
    return;
  }
  conditions.push_back(json::object{{"type", type},
                                    {"status", value},
                                    {"lastTransitionTime", now},
                                    {"reason", reason},
                                    {"message", message}});
}

// One metric's recommendation (upstream's replica calculator).
struct MetricResult {
  bool ok = false;
  int64_t replicas = 0;
  json::object status;  // A MetricStatus.
  std::string error;
  std::string reason = "FailedGetResourceMetric";  // The condition's and event's, on error.
  std::string name;  // "cpu resource utilization (percentage of request)".
};

MetricResult Calculate(const json::value& metric, const std::vector<json::value>& pods,
                       const PodMetrics& usage, int64_t current, double tolerance) {
  MetricResult r;
  std::string_view type = api::GetString(metric, {"type"});
  const bool per_container = type == "ContainerResource";
  if (type != "Resource" && !per_container) {
    r.error = fmt::format("invalid metric source type {:?}", type);
    return r;
  }
  const json::value& source =
      *api::Find(metric, {per_container ? "containerResource" : "resource"});
  std::string resource(api::GetString(source, {"name"}));
  std::string container(api::GetString(source, {"container"}));
  if (resource != "cpu" && resource != "memory") {
    r.error = fmt::format("unsupported resource {:?}", resource);
    return r;
  }
  std::string_view target = api::GetString(source, {"target", "type"});
  int64_t used = 0, requested = 0, counted = 0;
  for (const auto& pod : pods) {
    auto it = usage.find(std::string(api::GetString(pod, {"metadata", "name"})));
    if (it == usage.end()) continue;  // No figures yet (just started): left out, as upstream.
    bool missing_request = false;
    for (const auto& c : api::GetArray(pod, {"spec", "containers"})) {
      std::string name(api::GetString(c, {"name"}));
      if (per_container && name != container) continue;
      auto u = it->second.find(name);
      if (u != it->second.end()) used += UsageOf(u->second, resource);
      int64_t req = Request(c, resource);
      missing_request = missing_request || req == 0;
      requested += req;
    }
    if (target == "Utilization" && missing_request) {
      r.error = fmt::format("missing request for {} in container of pod {}", resource,
                            api::GetString(pod, {"metadata", "name"}));
      return r;
    }
    ++counted;
  }
  if (counted == 0) {
    r.error = fmt::format(
        "unable to get metrics for resource {}: no metrics returned from resource metrics API",
        resource);
    return r;
  }
  double ratio = 0;
  json::object current_value;
  if (target == "Utilization") {
    int64_t want = api::GetInt(source, {"target", "averageUtilization"}, 0);
    if (want <= 0) {
      r.error = "averageUtilization must be set and positive";
      return r;
    }
    int64_t utilization = requested > 0 ? used * 100 / requested : 0;
    ratio = static_cast<double>(used) * 100 / static_cast<double>(requested) /
            static_cast<double>(want);
    current_value["averageUtilization"] = utilization;
    current_value["averageValue"] = Quantity(used / counted, resource);
    r.name = fmt::format("{} resource utilization (percentage of request)", resource);
  } else if (target == "AverageValue") {
    int64_t want = Milli(api::GetString(source, {"target", "averageValue"}));
    if (resource == "memory") want /= 1000;
    if (want <= 0) {
      r.error = "averageValue must be set and positive";
      return r;
    }
    ratio = static_cast<double>(used) / static_cast<double>(counted) / static_cast<double>(want);
    current_value["averageValue"] = Quantity(used / counted, resource);
    r.name = fmt::format("{} resource", resource);
  } else {
    r.error = fmt::format("target type {:?} is not one of Utilization, AverageValue", target);
    return r;
  }
  r.ok = true;
  r.replicas = std::abs(ratio - 1.0) <= tolerance
                   ? current
                   : static_cast<int64_t>(std::ceil(ratio * static_cast<double>(counted)));
  json::object status{{"name", resource}, {"current", std::move(current_value)}};
  if (per_container) status["container"] = container;
  r.status = json::object{{"type", type},
                          {per_container ? "containerResource" : "resource", std::move(status)}};
  return r;
}

// A quantity in thousandths as a quantity string ("1500m", "3").
std::string MilliQuantity(int64_t milli) {
  return milli % 1000 == 0 ? std::to_string(milli / 1000) : fmt::format("{}m", milli);
}

// The replicas that bring `ratio` (usage over target) to 1 for `count` pods,
// or `current` within the tolerance (upstream's replica calculator).
int64_t ByRatio(double ratio, int64_t count, int64_t current, double tolerance) {
  if (std::abs(ratio - 1.0) <= tolerance) return current;
  return static_cast<int64_t>(std::ceil(ratio * static_cast<double>(count)));
}

// Pods, Object and External metrics, from the custom and external metrics APIs.
MetricResult CalculateCustom(const json::value& metric, const std::vector<json::value>& pods,
                             const std::string& ns, const std::string& pod_selector,
                             int64_t current, double tolerance, const MetricsGet& get) {
  MetricResult r;
  std::string type(api::GetString(metric, {"type"}));
  r.reason = "FailedGet" + type + "Metric";
  const char* field = type == "Pods" ? "pods" : type == "Object" ? "object" : "external";
  const json::value* source = api::Find(metric, {field});
  if (!source || !source->is_object()) {
    r.error = fmt::format("metric of type {} has no {} field", type, field);
    return r;
  }
  const json::value* metric_id = api::Find(*source, {"metric"});
  std::string name(api::GetString(*source, {"metric", "name"}));
  std::string metric_selector;
  if (const auto* sel = api::Find(*source, {"metric", "selector"}); sel && sel->is_object())
    metric_selector = api::FormatLabelSelector(*sel);
  std::string_view target = api::GetString(*source, {"target", "type"});
  // custom.metrics.k8s.io at its newest version the cluster serves.
  auto get_custom = [&](const std::string& rest,
                        const std::vector<std::pair<std::string, std::string>>& q) {
    auto got = get("/apis/custom.metrics.k8s.io/v1beta2/" + rest, q);
    if (!got.ok() && got.status().code() == Code::kNotFound)
      got = get("/apis/custom.metrics.k8s.io/v1beta1/" + rest, q);
    return got;
  };
  json::object current_value;
  if (type == "Pods") {
    if (target != "AverageValue") {
      r.error = fmt::format("target type {:?} is not AverageValue", target);
      return r;
    }
    std::vector<std::pair<std::string, std::string>> query{{"labelSelector", pod_selector}};
    if (!metric_selector.empty()) query.emplace_back("metricLabelSelector", metric_selector);
    auto list = get_custom(fmt::format("namespaces/{}/pods/*/{}", ns, name), query);
    if (!list.ok()) {
      r.error = fmt::format("unable to get metric {}: {}", name, list.status().message());
      return r;
    }
    std::map<std::string, int64_t, std::less<>> values;
    for (const auto& item : api::GetArray(*list, {"items"})) {
      values[std::string(api::GetString(item, {"describedObject", "name"}))] =
          Milli(api::GetString(item, {"value"}));
    }
    int64_t sum = 0, counted = 0;
    for (const auto& pod : pods) {
      auto it = values.find(api::GetString(pod, {"metadata", "name"}));
      if (it == values.end()) continue;
      sum += it->second;
      ++counted;
    }
    if (counted == 0) {
      r.error =
          fmt::format("unable to get metric {}: no metrics returned for the selected pods", name);
      return r;
    }
    int64_t want = Milli(api::GetString(*source, {"target", "averageValue"}));
    if (want <= 0) {
      r.error = "averageValue must be set and positive";
      return r;
    }
    double ratio =
        static_cast<double>(sum) / static_cast<double>(counted) / static_cast<double>(want);
    r.replicas = ByRatio(ratio, counted, current, tolerance);
    current_value["averageValue"] = MilliQuantity(sum / counted);
    r.name = fmt::format("pods metric {}", name);
  } else {
    int64_t value = 0;
    json::value described;
    if (type == "Object") {
      described = api::Find(*source, {"describedObject"}) ? *api::Find(*source, {"describedObject"})
                                                          : json::value();
      std::string api_version(api::GetString(described, {"apiVersion"}));
      std::string kind(api::GetString(described, {"kind"}));
      const api::ResourceType* described_type =
          api::FindKind(api_version.empty() ? "v1" : api_version, kind);
      if (!described_type) {
        r.error = fmt::format("unable to get metric {}: unknown kind {} in {:?}", name, kind,
                              api_version);
        return r;
      }
      std::string resource = described_type->plural;
      if (!described_type->group.empty()) resource += "." + described_type->group;
      std::vector<std::pair<std::string, std::string>> query;
      if (!metric_selector.empty()) query.emplace_back("metricLabelSelector", metric_selector);
      auto list = get_custom(fmt::format("namespaces/{}/{}/{}/{}", ns, resource,
                                         api::GetString(described, {"name"}), name),
                             query);
      if (!list.ok()) {
        r.error = fmt::format("unable to get metric {}: {} {}: {}", name, kind,
                              api::GetString(described, {"name"}), list.status().message());
        return r;
      }
      const auto& items = api::GetArray(*list, {"items"});
      if (items.empty()) {
        r.error = fmt::format("unable to get metric {}: no metrics returned", name);
        return r;
      }
      value = Milli(api::GetString(items[0], {"value"}));
      r.name = fmt::format("{} metric {}", kind, name);
    } else {
      std::vector<std::pair<std::string, std::string>> query;
      if (!metric_selector.empty()) query.emplace_back("labelSelector", metric_selector);
      auto list = get(
          fmt::format("/apis/external.metrics.k8s.io/v1beta1/namespaces/{}/{}", ns, name), query);
      if (!list.ok()) {
        r.error = fmt::format("unable to get external metric {}/{}: {}", ns, name,
                              list.status().message());
        return r;
      }
      const auto& items = api::GetArray(*list, {"items"});
      if (items.empty()) {
        r.error = fmt::format("unable to get external metric {}/{}: no metrics returned", ns, name);
        return r;
      }
      for (const auto& item : items) value += Milli(api::GetString(item, {"value"}));
      r.name = fmt::format("external metric {}", name);
    }
    const int64_t ready = static_cast<int64_t>(pods.size());
    if (target == "Value") {
      int64_t want = Milli(api::GetString(*source, {"target", "value"}));
      if (want <= 0) {
        r.error = "value must be set and positive";
        return r;
      }
      r.replicas = ByRatio(static_cast<double>(value) / static_cast<double>(want), ready, current,
                           tolerance);
      current_value["value"] = MilliQuantity(value);
    } else if (target == "AverageValue") {
      int64_t want = Milli(api::GetString(*source, {"target", "averageValue"}));
      if (want <= 0) {
        r.error = "averageValue must be set and positive";
        return r;
      }
      double per_pod = static_cast<double>(value) / static_cast<double>(want);
      r.replicas = std::abs(per_pod / static_cast<double>(current) - 1.0) <= tolerance
                       ? current
                       : static_cast<int64_t>(std::ceil(per_pod));
      current_value["averageValue"] = MilliQuantity(value / std::max<int64_t>(current, 1));
    } else {
      r.error = fmt::format("target type {:?} is not one of Value, AverageValue", target);
      return r;
    }
  }
  r.ok = true;
  json::object status{{"metric", metric_id ? *metric_id : json::object{{"name", name}}},
                      {"current", std::move(current_value)}};
  if (type == "Object") status["describedObject"] = *api::Find(*source, {"describedObject"});
  r.status = json::object{{"type", type}, {field, std::move(status)}};
  return r;
}

// A direction's rules with upstream's defaults: scale up 0 s window, 100% or
// 4 pods per 15 s (Max); scale down 300 s window, 100% per 15 s.
struct Rules {
  int64_t window = 0;
  std::string select = "Max";
  std::vector<std::tuple<std::string, int64_t, int64_t>> policies;  // type, value, period s.
};

Rules RulesOf(const json::value& hpa, bool up) {
  Rules r;
  r.window = up ? 0 : 300;
  r.policies = up ? decltype(r.policies){{"Percent", 100, 15}, {"Pods", 4, 15}}
                  : decltype(r.policies){{"Percent", 100, 15}};
  const auto* rules = api::Find(hpa, {"spec", "behavior", up ? "scaleUp" : "scaleDown"});
  if (!rules || !rules->is_object()) return r;
  if (const auto* w = api::Find(*rules, {"stabilizationWindowSeconds"}); w && w->is_int64())
    r.window = w->get_int64();
  if (auto s = api::GetString(*rules, {"selectPolicy"}); !s.empty()) r.select = s;
  if (const auto* p = api::Find(*rules, {"policies"}); p && p->is_array()) {
    r.policies.clear();
    for (const auto& policy : p->get_array()) {
      r.policies.emplace_back(std::string(api::GetString(policy, {"type"})),
                              api::GetInt(policy, {"value"}, 0),
                              api::GetInt(policy, {"periodSeconds"}, 15));
    }
  }
  return r;
}

}  // namespace

PodMetricsSource MetricsApiSource(client::Client* client) {
  return [client](const std::string& ns) -> Result<PodMetrics> {
    const api::ResourceType* type = api::FindResource("metrics.k8s.io", "v1beta1", "pods");
    if (!type) return Status(Code::kNotFound, "metrics.k8s.io is not served");
    KISO_ASSIGN_OR_RETURN(auto list, client->List(*type, ns));
    PodMetrics out;
    for (const auto& item : api::GetArray(list, {"items"})) {
      auto& pod = out[std::string(api::GetString(item, {"metadata", "name"}))];
      for (const auto& c : api::GetArray(item, {"containers"})) {
        pod[std::string(api::GetString(c, {"name"}))] = {
            Milli(api::GetString(c, {"usage", "cpu"})),
            Milli(api::GetString(c, {"usage", "memory"})) / 1000};
      }
    }
    return out;
  };
}

HorizontalPodAutoscalerController::HorizontalPodAutoscalerController(
    client::Client* client, Clock* clock, PodMetricsSource metrics, HpaOptions options,
    client::SharedInformers* shared)
    : Controller(client, "horizontal-pod-autoscaler", options.workers, shared),
      clock_(clock),
      metrics_(std::move(metrics)),
      options_(std::move(options)) {
  hpas_ = Watch(Hpas(), [this](const json::value*, const json::value& hpa, bool deleted) {
    if (deleted) {
      std::lock_guard lock(history_mu_);
      history_.erase(KeyOf(hpa));
    } else {
      Enqueue(KeyOf(hpa));
    }
  });
  pods_ = Watch(Pods(), [](const json::value*, const json::value&, bool) {});
}

Status HorizontalPodAutoscalerController::Reconcile(const std::string& key) {
  const auto split = SplitKey(key);  // Not a structured binding: lambdas capture these.
  const std::string ns(split.first), name(split.second);
  auto found = hpas_->Get(ns, name);
  if (!found || !api::GetString(*found, {"metadata", "deletionTimestamp"}).empty())
    return Status::Ok();
  EnqueueAfter(key, options_.sync_period);  // Level-triggered on time too: usage changes.
  const json::value& hpa = *found;
  const auto now = clock_->WallNow();
  const std::string now_text = FormatRfc3339(now);
  json::object status;
  if (const auto* s = api::Find(hpa, {"status"}); s && s->is_object()) status = s->get_object();
  json::array conditions;
  if (const auto* c = status.if_contains("conditions"); c && c->is_array())
    conditions = c->get_array();
  auto write_status = [&]() -> Status {
    status["conditions"] = conditions;
    status["observedGeneration"] = api::GetInt(hpa, {"metadata", "generation"}, 1);
    // Unchanged: no write (its watch event would bring the HPA back here at once).
    if (const auto* was = api::Find(hpa, {"status"}); was && *was == json::value(status))
      return Status::Ok();
    json::value next = hpa;
    next.as_object()["status"] = status;
    auto res = client()->Update(Hpas(), ns, next, "status");
    if (!res.ok() && res.status().code() == Code::kConflict) {
      // The cache was behind (its own last write): this status onto the HPA as it is now.
      auto fresh = client()->Get(Hpas(), ns, name);
      if (!fresh.ok())
        return fresh.status().code() == Code::kNotFound ? Status::Ok() : fresh.status();
      fresh->as_object()["status"] = status;
      res = client()->Update(Hpas(), ns, *fresh, "status");
    }
    return res.ok() || res.status().code() == Code::kNotFound ? Status::Ok() : res.status();
  };

  // The target: its replicas and the pods its selector picks.
  std::string kind(api::GetString(hpa, {"spec", "scaleTargetRef", "kind"}));
  std::string target_name(api::GetString(hpa, {"spec", "scaleTargetRef", "name"}));
  const api::ResourceType* type =
      TargetType(api::GetString(hpa, {"spec", "scaleTargetRef", "apiVersion"}), kind);
  auto scale = type ? client()->Get(*type, ns, target_name, "scale")
                    : Result<json::value>(MakeStatus(
                          Code::kNotFound, "no scale subresource for kind {:?} in {:?}", kind,
                          api::GetString(hpa, {"spec", "scaleTargetRef", "apiVersion"})));
  if (!scale.ok()) {
    SetCondition(conditions, "AbleToScale", false, "FailedGetScale",
                 fmt::format("the HPA controller was unable to get the target's current scale: {}",
                             scale.status().message()),
                 now_text);
    return write_status();
  }
  const int64_t current = api::GetInt(*scale, {"spec", "replicas"}, 0);
  status["currentReplicas"] = current;
  SetCondition(conditions, "AbleToScale", true, "SucceededGetScale",
               "the HPA controller was able to get the target's current scale", now_text);
  // The pods its scale's selector picks (a string, as the Scale object carries it).
  auto selector = api::LabelSelector::Parse(api::GetString(*scale, {"status", "selector"}));
  if (!selector.ok() || api::GetString(*scale, {"status", "selector"}).empty()) {
    SetCondition(conditions, "ScalingActive", false, "InvalidSelector",
                 fmt::format("the HPA target's scale is missing a selector{}",
                             selector.ok() ? "" : ": " + selector.status().message()),
                 now_text);
    return write_status();
  }
  std::vector<json::value> pods;
  for (const auto& shared : pods_->Items()) {  // Shared: only the selected ones are copied.
    const json::value& pod = *shared;
    std::string_view phase = api::GetString(pod, {"status", "phase"});
    if (api::GetString(pod, {"metadata", "namespace"}) != ns || phase == "Failed" ||
        phase == "Succeeded" || !api::GetString(pod, {"metadata", "deletionTimestamp"}).empty())
      continue;
    if (selector->Matches(api::GetLabels(pod))) pods.push_back(pod);
  }
  if (current == 0) {
    SetCondition(conditions, "ScalingActive", false, "ScalingDisabled",
                 "scaling is disabled since the replica count of the target is zero", now_text);
    status["desiredReplicas"] = 0;
    return write_status();
  }

  // Each metric's recommendation; the largest wins.
  std::optional<Result<PodMetrics>> usage;  // Read once, when a resource metric asks.
  const MetricsGet get = options_.get_metrics ? options_.get_metrics
                                              : [this](const std::string& path, const auto& query) {
                                                  return client()->GetPath(path, query);
                                                };
  const std::string pod_selector(api::GetString(*scale, {"status", "selector"}));
  int64_t desired = -1;
  std::string reason;
  json::array current_metrics;
  std::string error;
  std::string error_reason;
  for (const auto& metric : api::GetArray(hpa, {"spec", "metrics"})) {
    std::string_view type = api::GetString(metric, {"type"});
    MetricResult r;
    if (type == "Pods" || type == "Object" || type == "External") {
      r = CalculateCustom(metric, pods, ns, pod_selector, current, options_.tolerance, get);
    } else {
      if (!usage) usage = metrics_(ns);
      if (usage->ok()) {
        r = Calculate(metric, pods, **usage, current, options_.tolerance);
      } else {
        r.error = usage->status().message();
      }
    }
    if (!r.ok) {
      error = r.error;
      error_reason = r.reason;
      continue;
    }
    current_metrics.push_back(std::move(r.status));
    if (r.replicas > desired) {
      desired = r.replicas;
      reason = fmt::format("{} {} target", r.name, r.replicas > current ? "above" : "below");
    }
  }
  if (desired < 0) {
    if (error_reason.empty()) error_reason = "FailedGetResourceMetric";
    SetCondition(conditions, "ScalingActive", false, error_reason,
                 error.empty() ? "no metrics" : error, now_text);
    RecordEvent(hpa, "Warning", error_reason, error);
    status["desiredReplicas"] = current;
    return write_status();
  }
  status["currentMetrics"] = std::move(current_metrics);
  SetCondition(conditions, "ScalingActive", true, "ValidMetricFound",
               "the HPA was able to successfully calculate a replica count", now_text);

  // Behavior: stabilization windows, then the scaling policies' rates.
  const Rules up = RulesOf(hpa, true);
  const Rules down = RulesOf(hpa, false);
  int64_t stabilized = current;
  int64_t limited = current;
  {
    std::lock_guard lock(history_mu_);
    History& h = history_[key];
    h.recommendations.push_back({now, desired});
    const auto oldest = now - seconds(std::max(up.window, down.window));
    while (!h.recommendations.empty() && h.recommendations.front().at < oldest)
      h.recommendations.pop_front();
    int64_t up_rec = desired;
    int64_t down_rec = desired;
    for (const auto& r : h.recommendations) {
      if (r.at >= now - seconds(up.window)) up_rec = std::min(up_rec, r.replicas);
      if (r.at >= now - seconds(down.window)) down_rec = std::max(down_rec, r.replicas);
    }
    if (stabilized < up_rec) stabilized = up_rec;
    if (stabilized > down_rec) stabilized = down_rec;
    // Rates: relative to the replicas at the start of each policy's period.
    auto changed_since = [&](int64_t period, bool growing) {
      int64_t sum = 0;
      for (const auto& e : h.events) {
        if (e.at >= now - seconds(period) && (e.change > 0) == growing) sum += e.change;
      }
      return sum;
    };
    // The direction's policies bound the change: each allows so many pods or
    // percent from the replicas at its period's start; selectPolicy Max takes
    // the policy that allows the most change, Min the least.
    auto rate_limited = [&](const Rules& rules, bool growing) {
      if (rules.select == "Disabled") return current;
      if (rules.policies.empty()) return stabilized;
      const int64_t sign = growing ? 1 : -1;
      const bool take_min = growing == (rules.select == "Min");
      int64_t bound = take_min ? INT64_MAX : INT64_MIN;
      for (const auto& [policy, value, period] : rules.policies) {
        int64_t start = current - changed_since(period, growing);
        int64_t allowed =
            policy == "Pods"
                ? start + sign * value
                : static_cast<int64_t>(std::ceil(static_cast<double>(start) *
                                                 (1 + static_cast<double>(sign * value) / 100.0)));
        bound = take_min ? std::min(bound, allowed) : std::max(bound, allowed);
      }
      return growing ? std::min(stabilized, bound) : std::max(stabilized, bound);
    };
    limited = stabilized > current   ? rate_limited(up, true)
              : stabilized < current ? rate_limited(down, false)
                                     : stabilized;
  }
  const int64_t min_replicas = api::GetInt(hpa, {"spec", "minReplicas"}, 1);
  const int64_t max_replicas = api::GetInt(hpa, {"spec", "maxReplicas"}, 1);
  int64_t final_replicas = std::clamp(limited, min_replicas, std::max(min_replicas, max_replicas));
  if (limited > max_replicas) {
    SetCondition(conditions, "ScalingLimited", true, "TooManyReplicas",
                 "the desired replica count is more than the maximum replica count", now_text);
  } else if (limited < min_replicas) {
    SetCondition(conditions, "ScalingLimited", true, "TooFewReplicas",
                 "the desired replica count is less than the minimum replica count", now_text);
  } else if (limited != stabilized && stabilized != current) {
    SetCondition(conditions, "ScalingLimited", true,
                 stabilized > current ? "ScaleUpLimit" : "ScaleDownLimit",
                 "the desired replica count is changing faster than the policies allow", now_text);
  } else {
    SetCondition(conditions, "ScalingLimited", false, "DesiredWithinRange",
                 "the desired count is within the acceptable range", now_text);
  }
  status["desiredReplicas"] = final_replicas;
  if (final_replicas != current) {
    json::value patch = json::object{{"spec", json::object{{"replicas", final_replicas}}}};
    auto scaled =
        client()->Patch(*type, ns, target_name, client::PatchType::kMerge, patch, "scale");
    if (!scaled.ok()) {
      SetCondition(conditions, "AbleToScale", false, "FailedUpdateScale",
                   fmt::format("the HPA controller was unable to update the target scale: {}",
                               scaled.status().message()),
                   now_text);
      (void)write_status();
      return scaled.status();
    }
    {
      std::lock_guard lock(history_mu_);
      History& h = history_[key];
      h.events.push_back({now, final_replicas - current});
      while (!h.events.empty() && h.events.front().at < now - seconds(1800)) h.events.pop_front();
    }
    RecordEvent(hpa, "Normal", "SuccessfulRescale",
                fmt::format("New size: {}; reason: {}", final_replicas,
                            final_replicas > current ? reason : "All metrics below target"));
    SetCondition(
        conditions, "AbleToScale", true, "SucceededRescale",
        fmt::format("the HPA controller was able to update the target scale to {}", final_replicas),
        now_text);
    status["lastScaleTime"] = now_text;
  }
  return write_status();
}

}  // namespace kiso::controller
