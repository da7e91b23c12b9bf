#include "api/validation.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>
#include <set>

#include "api/custom_resource.h"
#include "api/object.h"
#include "api/selector.h"
#include "common/base64.h"
#include "common/cidr.h"
#include "common/cron.h"

namespace kiso::api {

namespace json = boost::json;

namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool IsLabel(std::string_view v, bool alpha_first) {
  if (v.empty() || v.size() > 63) return false;
  if (!IsLowerAlnum(v.front()) || !IsLowerAlnum(v.back())) return false;
  if (alpha_first && !(v.front() >= 'a' && v.front() <= 'z')) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

}  // namespace

std::string CheckDns1123Label(std::string_view value) {
  if (value.size() > 63) return "must be no more than 63 characters";
  if (IsLabel(value, false)) return "";
  return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
         "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
         "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
}

std::string CheckDns1035Label(std::string_view value) {
  if (value.size() > 63) return "must be no more than 63 characters";
  if (IsLabel(value, true)) return "";
  return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
         "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
         "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
}

// Names that need only be one path segment (RBAC's roles and bindings,
// CertificateSigningRequests: "system:controller:…").
std::string CheckPathSegmentName(std::string_view value) {
  if (value == "." || value == "..") return fmt::format("may not be '{}'", value);
  if (value.find('/') != std::string_view::npos) return "may not contain '/'";
  if (value.find('%') != std::string_view::npos) return "may not contain '%'";
  return "";
}

std::string CheckDns1123Subdomain(std::string_view value) {
  if (value.size() > 253) return "must be no more than 253 characters";
  bool ok = !value.empty();
  size_t start = 0;
  while (ok && start <= value.size()) {
    size_t dot = value.find('.', start);
    std::string_view part = value.substr(start, dot == std::string_view::npos ? dot : dot - start);
    ok = !part.empty() && IsLowerAlnum(part.front()) && IsLowerAlnum(part.back()) &&
         std::all_of(part.begin(), part.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (ok) return "";
  return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
         "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
         "regex used for validation is "
         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
}

std::string PodQosClass(const json::object& spec) {
  bool any = false, guaranteed = true;
  for (std::string_view list : {"initContainers", "containers"}) {
    const auto* cs = spec.if_contains(list);
    if (!cs || !cs->is_array()) continue;
    for (const auto& c : cs->get_array()) {
      for (std::string_view resource : {"cpu", "memory"}) {
        auto amount = [&](std::string_view kind) -> std::optional<long double> {
          const auto* q = Find(c, {"resources", kind, resource});
          long double milli = 0;
          if (!q || !q->is_string() || !ParseQuantityMilli(q->get_string(), &milli) || milli == 0)
            return std::nullopt;
          return milli;
        };
        auto limit = amount("limits");
        auto request = amount("requests");
        if (!request) request = limit;  // Defaulted from the limit.
        any = any || request || limit;
        // In whole milli-units: "1" and "1000m" are the same amount.
        guaranteed =
            guaranteed && limit && request && std::llround(*request) == std::llround(*limit);
      }
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

bool ParseQuantityMilli(std::string_view text, long double* milli) {
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  size_t digits_start = i;
  bool dot = false;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    if (text[i] == '.') {
      if (dot) return false;
      dot = true;
    }
    ++i;
  }
  if (i == digits_start || (i - digits_start == 1 && dot)) return false;
  // strtold, not stold: a number too large for a long double is inf, not an exception.
  std::string digits(text.substr(0, i));
  long double number = std::strtold(digits.c_str(), nullptr);
  std::string_view suffix = text.substr(i);
  static constexpr std::pair<std::string_view, long double> kSuffixes[] = {
      {"", 1},
      {"n", 1e-9L},
      {"u", 1e-6L},
      {"m", 1e-3L},
      {"k", 1e3L},
      {"M", 1e6L},
      {"G", 1e9L},
      {"T", 1e12L},
      {"P", 1e15L},
      {"E", 1e18L},
      {"Ki", 1024.0L},
      {"Mi", 1048576.0L},
      {"Gi", 1073741824.0L},
      {"Ti", 1099511627776.0L},
      {"Pi", 1125899906842624.0L},
      {"Ei", 1152921504606846976.0L}};
  for (const auto& [s, factor] : kSuffixes) {
    if (suffix == s) {
      *milli = number * factor * 1000;
      return true;
    }
  }
  if (suffix.size() >= 2 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    std::string_view exp = suffix.substr(1);
    int e = 0;
    auto [end, ec] =
        std::from_chars(exp.data() + (exp[0] == '+' ? 1 : 0), exp.data() + exp.size(), e);
    if (ec != std::errc() || end != exp.data() + exp.size()) return false;
    *milli = number * std::pow(10.0L, std::clamp(e, -10000, 10000)) * 1000;
    return true;
  }
  return false;
}

bool IsBootstrapToken(std::string_view token) {
  if (token.size() != 23 || token[6] != '.') return false;
  for (size_t i = 0; i < token.size(); ++i) {
    char c = token[i];
    if (i != 6 && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

int64_t SaturatedInt64(long double value) {
  if (std::isnan(value)) return 0;
  if (value >= 9223372036854775807.0L) return INT64_MAX;
  if (value <= -9223372036854775808.0L) return INT64_MIN;
  return static_cast<int64_t>(value);
}

// ---- Defaults ----

namespace {

// Go's defaulters fill a field that is unset, and unset is the zero value: a
// field absent, null, or (for a string) "" is defaulted alike.
void SetIfMissing(json::object& obj, std::string_view key, json::value value) {
  const json::value* current = obj.if_contains(key);
  bool unset = !current || current->is_null() ||
               (value.is_string() && current->is_string() && current->get_string().empty());
  if (unset) obj[key] = std::move(value);
}

void DefaultContainer(json::object& c) {
  std::string_view image = c.contains("image") && c.at("image").is_string()
                               ? std::string_view(c.at("image").get_string())
                               : "";
  // No tag (or :latest) and no digest → Always, else IfNotPresent (core/v1 defaults.go).
  std::string_view last =
      image.substr(image.rfind('/') == std::string_view::npos ? 0 : image.rfind('/') + 1);
  bool latest = image.find('@') == std::string_view::npos &&
                (last.find(':') == std::string_view::npos || last.ends_with(":latest"));
  SetIfMissing(c, "imagePullPolicy", latest ? "Always" : "IfNotPresent");
  SetIfMissing(c, "terminationMessagePath", "/dev/termination-log");
  SetIfMissing(c, "terminationMessagePolicy", "File");
  SetIfMissing(c, "resources", json::object());
  if (auto* ports = c.if_contains("ports"); ports && ports->is_array()) {
    for (auto& p : ports->get_array()) {
      if (p.is_object()) SetIfMissing(p.get_object(), "protocol", "TCP");
    }
  }
}

// A pod's container with a limit and no request for a resource requests its
// limit (SetDefaults_Pod; a template's containers are left as written).
void DefaultRequestsFromLimits(json::object& spec) {
  for (std::string_view list : {"containers", "initContainers"}) {
    auto* cs = spec.if_contains(list);
    if (!cs || !cs->is_array()) continue;
    for (auto& c : cs->get_array()) {
      auto* res = c.is_object() ? c.get_object().if_contains("resources") : nullptr;
      if (!res || !res->is_object()) continue;
      const auto* found = res->get_object().if_contains("limits");
      if (!found || !found->is_object() || found->get_object().empty()) continue;
      // A copy: adding "requests" may move the other members of `resources`.
      json::object limits = found->get_object();
      auto& requests = res->get_object()["requests"];
      if (!requests.is_object()) requests = json::object();
      for (const auto& [name, q] : limits) SetIfMissing(requests.get_object(), name, q);
    }
  }
}

void DefaultPodSpec(json::object& spec) {
  SetIfMissing(spec, "restartPolicy", "Always");
  SetIfMissing(spec, "terminationGracePeriodSeconds", 30);
  SetIfMissing(spec, "dnsPolicy", "ClusterFirst");
  SetIfMissing(spec, "securityContext", json::object());
  SetIfMissing(spec, "schedulerName", "default-scheduler");
  SetIfMissing(spec, "enableServiceLinks", true);
  for (std::string_view list : {"containers", "initContainers"}) {
    if (auto* cs = spec.if_contains(list); cs && cs->is_array()) {
      for (auto& c : cs->get_array()) {
        if (c.is_object()) DefaultContainer(c.get_object());
      }
    }
  }
}

// A Container item of a LimitRange: its default limit is its max, its
// default request its default limit, else its min (SetDefaults_LimitRangeItem).
void DefaultLimitRange(json::object& lr) {
  auto* spec = lr.if_contains("spec");
  if (!spec || !spec->is_object()) return;
  auto* limits = spec->get_object().if_contains("limits");
  if (!limits || !limits->is_array()) return;
  for (auto& item : limits->get_array()) {
    if (!item.is_object() || GetString(item, {"type"}) != "Container") continue;
    auto& o = item.get_object();
    auto fill = [&](const char* from, const char* to) {
      const auto* found = o.if_contains(from);
      if (!found || !found->is_object() || found->get_object().empty()) return;
      // A copy: adding `to` to the item may move its other members.
      json::object src = found->get_object();
      json::value& dst = o[to];
      if (!dst.is_object()) dst = json::object();
      for (const auto& [name, q] : src) SetIfMissing(dst.get_object(), name, q);
    };
    fill("max", "default");
    fill("default", "defaultRequest");
    fill("min", "defaultRequest");
  }
}

void DefaultTemplate(json::object& spec) {
  auto* tmpl = spec.if_contains("template");
  if (!tmpl || !tmpl->is_object()) return;
  if (auto* ps = tmpl->get_object().if_contains("spec"); ps && ps->is_object())
    DefaultPodSpec(ps->get_object());
}

}  // namespace

void ApplyDefaults(const ResourceType& type, json::object& obj) {
  // ObjectMeta's lists and maps are omitempty in Go: an emptied one (the last
  // finalizer or owner removed by a patch) is not stored as [] or {}.
  if (auto* meta = obj.if_contains("metadata"); meta && meta->is_object()) {
    for (std::string_view field : {"labels", "annotations", "ownerReferences", "finalizers"}) {
      auto* v = meta->get_object().if_contains(field);
      if (v && ((v->is_array() && v->get_array().empty()) ||
                (v->is_object() && v->get_object().empty()))) {
        meta->get_object().erase(field);
      }
    }
  }
  if (type.custom) return;  // Its schema's defaults apply (api/structural.h).
  const std::string& kind = type.kind;
  if (kind == "CustomResourceDefinition" && type.group == "apiextensions.k8s.io") DefaultCrd(obj);
  if (kind == "Pod") {
    DefaultPodSpec(Child(obj, "spec"));
    auto& spec = obj.at("spec").get_object();
    DefaultRequestsFromLimits(spec);
    // ServiceAccount admission.
    SetIfMissing(spec, "serviceAccountName", "default");
    SetIfMissing(spec, "serviceAccount", spec.at("serviceAccountName"));
    SetIfMissing(spec, "priority", 0);
    // DefaultTolerationSeconds admission: tolerate an unreachable or not-ready node for 300 s.
    json::value& tolerations = spec["tolerations"];
    if (!tolerations.is_array()) tolerations = json::array();
    for (std::string_view key :
         {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}) {
      bool present = false;
      for (const auto& t : tolerations.get_array()) {
        present |= GetString(t, {"key"}) == key &&
                   (GetString(t, {"effect"}) == "NoExecute" || GetString(t, {"effect"}).empty());
      }
      if (!present) {
        tolerations.get_array().push_back(json::object{{"key", key},
                                                       {"operator", "Exists"},
                                                       {"effect", "NoExecute"},
                                                       {"tolerationSeconds", 300}});
      }
    }
    auto& status = Child(obj, "status");
    SetIfMissing(status, "phase", "Pending");
    status["qosClass"] = PodQosClass(spec);
  } else if (kind == "Deployment") {
    auto& spec = Child(obj, "spec");
    SetIfMissing(spec, "replicas", 1);
    auto& strategy = Child(spec, "strategy");
    SetIfMissing(strategy, "type", "RollingUpdate");
    if (strategy.at("type") == "RollingUpdate") {
      auto& ru = Child(strategy, "rollingUpdate");
      SetIfMissing(ru, "maxUnavailable", "25%");
      SetIfMissing(ru, "maxSurge", "25%");
    }
    SetIfMissing(spec, "revisionHistoryLimit", 10);
    SetIfMissing(spec, "progressDeadlineSeconds", 600);
    DefaultTemplate(spec);
    Child(obj, "status");
  } else if (kind == "HorizontalPodAutoscaler") {
    // autoscaling/v2's defaults: one replica at least, and 80% CPU when no metric is named.
    auto& spec = Child(obj, "spec");
    SetIfMissing(spec, "minReplicas", 1);
    json::value& metrics = spec["metrics"];
    if (!metrics.is_array() || metrics.get_array().empty()) {
      metrics = json::array{json::object{
          {"type", "Resource"},
          {"resource", json::object{{"name", "cpu"},
                                    {"target", json::object{{"type", "Utilization"},
                                                            {"averageUtilization", 80}}}}}}};
    }
    SetIfMissing(Child(obj, "status"), "desiredReplicas", 0);  // Not omitempty in Go.
  } else if (kind == "ReplicaSet" || kind == "ReplicationController") {
    auto& spec = Child(obj, "spec");
    SetIfMissing(spec, "replicas", 1);
    if (kind == "ReplicationController" && !spec.contains("selector")) {
      if (const auto* l = Find(spec, {"template", "metadata", "labels"})) spec["selector"] = *l;
    }
    DefaultTemplate(spec);
    // Go serialises these status fields even when zero (no omitempty).
    SetIfMissing(Child(obj, "status"), "replicas", 0);
  } else if (kind == "DaemonSet") {
    auto& spec = Child(obj, "spec");
    auto& strategy = Child(spec, "updateStrategy");
    SetIfMissing(strategy, "type", "RollingUpdate");
    if (strategy.at("type") == "RollingUpdate") {
      auto& ru = Child(strategy, "rollingUpdate");
      SetIfMissing(ru, "maxUnavailable", 1);
      SetIfMissing(ru, "maxSurge", 0);
    }
    SetIfMissing(spec, "revisionHistoryLimit", 10);
    DefaultTemplate(spec);
    auto& status = Child(obj, "status");
    for (std::string_view f :
         {"currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"})
      SetIfMissing(status, f, 0);
  } else if (kind == "StatefulSet") {
    auto& spec = Child(obj, "spec");
    SetIfMissing(spec, "replicas", 1);
    SetIfMissing(spec, "podManagementPolicy", "OrderedReady");
    auto& retention = Child(spec, "persistentVolumeClaimRetentionPolicy");
    SetIfMissing(retention, "whenDeleted", "Retain");
    SetIfMissing(retention, "whenScaled", "Retain");
    if (auto* templates = spec.if_contains("volumeClaimTemplates");
        templates && templates->is_array()) {
      for (auto& t : templates->get_array()) {
        if (!t.is_object()) continue;
        SetIfMissing(Child(t.get_object(), "spec"), "volumeMode", "Filesystem");
        SetIfMissing(Child(t.get_object(), "status"), "phase", "Pending");
      }
    }
    auto& strategy = Child(spec, "updateStrategy");
    SetIfMissing(strategy, "type", "RollingUpdate");
    if (strategy.at("type") == "RollingUpdate")
      SetIfMissing(Child(strategy, "rollingUpdate"), "partition", 0);
    SetIfMissing(spec, "revisionHistoryLimit", 10);
    DefaultTemplate(spec);
    auto& status = Child(obj, "status");
    SetIfMissing(status, "replicas", 0);
    SetIfMissing(status, "availableReplicas", 0);
  } else if (kind == "PersistentVolumeClaim") {
    SetIfMissing(Child(obj, "spec"), "volumeMode", "Filesystem");
    SetIfMissing(Child(obj, "status"), "phase", "Pending");
  } else if (kind == "PersistentVolume") {
    auto& spec = Child(obj, "spec");
    SetIfMissing(spec, "persistentVolumeReclaimPolicy", "Retain");
    SetIfMissing(spec, "volumeMode", "Filesystem");
    SetIfMissing(Child(obj, "status"), "phase", "Pending");
  } else if (kind == "StorageClass") {
    SetIfMissing(obj, "reclaimPolicy", "Delete");
    SetIfMissing(obj, "volumeBindingMode", "Immediate");
  } else if (kind == "PodTemplate") {
    DefaultTemplate(obj);  // Its `template` is at the top.
  } else if (kind == "CronJob") {
    auto& spec = Child(obj, "spec");
    SetIfMissing(spec, "concurrencyPolicy", "Allow");
    SetIfMissing(spec, "suspend", false);
    SetIfMissing(spec, "successfulJobsHistoryLimit", 3);
    SetIfMissing(spec, "failedJobsHistoryLimit", 1);
    DefaultTemplate(Child(Child(spec, "jobTemplate"), "spec"));
    Child(obj, "status");
  } else if (kind == "Job") {
    auto& spec = Child(obj, "spec");
    SetIfMissing(spec, "completions", 1);
    SetIfMissing(spec, "parallelism", 1);
    // With a limit per index, the Job-wide one is off unless given (upstream: MaxInt32).
    SetIfMissing(spec, "backoffLimit", spec.contains("backoffLimitPerIndex") ? 2147483647 : 6);
    SetIfMissing(spec, "completionMode", "NonIndexed");
    SetIfMissing(spec, "suspend", false);
    DefaultTemplate(spec);
    Child(obj, "status");
  } else if (kind == "Service") {
    auto& spec = Child(obj, "spec");
    SetIfMissing(spec, "type", "ClusterIP");
    SetIfMissing(spec, "sessionAffinity", "None");
    SetIfMissing(spec, "internalTrafficPolicy", "Cluster");
    if (auto* ports = spec.if_contains("ports"); ports && ports->is_array()) {
      for (auto& p : ports->get_array()) {
        if (!p.is_object()) continue;
        auto& port = p.get_object();
        SetIfMissing(port, "protocol", "TCP");
        if (port.contains("port")) SetIfMissing(port, "targetPort", port.at("port"));
      }
    }
    auto& status = Child(obj, "status");
    SetIfMissing(status, "loadBalancer", json::object());
  } else if (kind == "LimitRange") {
    DefaultLimitRange(obj);
  } else if (kind == "Namespace") {
    auto& meta = Child(obj, "metadata");
    auto& labels = Child(meta, "labels");
    if (const auto* name = meta.if_contains("name"); name && name->is_string())
      labels["kubernetes.io/metadata.name"] = *name;
    auto& spec = Child(obj, "spec");
    SetIfMissing(spec, "finalizers", json::array({"kubernetes"}));
    auto& status = Child(obj, "status");
    SetIfMissing(status, "phase", "Active");
  } else if (kind == "Secret") {
    SetIfMissing(obj, "type", "Opaque");
    // stringData is write-only: merged into data (its values win), as
    // upstream's conversion does on every write.
    if (const auto* text = obj.if_contains("stringData"); text && text->is_object()) {
      json::object merged = text->get_object();
      obj.erase("stringData");
      auto& data = Child(obj, "data");
      for (const auto& [k, v] : merged) {
        if (v.is_string()) data[k] = Base64Encode(v.get_string());
      }
    }
  } else if (kind == "Node") {
    // podCIDR and podCIDRs say the same (upstream's v1 conversion keeps them so):
    // either one given fills in the other.
    auto& spec = Child(obj, "spec");
    const auto* one = spec.if_contains("podCIDR");
    const auto* many = spec.if_contains("podCIDRs");
    const bool has_one = one && one->is_string() && !one->get_string().empty();
    const bool has_many = many && many->is_array() && !many->get_array().empty();
    if (has_one && !has_many) {
      spec["podCIDRs"] = json::array{*one};
    } else if (has_many && !has_one && many->get_array()[0].is_string()) {
      spec["podCIDR"] = many->get_array()[0];
    }
    Child(obj, "status");
  }
}

void PrepareJobForCreate(json::object& job) {
  auto& spec = Child(job, "spec");
  if (const auto* manual = spec.if_contains("manualSelector"); manual && *manual == true) return;
  std::string uid(GetString(job, {"metadata", "uid"}));
  std::string name(GetString(job, {"metadata", "name"}));
  spec["selector"] =
      json::object{{"matchLabels", json::object{{"batch.kubernetes.io/controller-uid", uid}}}};
  auto& labels = Child(Child(Child(spec, "template"), "metadata"), "labels");
  labels["batch.kubernetes.io/controller-uid"] = uid;
  labels["batch.kubernetes.io/job-name"] = name;
  labels["controller-uid"] = uid;
  labels["job-name"] = name;
}

// ---- Validation ----

namespace {

bool IsAccessMode(const json::value& m) {
  return m == "ReadWriteOnce" || m == "ReadOnlyMany" || m == "ReadWriteMany" ||
         m == "ReadWriteOncePod";
}

// The sources a PersistentVolume may name (PersistentVolumeSource).
constexpr std::string_view kVolumeSources[] = {"gcePersistentDisk",
                                               "awsElasticBlockStore",
                                               "hostPath",
                                               "glusterfs",
                                               "nfs",
                                               "rbd",
                                               "iscsi",
                                               "cinder",
                                               "cephfs",
                                               "fc",
                                               "flocker",
                                               "flexVolume",
                                               "azureFile",
                                               "vsphereVolume",
                                               "quobyte",
                                               "azureDisk",
                                               "photonPersistentDisk",
                                               "portworxVolume",
                                               "scaleIO",
                                               "local",
                                               "storageos",
                                               "csi"};

// An IPv4 or IPv6 CIDR as address bytes and prefix length (the host part masked off).
struct Cidr {
  int family = AF_INET;
  std::array<unsigned char, 16> bytes{};
  int bits = 0;
  bool Within(const Cidr& outer) const {
    for (int b = 0; b < outer.bits; ++b) {
      int mask = 0x80 >> (b % 8);
      if ((bytes[b / 8] & mask) != (outer.bytes[b / 8] & mask)) return false;
    }
    return true;
  }
};

std::optional<Cidr> CidrRange(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string address(text.substr(0, slash));
  Cidr c;
  c.family = address.find(':') == std::string::npos ? AF_INET : AF_INET6;
  if (inet_pton(c.family, address.c_str(), c.bytes.data()) != 1) return std::nullopt;
  std::string_view bits = text.substr(slash + 1);
  auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), c.bits);
  if (ec != std::errc() || end != bits.data() + bits.size() || bits.empty() || c.bits < 0 ||
      c.bits > (c.family == AF_INET ? 32 : 128))
    return std::nullopt;
  return c;
}

class Validator {
 public:
  std::vector<Cause> causes;

  // ValidateHorizontalPodAutoscalerSpec: 1 <= minReplicas <= maxReplicas, the target named.
  void Autoscaler(const json::object& obj) {
    const json::value* min = Find(obj, {"spec", "minReplicas"});
    const json::value* max = Find(obj, {"spec", "maxReplicas"});
    json::value max_value = max && max->is_int64() ? *max : json::value(0);
    if (min && min->is_int64() && min->get_int64() < 1)
      InvalidValue("spec.minReplicas", *min, "must be greater than or equal to 1");
    if (max_value.get_int64() < 1)
      InvalidValue("spec.maxReplicas", max_value, "must be greater than 0");
    if (min && min->is_int64() && max_value.get_int64() < min->get_int64()) {
      InvalidValue("spec.maxReplicas", max_value, "must be greater than or equal to `minReplicas`");
    }
    for (std::string_view f : {"kind", "name"}) {
      if (GetString(obj, {"spec", "scaleTargetRef", f}).empty())
        Required(fmt::format("spec.scaleTargetRef.{}", f));
    }
  }

  void Required(const std::string& field, std::string_view detail = "") {
    causes.push_back({"FieldValueRequired",
                      detail.empty() ? "Required value" : fmt::format("Required value: {}", detail),
                      field});
  }
  void InvalidValue(const std::string& field, const json::value& value, std::string_view detail) {
    std::string shown = value.is_string() ? fmt::format("\"{}\"", value.get_string().c_str())
                                          : json::serialize(value);
    causes.push_back(
        {"FieldValueInvalid", fmt::format("Invalid value: {}: {}", shown, detail), field});
  }
  void Unsupported(const std::string& field, const json::value& value,
                   const std::vector<std::string_view>& allowed) {
    std::string list;
    for (auto a : allowed) list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", a);
    std::string shown = value.is_string() ? fmt::format("\"{}\"", value.get_string().c_str())
                                          : json::serialize(value);
    causes.push_back({"FieldValueNotSupported",
                      fmt::format("Unsupported value: {}: supported values: {}", shown, list),
                      field});
  }
  void Duplicate(const std::string& field, const json::value& value) {
    causes.push_back(
        {"FieldValueDuplicate", fmt::format("Duplicate value: {}", json::serialize(value)), field});
  }
  void Forbidden(const std::string& field, std::string_view detail) {
    causes.push_back({"FieldValueForbidden", fmt::format("Forbidden: {}", detail), field});
  }

  void AccessModes(const std::string& field, const json::array& modes) {
    for (const auto& m : modes) {
      if (!IsAccessMode(m)) {
        Unsupported(field, m,
                    {"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"});
      }
    }
  }

  // ValidatePersistentVolumeClaimSpec: access modes, a positive storage request.
  void ClaimSpec(const std::string& field, const json::value* spec) {
    const auto* list = spec ? Find(*spec, {"accessModes"}) : nullptr;
    if (!list || !list->is_array() || list->get_array().empty()) {
      Required(field + ".accessModes", "at least 1 access mode is required");
    } else {
      AccessModes(field + ".accessModes", list->get_array());
    }
    const auto* storage = spec ? Find(*spec, {"resources", "requests", "storage"}) : nullptr;
    long double milli = 0;
    if (!storage) {
      Required(field + ".resources[storage]");
    } else if (!storage->is_string() || !ParseQuantityMilli(storage->get_string(), &milli) ||
               milli <= 0) {
      InvalidValue(field + ".resources[storage]", *storage, "must be greater than zero");
    }
  }

  // After creation a claim's spec changes only by a larger storage request
  // (expansion) and by volumeName set once (binding).
  void ClaimUpdate(const json::object& obj, const json::object& old) {
    const auto* now = Find(obj, {"spec"});
    const auto* was = Find(old, {"spec"});
    if (!now || !was || !now->is_object() || !was->is_object()) return;
    json::object a = now->get_object();
    json::object b = was->get_object();
    for (json::object* o : {&a, &b}) {
      if (auto* r = o->if_contains("resources"); r && r->is_object())
        r->get_object().erase("requests");
      o->erase("volumeAttributesClassName");
    }
    if (GetString(b, {"volumeName"}).empty()) {
      a.erase("volumeName");
      b.erase("volumeName");
    }
    if (a != b) {
      Forbidden("spec",
                "spec is immutable after creation except resources.requests and "
                "volumeAttributesClassName for bound claims");
    }
    long double want = 0;
    long double had = 0;
    const auto* q = Find(obj, {"spec", "resources", "requests", "storage"});
    const auto* p = Find(old, {"spec", "resources", "requests", "storage"});
    if (q && p && q->is_string() && p->is_string() && ParseQuantityMilli(q->get_string(), &want) &&
        ParseQuantityMilli(p->get_string(), &had) && want < had) {
      Forbidden("spec.resources.requests.storage", "field can not be less than previous value");
    }
  }

  // ValidatePersistentVolume: capacity, access modes, exactly one source.
  void Volume(const json::object& obj, const json::object* old) {
    const json::value empty;
    const auto* spec_v = Find(obj, {"spec"});
    const json::value& spec = spec_v ? *spec_v : empty;
    const auto* storage = Find(spec, {"capacity", "storage"});
    long double milli = 0;
    if (!Find(spec, {"capacity"})) {
      Required("spec.capacity");
    } else if (!storage) {
      Required("spec.capacity[storage]");
    } else if (!storage->is_string() || !ParseQuantityMilli(storage->get_string(), &milli) ||
               milli <= 0) {
      InvalidValue("spec.capacity[storage]", *storage, "must be greater than zero");
    }
    const auto& modes = GetArray(spec, {"accessModes"});
    if (modes.empty()) Required("spec.accessModes");
    AccessModes("spec.accessModes", modes);
    int sources = 0;
    for (std::string_view s : kVolumeSources) sources += Find(spec, {s}) != nullptr;
    if (sources == 0) Required("spec", "must specify a volume type");
    if (sources > 1) Forbidden("spec", "may not specify more than 1 volume type");
    if (Find(spec, {"hostPath"}) && GetString(spec, {"hostPath", "path"}).empty())
      Required("spec.hostPath.path");
    if (Find(spec, {"local"})) {
      if (GetString(spec, {"local", "path"}).empty()) Required("spec.local.path");
      if (!Find(spec, {"nodeAffinity", "required"}))
        Required("spec.nodeAffinity", "Local volume requires node affinity");
    }
    if (!old) return;
    for (std::string_view s : kVolumeSources) {
      const auto* a = Find(spec, {s});
      const auto* b = Find(*old, {"spec", s});
      if ((a == nullptr) != (b == nullptr) || (a && *a != *b)) {
        Forbidden("spec.persistentvolumesource",
                  "spec.persistentvolumesource is immutable after creation");
        break;
      }
    }
    const auto* affinity = Find(*old, {"spec", "nodeAffinity"});
    if (affinity && !affinity->is_null() && Find(spec, {"nodeAffinity"}) &&
        *Find(spec, {"nodeAffinity"}) != *affinity)
      Forbidden("spec.nodeAffinity", "field is immutable once set");
  }

  // ValidateNode's podCIDRs: IPv4 ranges (kiso's pod network is IPv4), the
  // first of them podCIDR; once set, fixed (the node IPAM controller gives
  // one to a node that has none, as upstream allows).
  void NodeObject(const json::object& obj, const json::object* old) {
    const auto* many = Find(obj, {"spec", "podCIDRs"});
    if (many && many->is_array()) {
      size_t i = 0;
      for (const auto& c : many->get_array()) {
        std::string f = fmt::format("spec.podCIDRs[{}]", i++);
        if (!c.is_string() || !Ipv4Cidr::Parse(c.get_string()).ok())
          InvalidValue(f, c, "must be an IPv4 CIDR such as 10.42.0.0/24");
      }
      if (many->get_array().size() > 1)
        Forbidden("spec.podCIDRs", "may specify no more than one CIDR (kiso's pods are IPv4)");
      const auto* one = Find(obj, {"spec", "podCIDR"});
      if (one && !many->get_array().empty() && *one != many->get_array()[0])
        InvalidValue("spec.podCIDR", *one, "must equal spec.podCIDRs[0]");
    }
    if (!old) return;
    const auto* was = Find(*old, {"spec", "podCIDRs"});
    if (was && was->is_array() && !was->get_array().empty() && (!many || *many != *was)) {
      Forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" to valid");
    }
  }

  // ValidateStorageClass and its update: the provisioner, parameters and
  // policies are fixed once created.
  void StorageClassObject(const json::object& obj, const json::object* old) {
    if (GetString(obj, {"provisioner"}).empty()) Required("provisioner");
    if (!old) return;
    for (std::string_view f : {"provisioner", "parameters", "reclaimPolicy"}) {
      const auto* a = obj.if_contains(f);
      const auto* b = old->if_contains(f);
      if ((a ? *a : json::value()) != (b ? *b : json::value()))
        Forbidden(std::string(f), fmt::format("updates to {} are forbidden.", f));
    }
    const auto* a = obj.if_contains("volumeBindingMode");
    const auto* b = old->if_contains("volumeBindingMode");
    if ((a ? *a : json::value()) != (b ? *b : json::value()))
      Forbidden("volumeBindingMode", "field is immutable");
  }

  // ValidateRuntimeClass and its update: the handler a DNS label, fixed once
  // created; the overhead's quantities not negative.
  void RuntimeClassObject(const json::object& obj, const json::object* old) {
    const auto* handler = obj.if_contains("handler");
    if (!handler || !handler->is_string() || handler->get_string().empty()) {
      Required("handler");
    } else if (std::string why = CheckDns1123Label(handler->get_string()); !why.empty()) {
      InvalidValue("handler", *handler, why);
    }
    if (const auto* fixed = Find(obj, {"overhead", "podFixed"}); fixed && fixed->is_object()) {
      for (const auto& [name, q] : fixed->get_object()) {
        if (q.is_string() && q.get_string().starts_with("-")) {
          InvalidValue(fmt::format("overhead.podFixed[{}]", std::string_view(name)), q,
                       "must be greater than or equal to 0");
        }
      }
    }
    if (old && old->if_contains("handler") && handler && *handler != *old->if_contains("handler"))
      InvalidValue("handler", *handler, "field is immutable");
  }

  // An admission webhook configuration's webhooks (admissionregistration/v1).
  void Webhooks(const json::object& obj) {
    const auto* hooks = obj.if_contains("webhooks");
    if (!hooks || !hooks->is_array()) return;
    std::set<std::string, std::less<>> names;
    size_t i = 0;
    for (const auto& h : hooks->get_array()) {
      std::string f = fmt::format("webhooks[{}]", i++);
      std::string_view name = GetString(h, {"name"});
      if (name.empty()) {
        Required(f + ".name");
      } else if (!names.insert(std::string(name)).second) {
        Duplicate(f + ".name", json::value(name));
      }
      const auto* url = Find(h, {"clientConfig", "url"});
      const auto* service = Find(h, {"clientConfig", "service"});
      if ((url != nullptr) == (service != nullptr)) {
        Required(f + ".clientConfig", "exactly one of url or service is required");
      } else if (url && (!url->is_string() || !url->get_string().starts_with("https://"))) {
        InvalidValue(f + ".clientConfig.url", *url, "'https' is the only allowed URL scheme");
      }
      const auto* effects = Find(h, {"sideEffects"});
      if (!effects) {
        Required(f + ".sideEffects", "must specify one of None, NoneOnDryRun");
      } else if (GetString(h, {"sideEffects"}) != "None" &&
                 GetString(h, {"sideEffects"}) != "NoneOnDryRun") {
        Unsupported(f + ".sideEffects", *effects, {"None", "NoneOnDryRun"});
      }
      const auto* versions = Find(h, {"admissionReviewVersions"});
      bool v1 = false;
      if (versions && versions->is_array()) {
        for (const auto& v : versions->get_array()) v1 = v1 || v == "v1" || v == "v1beta1";
      }
      if (!v1) Required(f + ".admissionReviewVersions", "must specify one of v1, v1beta1");
      if (const auto* t = Find(h, {"timeoutSeconds"});
          t && t->is_int64() && (t->get_int64() < 1 || t->get_int64() > 30)) {
        InvalidValue(f + ".timeoutSeconds", *t,
                     "the timeout value must be between 1 and 30 seconds");
      }
      if (const auto* m = Find(h, {"matchConditions"});
          m && m->is_array() && !m->get_array().empty()) {
        Forbidden(f + ".matchConditions", "CEL match conditions are not supported by kiso yet");
      }
    }
  }

  // A number field that must be ≥ `min` (ValidateNonnegativeField and kin); absent is fine.
  void AtLeast(const std::string& field, const json::value* v, int64_t min) {
    if (!v || !v->is_int64() || v->get_int64() >= min) return;
    InvalidValue(field, *v,
                 min == 0 ? "must be greater than or equal to 0"
                          : fmt::format("must be greater than or equal to {}", min));
  }

  // An int or a percentage ("25%") that must not be negative, and with
  // `at_most_100` not above 100% (ValidatePositiveIntOrPercent,
  // IsNotMoreThan100Percent). Returns the value as a percentage or count, or
  // nullopt when invalid or absent.
  std::optional<int64_t> IntOrPercent(const std::string& field, const json::value* v,
                                      bool at_most_100) {
    if (!v || v->is_null()) return std::nullopt;
    int64_t n = 0;
    bool percent = false;
    if (v->is_int64()) {
      n = v->get_int64();
    } else if (v->is_string()) {
      std::string_view s = v->get_string();
      bool digits =
          s.size() >= 2 && s.back() == '%' &&
          std::all_of(s.begin(), s.end() - 1, [](char c) { return c >= '0' && c <= '9'; });
      if (!digits || s.size() > 11) {
        InvalidValue(field, *v,
                     "a valid percent string must be a numeric string followed by an ending '%' "
                     "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
        return std::nullopt;
      }
      n = std::stoll(std::string(s.substr(0, s.size() - 1)));
      percent = true;
    } else {
      return std::nullopt;  // A type error: the schema's to report.
    }
    if (n < 0) {
      InvalidValue(field, *v, "must be greater than or equal to 0");
      return std::nullopt;
    }
    if (at_most_100 && percent && n > 100) {
      InvalidValue(field, *v, "must not be greater than 100%");
      return std::nullopt;
    }
    return n;
  }

  // A port given as a number (1–65535) or a name (IANA_SVC_NAME), as a
  // Service's targetPort and a probe's port are.
  void PortOrName(const std::string& field, const json::value* v) {
    if (!v || v->is_null()) return;
    if (v->is_int64()) {
      if (v->get_int64() < 1 || v->get_int64() > 65535)
        InvalidValue(field, *v, "must be between 1 and 65535, inclusive");
      return;
    }
    if (!v->is_string()) return;
    std::string_view name = v->get_string();
    std::string why;
    if (name.size() > 15) {
      why = "must be no more than 15 characters";
    } else if (!std::all_of(name.begin(), name.end(), [](char c) {
                 return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
               })) {
      why = "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
    } else if (name.find("--") != std::string_view::npos) {
      why = "must not contain consecutive hyphens";
    } else if (std::none_of(name.begin(), name.end(),
                            [](char c) { return c >= 'a' && c <= 'z'; })) {
      why = "must contain at least one letter (a-z)";
    } else if (name.front() == '-' || name.back() == '-') {
      why = "must not begin or end with a hyphen";
    }
    if (!why.empty()) InvalidValue(field, *v, why);
  }

  // A metav1.LabelSelector at `field`: its operators and values as the selector code reads them.
  void Selector(const std::string& field, const json::value* v) {
    if (!v || v->is_null()) return;
    auto parsed = LabelSelector::FromObject(*v);
    if (!parsed.ok()) InvalidValue(field, *v, parsed.status().message());
  }

  // ValidateNetworkPolicySpec: selectors, peers (one kind each, a CIDR with
  // exceptions inside it), ports (protocol, number or name, endPort only
  // after a number and not below it), policyTypes.
  void NetworkPolicy(const json::object& obj) {
    const json::value* spec = Find(obj, {"spec"});
    if (!spec || !spec->is_object()) {
      Required("spec");
      return;
    }
    Selector("spec.podSelector", Find(*spec, {"podSelector"}));
    for (std::string_view dir : {"ingress", "egress"}) {
      const auto& rules = GetArray(*spec, {dir});
      for (size_t i = 0; i < rules.size(); ++i) {
        const std::string rf = fmt::format("spec.{}[{}]", dir, i);
        const auto& ports = GetArray(rules[i], {"ports"});
        for (size_t j = 0; j < ports.size(); ++j) {
          const std::string pf = fmt::format("{}.ports[{}]", rf, j);
          const json::value* protocol = Find(ports[j], {"protocol"});
          if (protocol && !protocol->is_null() &&
              !(protocol->is_string() &&
                (protocol->get_string() == "TCP" || protocol->get_string() == "UDP" ||
                 protocol->get_string() == "SCTP")))
            Unsupported(pf + ".protocol", *protocol, {"SCTP", "TCP", "UDP"});
          const json::value* port = Find(ports[j], {"port"});
          PortOrName(pf + ".port", port);
          const json::value* end = Find(ports[j], {"endPort"});
          if (!end || end->is_null()) continue;
          if (!port || !port->is_int64()) {
            Forbidden(pf + ".endPort", "may not be specified when `port` is non-numeric");
          } else if (!end->is_int64() || end->get_int64() < port->get_int64() ||
                     end->get_int64() > 65535) {
            InvalidValue(pf + ".endPort", *end,
                         "must be greater than or equal to `port` and at most 65535");
          }
        }
        const char* list = dir == "ingress" ? "from" : "to";
        const auto& peers = GetArray(rules[i], {list});
        for (size_t j = 0; j < peers.size(); ++j) {
          const std::string peer = fmt::format("{}.{}[{}]", rf, list, j);
          const json::value* pods = Find(peers[j], {"podSelector"});
          const json::value* namespaces = Find(peers[j], {"namespaceSelector"});
          const json::value* block = Find(peers[j], {"ipBlock"});
          bool selects = (pods && !pods->is_null()) || (namespaces && !namespaces->is_null());
          bool blocks = block && !block->is_null();
          if (!selects && !blocks) {
            Required(peer, "must specify a peer");
          } else if (selects && blocks) {
            Forbidden(peer, "may not specify more than 1 peer");
          }
          Selector(peer + ".podSelector", pods);
          Selector(peer + ".namespaceSelector", namespaces);
          if (!blocks) continue;
          const json::value* cidr = Find(*block, {"cidr"});
          auto range = cidr && cidr->is_string() ? CidrRange(cidr->get_string()) : std::nullopt;
          if (!range) {
            if (!cidr) {
              Required(peer + ".ipBlock.cidr");
            } else {
              InvalidValue(peer + ".ipBlock.cidr", *cidr, "must be a valid CIDR");
            }
            continue;
          }
          const auto& except = GetArray(*block, {"except"});
          for (size_t k = 0; k < except.size(); ++k) {
            const std::string ef = fmt::format("{}.ipBlock.except[{}]", peer, k);
            auto x = except[k].is_string() ? CidrRange(except[k].get_string()) : std::nullopt;
            if (!x) {
              InvalidValue(ef, except[k], "must be a valid CIDR");
            } else if (x->family != range->family || x->bits <= range->bits || !x->Within(*range)) {
              InvalidValue(ef, except[k], "must be a strict subset of `cidr`");
            }
          }
        }
      }
    }
    const auto& types = GetArray(*spec, {"policyTypes"});
    if (types.size() > 2) {
      InvalidValue("spec.policyTypes", json::value(types),
                   "may not specify more than two policyTypes");
    }
    for (size_t i = 0; i < types.size(); ++i) {
      if (!(types[i].is_string() &&
            (types[i].get_string() == "Ingress" || types[i].get_string() == "Egress")))
        Unsupported(fmt::format("spec.policyTypes[{}]", i), types[i], {"Egress", "Ingress"});
    }
  }

  // A probe's or a lifecycle hook's handler: ports and non-negative timings.
  void Probe(const std::string& field, const json::value* probe) {
    if (!probe || !probe->is_object()) return;
    PortOrName(field + ".httpGet.port", Find(*probe, {"httpGet", "port"}));
    PortOrName(field + ".tcpSocket.port", Find(*probe, {"tcpSocket", "port"}));
    for (std::string_view f : {"initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                               "successThreshold", "failureThreshold"}) {
      AtLeast(fmt::format("{}.{}", field, f), Find(*probe, {f}), 0);
    }
  }

  // A rolling update's maxUnavailable and maxSurge (Deployment, DaemonSet).
  void RollingUpdate(const std::string& field, const json::value* ru, bool surge) {
    if (!ru || !ru->is_object()) return;
    auto unavailable = IntOrPercent(field + ".maxUnavailable", Find(*ru, {"maxUnavailable"}), true);
    if (!surge) return;
    auto max_surge = IntOrPercent(field + ".maxSurge", Find(*ru, {"maxSurge"}), false);
    if (unavailable && max_surge && *unavailable == 0 && *max_surge == 0) {
      InvalidValue(field + ".maxUnavailable", *Find(*ru, {"maxUnavailable"}),
                   "may not be 0 when `maxSurge` is 0");
    }
  }

  void Name(const json::object& meta, std::string (*rule)(std::string_view)) {
    const auto* name = meta.if_contains("name");
    if (!name || !name->is_string() || name->get_string().empty()) {
      Required("metadata.name", "name or generateName is required");
      return;
    }
    std::string why = rule(name->get_string());
    if (!why.empty()) InvalidValue("metadata.name", *name, why);
  }

  void Labels(const json::object& meta) {
    const auto* labels = meta.if_contains("labels");
    if (!labels || !labels->is_object()) return;
    for (const auto& [k, v] : labels->get_object()) {
      std::string field = fmt::format("metadata.labels");
      if (!v.is_string()) continue;
      std::string_view value = v.get_string();
      bool ok = value.size() <= 63 &&
                (value.empty() || (std::isalnum(static_cast<unsigned char>(value.front())) &&
                                   std::isalnum(static_cast<unsigned char>(value.back())) &&
                                   std::all_of(value.begin(), value.end(), [](char c) {
                                     return std::isalnum(static_cast<unsigned char>(c)) ||
                                            c == '-' || c == '_' || c == '.';
                                   })));
      if (!ok) {
        InvalidValue(field, v,
                     "a valid label must be an empty string or consist of alphanumeric "
                     "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                     "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
                     "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
      }
      (void)k;
    }
  }

  void Port(const std::string& field, const json::value* port, bool required) {
    if (!port) {
      if (required) Required(field);
      return;
    }
    if (!port->is_int64() || port->get_int64() < 1 || port->get_int64() > 65535)
      InvalidValue(field, *port, "must be between 1 and 65535, inclusive");
  }

  void Resources(const std::string& field, const json::object& c) {
    const auto* res = c.if_contains("resources");
    if (!res || !res->is_object()) return;
    for (std::string_view part : {"limits", "requests"}) {
      const auto* m = res->get_object().if_contains(part);
      if (!m || !m->is_object()) continue;
      for (const auto& [name, q] : m->get_object()) {
        std::string f = fmt::format("{}.resources.{}[{}]", field, part, std::string_view(name));
        long double milli = 0;
        if (q.is_string() ? !ParseQuantityMilli(q.get_string(), &milli) : !q.is_number()) {
          InvalidValue(f, q, kQuantityError);
        } else if (q.is_number() ? q.to_number<double>() < 0 : milli < 0) {
          InvalidValue(f, q, "must be greater than or equal to 0");
        }
      }
    }
  }

  void Containers(const std::string& field, const json::value* list, bool required) {
    if (!list || !list->is_array() || list->get_array().empty()) {
      if (required) Required(field);
      return;
    }
    std::set<std::string> names;
    size_t i = 0;
    for (const auto& c : list->get_array()) {
      std::string f = fmt::format("{}[{}]", field, i++);
      if (!c.is_object()) {
        InvalidValue(f, c, "must be an object");
        continue;
      }
      const auto& obj = c.get_object();
      const auto* name = obj.if_contains("name");
      if (!name || !name->is_string() || name->get_string().empty()) {
        Required(f + ".name");
      } else {
        std::string why = CheckDns1123Label(name->get_string());
        if (!why.empty()) InvalidValue(f + ".name", *name, why);
        if (!names.insert(std::string(name->get_string())).second) Duplicate(f + ".name", *name);
      }
      const auto* image = obj.if_contains("image");
      if (!image || !image->is_string() || image->get_string().empty()) Required(f + ".image");
      if (const auto* ports = obj.if_contains("ports"); ports && ports->is_array()) {
        size_t j = 0;
        for (const auto& p : ports->get_array()) {
          std::string pf = fmt::format("{}.ports[{}]", f, j++);
          if (!p.is_object()) continue;
          Port(pf + ".containerPort", p.get_object().if_contains("containerPort"), true);
          if (const auto* hp = p.get_object().if_contains("hostPort"); hp && *hp != 0)
            Port(pf + ".hostPort", hp, false);
        }
      }
      Resources(f, obj);
      // restartPolicy: only an init container's, and only Always (a sidecar);
      // an init container that runs to completion has no probes nor hooks.
      const bool init = field.ends_with("initContainers");
      const auto* policy = obj.if_contains("restartPolicy");
      if (policy && !init) {
        Forbidden(f + ".restartPolicy", "may not be set for non-init containers");
      } else if (policy && !(policy->is_string() && policy->get_string() == "Always")) {
        Unsupported(f + ".restartPolicy", *policy, {"Always"});
      } else if (init && !policy) {
        for (std::string_view what :
             {"lifecycle", "livenessProbe", "readinessProbe", "startupProbe"}) {
          if (obj.contains(what)) {
            Forbidden(fmt::format("{}.{}", f, what),
                      "may not be set for init containers without restartPolicy=Always");
          }
        }
      }
      for (std::string_view probe : {"livenessProbe", "readinessProbe", "startupProbe"})
        Probe(fmt::format("{}.{}", f, probe), obj.if_contains(probe));
      for (std::string_view hook : {"postStart", "preStop"}) {
        if (const auto* h = Find(c, {"lifecycle", hook}))
          Probe(fmt::format("{}.lifecycle.{}", f, hook), h);
      }
    }
  }

  void PodSpec(const std::string& field, const json::value* spec,
               const std::vector<std::string_view>& restart_policies) {
    if (!spec || !spec->is_object()) {
      Required(field + ".containers");
      return;
    }
    const auto& s = spec->get_object();
    Containers(field + ".containers", s.if_contains("containers"), true);
    Containers(field + ".initContainers", s.if_contains("initContainers"), false);
    if (const auto* rp = s.if_contains("restartPolicy")) {
      if (std::find(restart_policies.begin(), restart_policies.end(),
                    rp->is_string() ? std::string_view(rp->get_string()) : "") ==
          restart_policies.end())
        Unsupported(field + ".restartPolicy", *rp, restart_policies);
    }
    if (const auto* g = s.if_contains("terminationGracePeriodSeconds");
        g && (!g->is_int64() || g->get_int64() < 0)) {
      InvalidValue(field + ".terminationGracePeriodSeconds", *g,
                   "must be greater than or equal to 0");
    }
    AtLeast(field + ".activeDeadlineSeconds", s.if_contains("activeDeadlineSeconds"), 1);
    PodPlacement(field, s);
  }

  // Pod (anti-)affinity terms name a topology key; spread constraints a
  // positive maxSkew, a topology key and what to do when unsatisfiable.
  void PodPlacement(const std::string& field, const json::object& s) {
    constexpr std::string_view kRequired = "requiredDuringSchedulingIgnoredDuringExecution";
    constexpr std::string_view kPreferred = "preferredDuringSchedulingIgnoredDuringExecution";
    for (std::string_view kind : {"podAffinity", "podAntiAffinity"}) {
      const auto* a = Find(s, {"affinity", kind});
      if (!a) continue;
      const auto& required = GetArray(*a, {kRequired});
      for (size_t i = 0; i < required.size(); ++i) {
        if (GetString(required[i], {"topologyKey"}).empty()) {
          Required(fmt::format("{}.affinity.{}.{}[{}].topologyKey", field, kind, kRequired, i),
                   "can not be empty");
        }
      }
      const auto& preferred = GetArray(*a, {kPreferred});
      for (size_t i = 0; i < preferred.size(); ++i) {
        std::string at = fmt::format("{}.affinity.{}.{}[{}]", field, kind, kPreferred, i);
        if (GetString(preferred[i], {"podAffinityTerm", "topologyKey"}).empty())
          Required(at + ".podAffinityTerm.topologyKey", "can not be empty");
        const auto* w = Find(preferred[i], {"weight"});
        if (!w || !w->is_int64() || w->get_int64() < 1 || w->get_int64() > 100)
          InvalidValue(at + ".weight", w ? *w : json::value(0), "must be in the range 1-100");
      }
    }
    const auto& spread = GetArray(s, {"topologySpreadConstraints"});
    for (size_t i = 0; i < spread.size(); ++i) {
      std::string at = fmt::format("{}.topologySpreadConstraints[{}]", field, i);
      const auto* skew = Find(spread[i], {"maxSkew"});
      if (!skew || !skew->is_int64() || skew->get_int64() <= 0)
        InvalidValue(at + ".maxSkew", skew ? *skew : json::value(0), "must be greater than zero");
      if (GetString(spread[i], {"topologyKey"}).empty())
        Required(at + ".topologyKey", "can not be empty");
      const auto* when = Find(spread[i], {"whenUnsatisfiable"});
      if (!when || (*when != "DoNotSchedule" && *when != "ScheduleAnyway")) {
        Unsupported(at + ".whenUnsatisfiable", when ? *when : json::value(""),
                    {"DoNotSchedule", "ScheduleAnyway"});
      }
      if (const auto* min = Find(spread[i], {"minDomains"}); min && !min->is_null()) {
        if (!min->is_int64() || min->get_int64() <= 0) {
          InvalidValue(at + ".minDomains", *min, "must be greater than zero");
        } else if (!when || *when != "DoNotSchedule") {
          InvalidValue(at + ".minDomains", *min,
                       "can only use minDomains if whenUnsatisfiable=DoNotSchedule");
        }
      }
    }
  }

  // Workload specs: replicas, selector matching the template's labels, the pod template.
  void Workload(const json::object& obj, bool selector_required,
                const std::vector<std::string_view>& restart_policies) {
    const json::value* spec = obj.if_contains("spec");
    if (!spec || !spec->is_object()) {
      Required("spec");
      return;
    }
    const auto& s = spec->get_object();
    if (const auto* r = s.if_contains("replicas"); r && (!r->is_int64() || r->get_int64() < 0))
      InvalidValue("spec.replicas", *r, "must be greater than or equal to 0");
    for (std::string_view f : {"minReadySeconds", "revisionHistoryLimit", "parallelism",
                               "completions", "backoffLimit", "ttlSecondsAfterFinished"})
      AtLeast(fmt::format("spec.{}", f), s.if_contains(f), 0);
    for (std::string_view f : {"progressDeadlineSeconds", "activeDeadlineSeconds"})
      AtLeast(fmt::format("spec.{}", f), s.if_contains(f), 1);
    const auto* selector = s.if_contains("selector");
    json::value tmpl_labels_v = json::object();
    if (const auto* l = Find(*spec, {"template", "metadata", "labels"})) tmpl_labels_v = *l;
    if (selector_required) {
      const auto* ml = selector ? Find(*selector, {"matchLabels"}) : nullptr;
      const auto* me = selector ? Find(*selector, {"matchExpressions"}) : nullptr;
      if (ml && !ml->is_object()) {
        InvalidValue("spec.selector.matchLabels", *ml, "must be a map of labels");
      } else if (!selector || ((!ml || ml->get_object().empty()) && !me)) {
        Required("spec.selector");
      } else if (ml) {
        bool match = tmpl_labels_v.is_object();
        for (const auto& [k, v] : ml->get_object()) {
          const auto* have = match ? tmpl_labels_v.get_object().if_contains(k) : nullptr;
          match = match && have && *have == v;
        }
        if (!match) {
          InvalidValue("spec.template.metadata.labels", tmpl_labels_v,
                       "`selector` does not match template `labels`");
        }
      }
    }
    PodSpec("spec.template.spec", Find(*spec, {"template", "spec"}), restart_policies);
  }

  // ValidateCronJobSpec: a schedule cron parses, without TZ= in it; an
  // explicit IANA time zone; the job template a Job's.
  void CronJob(const json::object& obj) {
    const json::value* schedule = Find(obj, {"spec", "schedule"});
    if (!schedule || !schedule->is_string() || schedule->get_string().empty()) {
      Required("spec.schedule");
    } else if (std::string_view text = schedule->get_string(); text.find("TZ") != text.npos) {
      InvalidValue("spec.schedule", *schedule,
                   "cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
    } else if (auto parsed = CronSchedule::Parse(text); !parsed.ok()) {
      InvalidValue("spec.schedule", *schedule, parsed.status().message());
    }
    if (const json::value* tz = Find(obj, {"spec", "timeZone"}); tz && tz->is_string()) {
      std::string_view name = tz->get_string();
      std::string lower(name);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower == "local" || name.empty()) {
        InvalidValue("spec.timeZone", *tz,
                     "timeZone must be an explicit time zone as defined in "
                     "https://www.iana.org/time-zones");
      } else if (!KnownTimeZone(name)) {
        InvalidValue("spec.timeZone", *tz, fmt::format("unknown time zone {}", name));
      }
    }
    if (const json::value* p = Find(obj, {"spec", "concurrencyPolicy"});
        p && (!p->is_string() || (p->get_string() != "Allow" && p->get_string() != "Forbid" &&
                                  p->get_string() != "Replace")))
      Unsupported("spec.concurrencyPolicy", *p, {"Allow", "Forbid", "Replace"});
    for (std::string_view f :
         {"startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"})
      AtLeast(fmt::format("spec.{}", f), Find(obj, {"spec", f}), 0);
    const json::value* spec = Find(obj, {"spec", "jobTemplate", "spec"});
    if (!spec || !spec->is_object()) {
      Required("spec.jobTemplate.spec");
      return;
    }
    for (std::string_view f :
         {"parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"})
      AtLeast(fmt::format("spec.jobTemplate.spec.{}", f), Find(*spec, {f}), 0);
    const json::value* pod = Find(*spec, {"template", "spec"});
    if (pod && !Find(*pod, {"restartPolicy"}))
      Required("spec.jobTemplate.spec.template.spec.restartPolicy");
    PodSpec("spec.jobTemplate.spec.template.spec", pod, {"OnFailure", "Never"});
  }

  void Service(const json::object& obj) {
    const json::value* spec = obj.if_contains("spec");
    const json::object empty;
    const auto& s = spec && spec->is_object() ? spec->get_object() : empty;
    std::string_view type = s.contains("type") && s.at("type").is_string()
                                ? std::string_view(s.at("type").get_string())
                                : "ClusterIP";
    const auto* ports = s.if_contains("ports");
    bool headless = s.contains("clusterIP") && s.at("clusterIP") == "None";
    if ((!ports || !ports->is_array() || ports->get_array().empty()) && type != "ExternalName" &&
        !headless) {
      Required("spec.ports");
      return;
    }
    if (!ports || !ports->is_array()) return;
    std::set<std::string> seen;
    size_t i = 0;
    for (const auto& p : ports->get_array()) {
      std::string f = fmt::format("spec.ports[{}]", i++);
      if (!p.is_object()) continue;
      const auto& port = p.get_object();
      Port(f + ".port", port.if_contains("port"), true);
      if (ports->get_array().size() > 1 && !port.contains("name")) Required(f + ".name");
      PortOrName(f + ".targetPort", port.if_contains("targetPort"));
      std::string key = json::serialize(port.contains("port") ? port.at("port") : json::value()) +
                        "/" +
                        std::string(port.contains("protocol") && port.at("protocol").is_string()
                                        ? std::string_view(port.at("protocol").get_string())
                                        : "TCP");
      if (!seen.insert(key).second) {
        Duplicate(
            f, json::object{{"port", port.contains("port") ? port.at("port") : nullptr},
                            {"protocol", port.contains("protocol") ? port.at("protocol") : "TCP"}});
      }
    }
  }

  void DataKeys(const json::object& obj) {
    for (std::string_view field : {"data", "binaryData", "stringData"}) {
      const auto* data = obj.if_contains(field);
      if (!data || !data->is_object()) continue;
      for (const auto& [k, v] : data->get_object()) {
        std::string_view key = k;
        bool ok =
            !key.empty() && key.size() <= 253 && std::all_of(key.begin(), key.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                     c == '.';
            });
        if (!ok) {
          InvalidValue(fmt::format("{}[{}]", field, key), json::value(key),
                       "a valid config key must consist of alphanumeric characters, '-', '_' or "
                       "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                       "validation is '[-._a-zA-Z0-9]+')");
        }
        (void)v;
      }
    }
  }
};

}  // namespace

std::vector<Cause> Validate(const ResourceType& type, const json::object& obj,
                            const json::object* old) {
  Validator v;
  const json::value* meta_v = obj.if_contains("metadata");
  const json::object empty;
  const json::object& meta = meta_v && meta_v->is_object() ? meta_v->get_object() : empty;
  const std::string& kind = type.kind;
  // A custom kind's name is a DNS subdomain whatever it is called.
  if (!type.custom && (kind == "Namespace" || kind == "Service")) {
    v.Name(meta, kind == "Service" ? &CheckDns1035Label : &CheckDns1123Label);
  } else if (!type.custom &&
             (type.group == "rbac.authorization.k8s.io" || kind == "CertificateSigningRequest")) {
    v.Name(meta, &CheckPathSegmentName);
  } else {
    v.Name(meta, &CheckDns1123Subdomain);
  }
  v.Labels(meta);
  if (type.custom) return std::move(v.causes);  // Its schema validates the rest.
  if (kind == "CustomResourceDefinition" && type.group == "apiextensions.k8s.io") {
    auto crd = ValidateCrd(obj);
    v.causes.insert(v.causes.end(), crd.begin(), crd.end());
  }
  if (kind == "Pod") {
    v.PodSpec("spec", obj.if_contains("spec"), {"Always", "OnFailure", "Never"});
    if (old) {
      // Pod updates may change only a few fields (ValidatePodUpdate): compare containers' images
      // aside.
      const auto* a = Find(obj, {"spec", "containers"});
      const auto* b = Find(*old, {"spec", "containers"});
      if (a && b && a->is_array() && b->is_array() &&
          a->get_array().size() != b->get_array().size())
        v.Forbidden("spec", "pod updates may not add or remove containers");
    }
  } else if (kind == "Deployment" || kind == "ReplicaSet" || kind == "DaemonSet" ||
             kind == "StatefulSet") {
    v.Workload(obj, true, {"Always"});
    const json::object& whole = obj;
    if (kind == "Deployment") {
      const auto* ru = Find(whole, {"spec", "strategy", "rollingUpdate"});
      if (GetString(whole, {"spec", "strategy", "type"}) == "Recreate" && ru && !ru->is_null()) {
        v.Forbidden("spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'");
      } else {
        v.RollingUpdate("spec.strategy.rollingUpdate", ru, true);
      }
      const auto* deadline = Find(whole, {"spec", "progressDeadlineSeconds"});
      const auto* min_ready = Find(whole, {"spec", "minReadySeconds"});
      if (deadline && min_ready && deadline->is_int64() && min_ready->is_int64() &&
          deadline->get_int64() <= min_ready->get_int64()) {
        v.InvalidValue("spec.progressDeadlineSeconds", *deadline,
                       "must be greater than minReadySeconds");
      }
    } else if (kind == "DaemonSet") {
      v.RollingUpdate("spec.updateStrategy.rollingUpdate",
                      Find(whole, {"spec", "updateStrategy", "rollingUpdate"}), true);
    } else if (kind == "StatefulSet") {
      const auto& templates = GetArray(whole, {"spec", "volumeClaimTemplates"});
      for (size_t i = 0; i < templates.size(); ++i) {
        std::string field = fmt::format("spec.volumeClaimTemplates[{}]", i);
        if (GetString(templates[i], {"metadata", "name"}).empty())
          v.Required(field + ".metadata.name");
        v.ClaimSpec(field + ".spec", Find(templates[i], {"spec"}));
      }
      const auto* ru = Find(whole, {"spec", "updateStrategy", "rollingUpdate"});
      v.AtLeast("spec.updateStrategy.rollingUpdate.partition",
                Find(whole, {"spec", "updateStrategy", "rollingUpdate", "partition"}), 0);
      if (ru && ru->is_object()) {
        if (auto n = v.IntOrPercent("spec.updateStrategy.rollingUpdate.maxUnavailable",
                                    Find(*ru, {"maxUnavailable"}), true);
            n && *n == 0) {
          v.InvalidValue("spec.updateStrategy.rollingUpdate.maxUnavailable",
                         *Find(*ru, {"maxUnavailable"}), "must be greater than 0");
        }
      }
    }
  } else if (kind == "ReplicationController") {
    v.Workload(obj, false, {"Always"});
  } else if (kind == "Job") {
    v.Workload(obj, false, {"OnFailure", "Never"});
    if (!Find(obj, {"spec", "template", "spec", "restartPolicy"}))
      v.Required("spec.template.spec.restartPolicy");
    const bool indexed = GetString(obj, {"spec", "completionMode"}) == "Indexed";
    if (indexed && !Find(obj, {"spec", "completions"}))
      v.Required("spec.completions", "when completion mode is Indexed");
    if (const auto* per = Find(obj, {"spec", "backoffLimitPerIndex"}); per && !per->is_null()) {
      v.AtLeast("spec.backoffLimitPerIndex", per, 0);
      if (!indexed) {
        v.InvalidValue("spec.backoffLimitPerIndex", *per, "requires indexed completion mode");
      }
    }
    if (const auto* max = Find(obj, {"spec", "maxFailedIndexes"}); max && !max->is_null()) {
      v.AtLeast("spec.maxFailedIndexes", max, 0);
      if (!Find(obj, {"spec", "backoffLimitPerIndex"}))
        v.Required("spec.backoffLimitPerIndex", "when maxFailedIndexes is specified");
    }
    if (const auto* success = Find(obj, {"spec", "successPolicy"});
        success && !success->is_null() && !indexed) {
      v.InvalidValue("spec.successPolicy", *success, "requires indexed completion mode");
    }
    if (const auto* policy = Find(obj, {"spec", "podFailurePolicy"});
        policy && !policy->is_null()) {
      const auto* rp = Find(obj, {"spec", "template", "spec", "restartPolicy"});
      if (rp && *rp != "Never") {
        v.Unsupported("spec.template.spec.restartPolicy", *rp, {"Never"});
      }
    }
  } else if (kind == "PersistentVolumeClaim") {
    v.ClaimSpec("spec", Find(obj, {"spec"}));
    if (old) v.ClaimUpdate(obj, *old);
  } else if (kind == "PersistentVolume") {
    v.Volume(obj, old);
  } else if (kind == "StorageClass") {
    v.StorageClassObject(obj, old);
  } else if (kind == "Node") {
    v.NodeObject(obj, old);
  } else if (kind == "RuntimeClass") {
    v.RuntimeClassObject(obj, old);
  } else if (kind == "PodTemplate") {
    v.PodSpec("template.spec", Find(obj, {"template", "spec"}), {"Always", "OnFailure", "Never"});
  } else if (kind == "CronJob") {
    v.CronJob(obj);
  } else if (kind == "PodDisruptionBudget") {
    const auto* min = Find(obj, {"spec", "minAvailable"});
    const auto* max = Find(obj, {"spec", "maxUnavailable"});
    if (min && max && !min->is_null() && !max->is_null()) {
      v.InvalidValue("spec", *Find(obj, {"spec"}),
                     "minAvailable and maxUnavailable cannot be both set");
    }
    (void)v.IntOrPercent("spec.minAvailable", min, true);
    (void)v.IntOrPercent("spec.maxUnavailable", max, true);
  } else if (kind == "Service") {
    v.Service(obj);
  } else if (kind == "NetworkPolicy" && type.group == "networking.k8s.io") {
    v.NetworkPolicy(obj);
  } else if (kind == "ConfigMap" || kind == "Secret") {
    v.DataKeys(obj);
  } else if (kind == "HorizontalPodAutoscaler") {
    v.Autoscaler(obj);
  } else if (kind == "CertificateSigningRequest" && type.group == "certificates.k8s.io") {
    // An approval and a denial exclude each other; neither may be taken back.
    auto has = [](const json::object& csr, std::string_view type) {
      const auto* cs = Find(csr, {"status", "conditions"});
      if (!cs || !cs->is_array()) return false;
      return std::any_of(cs->get_array().begin(), cs->get_array().end(), [&](const auto& c) {
        return GetString(c, {"type"}) == type && GetString(c, {"status"}) != "False";
      });
    };
    if (has(obj, "Approved") && has(obj, "Denied")) {
      v.causes.push_back({"FieldValueInvalid",
                          "Invalid value: \"Approved\": Approved and Denied conditions are "
                          "mutually exclusive",
                          "status.conditions"});
    }
    for (std::string_view c : {"Approved", "Denied"}) {
      if (old && has(*old, c) && !has(obj, c)) {
        v.Forbidden("status.conditions",
                    fmt::format("updates may not remove a condition of type {:?}", c));
      }
    }
  } else if (type.group == "admissionregistration.k8s.io" &&
             (kind == "ValidatingWebhookConfiguration" || kind == "MutatingWebhookConfiguration")) {
    v.Webhooks(obj);
  }
  // kiso's own annotations: a Service's load-balancing algorithm, a pod's weight.
  if (kind == "Service") {
    const std::vector<std::string_view> algorithms = {"round-robin", "least-connections",
                                                      "source-ip-hash", "weighted-round-robin",
                                                      "consistent-hash"};
    const auto* lb = Find(meta, {"annotations", "kiso.dev/load-balancer"});
    if (lb && lb->is_string() &&
        std::find(algorithms.begin(), algorithms.end(), lb->get_string()) == algorithms.end())
      v.Unsupported("metadata.annotations[kiso.dev/load-balancer]", *lb, algorithms);
  }
  auto weight = [&](const json::value* w, const std::string& field) {
    if (!w || !w->is_string()) return;
    std::string_view text = w->get_string();
    bool positive =
        !text.empty() && text.size() <= 9 && text[0] != '0' &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!positive) {
      v.InvalidValue(field, *w,
                     "must be a positive integer (the pod's weight for "
                     "weighted-round-robin)");
    }
  };
  weight(Find(meta, {"annotations", "kiso.dev/weight"}), "metadata.annotations[kiso.dev/weight]");
  weight(Find(obj, {"spec", "template", "metadata", "annotations", "kiso.dev/weight"}),
         "spec.template.metadata.annotations[kiso.dev/weight]");
  if (old && kind == "Service") {
    const auto* a = Find(obj, {"spec", "clusterIP"});
    const auto* b = Find(*old, {"spec", "clusterIP"});
    if (a && b && *a != *b && !(a->is_string() && a->get_string().empty()))
      v.InvalidValue("spec.clusterIP", *a, "field is immutable");
  }
  return std::move(v.causes);
}

}  // namespace kiso::api
