// meta.k8s.io/v1 Table responses, with the columns kubectl prints for the
// real API server (pkg/printers/internalversion/printers.go).
#include <fmt/format.h>

#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "api/custom_resource.h"
#include "api/object.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

struct Column {
  const char* name;
  const char* type;
  const char* format;
  int priority;
};

// k8s.io/apimachinery/pkg/util/duration.HumanDuration.
std::string HumanDuration(int64_t seconds) {
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return fmt::format("{}s", seconds);
  int64_t minutes = seconds / 60;
  if (minutes < 10) {
    int64_t s = seconds % 60;
    return s == 0 ? fmt::format("{}m", minutes) : fmt::format("{}m{}s", minutes, s);
  }
  if (minutes < 180) return fmt::format("{}m", minutes);
  int64_t hours = minutes / 60;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return m == 0 ? fmt::format("{}h", hours) : fmt::format("{}h{}m", hours, m);
  }
  if (hours < 48) return fmt::format("{}h", hours);
  if (hours < int64_t{24} * 8) {
    int64_t h = hours % 24;
    return h == 0 ? fmt::format("{}d", hours / 24) : fmt::format("{}d{}h", hours / 24, h);
  }
  if (hours < int64_t{24} * 365 * 2) return fmt::format("{}d", hours / 24);
  if (hours < int64_t{24} * 365 * 8) {
    int64_t d = (hours / 24) % 365;
    return d == 0 ? fmt::format("{}y", hours / 24 / 365)
                  : fmt::format("{}y{}d", hours / 24 / 365, d);
  }
  return fmt::format("{}y", hours / 24 / 365);
}

std::string Age(std::string_view timestamp) {
  if (timestamp.empty()) return "<unknown>";
  std::tm tm{};
  if (!strptime(std::string(timestamp).c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return "<unknown>";
  int64_t then = timegm(&tm);
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  return HumanDuration(now - then);
}

int64_t Int(const json::value& obj, std::initializer_list<std::string_view> path) {
  const auto* v = api::Find(obj, path);
  return v && v->is_int64() ? v->get_int64() : 0;
}

const json::array& Array(const json::value& obj, std::initializer_list<std::string_view> path) {
  static const auto& kEmpty = *new json::array();  // Never destroyed.
  const auto* v = api::Find(obj, path);
  return v && v->is_array() ? v->get_array() : kEmpty;
}

std::string Joined(const json::array& items, std::string_view field) {
  std::string out;
  for (const auto& c : items) {
    out += (out.empty() ? "" : ",") + std::string(api::GetString(c, {field}));
  }
  return out;
}

std::string SelectorText(const json::value& obj) {
  const auto* sel = api::Find(obj, {"spec", "selector"});
  if (!sel || !sel->is_object()) return "<none>";
  const json::value* labels = sel->get_object().if_contains("matchLabels");
  if (!labels && !sel->get_object().contains("matchExpressions")) labels = sel;
  std::string out;
  if (labels && labels->is_object()) {
    for (const auto& [k, v] : labels->get_object()) {
      if (v.is_string())
        out += (out.empty() ? "" : ",") + std::string(k) + "=" + std::string(v.get_string());
    }
  }
  return out.empty() ? "<none>" : out;
}

// The sidecars of a pod (init containers with restartPolicy Always) that
// have started: they count as the pod's containers (printPod).
std::set<std::string, std::less<>> StartedSidecars(const json::value& pod) {
  std::set<std::string, std::less<>> sidecars, started;
  for (const auto& c : Array(pod, {"spec", "initContainers"})) {
    if (api::GetString(c, {"restartPolicy"}) == "Always")
      sidecars.emplace(api::GetString(c, {"name"}));
  }
  for (const auto& c : Array(pod, {"status", "initContainerStatuses"})) {
    const auto* s = api::Find(c, {"started"});
    if (sidecars.contains(api::GetString(c, {"name"})) && s && s->is_bool() && s->get_bool())
      started.emplace(api::GetString(c, {"name"}));
  }
  return started;
}

bool Initialized(const json::value& pod) {
  for (const auto& c : Array(pod, {"status", "conditions"})) {
    if (api::GetString(c, {"type"}) == "Initialized")
      return api::GetString(c, {"status"}) == "True";
  }
  return false;
}

// The pod STATUS column (printPod).
std::string PodStatus(const json::value& pod) {
  std::string reason(api::GetString(pod, {"status", "phase"}));
  if (auto r = api::GetString(pod, {"status", "reason"}); !r.empty()) reason = r;
  const auto& init = Array(pod, {"status", "initContainerStatuses"});
  const auto sidecars = StartedSidecars(pod);
  bool initializing = false;
  for (size_t i = 0; i < init.size(); ++i) {
    const auto& c = init[i];
    if (Int(c, {"state", "terminated", "exitCode"}) == 0 && api::Find(c, {"state", "terminated"}))
      continue;
    if (sidecars.contains(api::GetString(c, {"name"}))) continue;  // A sidecar that runs.
    if (auto r = api::GetString(c, {"state", "terminated", "reason"}); !r.empty()) {
      reason = "Init:" + std::string(r);
    } else if (auto w = api::GetString(c, {"state", "waiting", "reason"});
               !w.empty() && w != "PodInitializing") {
      reason = "Init:" + std::string(w);
    } else {
      reason = fmt::format("Init:{}/{}", i, Array(pod, {"spec", "initContainers"}).size());
    }
    initializing = true;
    break;
  }
  if (!initializing || Initialized(pod)) {
    bool has_running = false;
    const auto& statuses = Array(pod, {"status", "containerStatuses"});
    for (auto it = statuses.rbegin(); it != statuses.rend(); ++it) {
      const auto& c = *it;
      if (auto w = api::GetString(c, {"state", "waiting", "reason"}); !w.empty()) {
        reason = w;
      } else if (auto t = api::GetString(c, {"state", "terminated", "reason"}); !t.empty()) {
        reason = t;
      } else if (api::Find(c, {"state", "terminated"})) {
        int64_t sig = Int(c, {"state", "terminated", "signal"});
        reason = sig != 0 ? fmt::format("Signal:{}", sig)
                          : fmt::format("ExitCode:{}", Int(c, {"state", "terminated", "exitCode"}));
      } else if (api::Find(c, {"state", "running"}) && c.at("ready") == true) {
        has_running = true;
      }
    }
    if (reason == "Completed" && has_running) reason = "Running";
  }
  if (!api::GetString(pod, {"metadata", "deletionTimestamp"}).empty()) {
    reason = api::GetString(pod, {"status", "reason"}) == "NodeLost" ? "Unknown" : "Terminating";
  }
  return reason;
}

std::string Name(const json::value& o) {
  return std::string(api::GetString(o, {"metadata", "name"}));
}
std::string AgeOf(const json::value& o) {
  return Age(api::GetString(o, {"metadata", "creationTimestamp"}));
}
std::string OrNone(std::string_view s) { return s.empty() ? "<none>" : std::string(s); }
// An int-or-string field as printed ("1", "50%"), or `absent`.
std::string IntOrString(const json::value& o, std::initializer_list<std::string_view> path,
                        std::string_view absent) {
  const auto* v = api::Find(o, path);
  if (v && v->is_int64()) return std::to_string(v->get_int64());
  if (v && v->is_string()) return std::string(v->get_string());
  return std::string(absent);
}

using Cells = json::array;

struct Printer {
  std::vector<Column> columns;
  std::function<Cells(const json::value&)> cells;
};

// The kinds beyond round one's: columns as kubectl prints them for the real
// API server (printers.go, v1.32).
void AddMorePrinters(std::map<std::string, Printer>& p) {
  p["CronJob"] = {{{"Name", "string", "name", 0},
                   {"Schedule", "string", "", 0},
                   {"Timezone", "string", "", 0},
                   {"Suspend", "boolean", "", 0},
                   {"Active", "integer", "", 0},
                   {"Last Schedule", "string", "", 0},
                   {"Age", "string", "", 0},
                   {"Containers", "string", "", 1},
                   {"Images", "string", "", 1},
                   {"Selector", "string", "", 1}},
                  [](const json::value& o) {
                    const auto* suspend = api::Find(o, {"spec", "suspend"});
                    std::string last(api::GetString(o, {"status", "lastScheduleTime"}));
                    const auto& cs =
                        Array(o, {"spec", "jobTemplate", "spec", "template", "spec", "containers"});
                    const auto* sel = api::Find(o, {"spec", "jobTemplate", "spec", "selector"});
                    json::value holder = json::object{
                        {"spec", json::object{{"selector", sel ? *sel : json::value()}}}};
                    return Cells{Name(o),
                                 std::string(api::GetString(o, {"spec", "schedule"})),
                                 OrNone(api::GetString(o, {"spec", "timeZone"})),
                                 suspend && suspend->is_bool() && suspend->get_bool(),
                                 static_cast<int64_t>(Array(o, {"status", "active"}).size()),
                                 last.empty() ? "<none>" : Age(last),
                                 AgeOf(o),
                                 Joined(cs, "name"),
                                 Joined(cs, "image"),
                                 SelectorText(holder)};
                  }};
  p["ServiceAccount"] = {
      {{"Name", "string", "name", 0}, {"Secrets", "string", "", 0}, {"Age", "string", "", 0}},
      [](const json::value& o) {
        return Cells{Name(o), static_cast<int64_t>(Array(o, {"secrets"}).size()), AgeOf(o)};
      }};
  auto role = Printer{
      {{"Name", "string", "name", 0}, {"Created At", "date", "", 0}}, [](const json::value& o) {
        return Cells{Name(o), std::string(api::GetString(o, {"metadata", "creationTimestamp"}))};
      }};
  p["Role"] = role;
  p["ClusterRole"] = role;
  auto binding = Printer{{{"Name", "string", "name", 0},
                          {"Role", "string", "", 0},
                          {"Age", "string", "", 0},
                          {"Users", "string", "", 1},
                          {"Groups", "string", "", 1},
                          {"ServiceAccounts", "string", "", 1}},
                         [](const json::value& o) {
                           std::string users, groups, accounts;
                           auto add = [](std::string& to, std::string_view what) {
                             to += (to.empty() ? "" : ", ") + std::string(what);
                           };
                           for (const auto& s : Array(o, {"subjects"})) {
                             auto kind = api::GetString(s, {"kind"});
                             if (kind == "User") add(users, api::GetString(s, {"name"}));
                             if (kind == "Group") add(groups, api::GetString(s, {"name"}));
                             if (kind == "ServiceAccount") {
                               add(accounts, fmt::format("{}/{}", api::GetString(s, {"namespace"}),
                                                         api::GetString(s, {"name"})));
                             }
                           }
                           return Cells{Name(o),
                                        fmt::format("{}/{}", api::GetString(o, {"roleRef", "kind"}),
                                                    api::GetString(o, {"roleRef", "name"})),
                                        AgeOf(o),
                                        users,
                                        groups,
                                        accounts};
                         }};
  p["RoleBinding"] = binding;
  p["ClusterRoleBinding"] = binding;
  p["ResourceQuota"] = {{{"Name", "string", "name", 0},
                         {"Age", "string", "", 0},
                         {"Request", "string", "", 0},
                         {"Limit", "string", "", 0}},
                        [](const json::value& o) {
                          std::string request, limit;
                          const auto* hard = api::Find(o, {"spec", "hard"});
                          if (hard && hard->is_object()) {
                            std::map<std::string, std::string> sorted;
                            for (const auto& [k, v] : hard->get_object())
                              if (v.is_string()) sorted[k] = v.get_string();
                            for (const auto& [k, v] : sorted) {
                              std::string used(api::GetString(o, {"status", "used", k}));
                              std::string item =
                                  fmt::format("{}: {}/{}", k, used.empty() ? "0" : used, v);
                              std::string& to = k.starts_with("limits.") ? limit : request;
                              to += (to.empty() ? "" : ", ") + item;
                            }
                          }
                          return Cells{Name(o), AgeOf(o), request, limit};
                        }};
  p["CertificateSigningRequest"] = {
      {{"Name", "string", "name", 0},
       {"Age", "string", "", 0},
       {"SignerName", "string", "", 0},
       {"Requestor", "string", "", 0},
       {"RequestedDuration", "string", "", 0},
       {"Condition", "string", "", 0}},
      [](const json::value& o) {
        std::string condition;
        if (const auto* cs = api::Find(o, {"status", "conditions"}); cs && cs->is_array()) {
          for (const auto& c : cs->get_array()) {
            if (api::GetString(c, {"status"}) == "False") continue;
            condition += (condition.empty() ? "" : ",") + std::string(api::GetString(c, {"type"}));
          }
        }
        if (condition.empty()) condition = "Pending";
        if (!api::GetString(o, {"status", "certificate"}).empty()) condition += ",Issued";
        const auto* seconds = api::Find(o, {"spec", "expirationSeconds"});
        return Cells{Name(o),
                     AgeOf(o),
                     std::string(api::GetString(o, {"spec", "signerName"})),
                     std::string(api::GetString(o, {"spec", "username"})),
                     seconds && seconds->is_int64() ? HumanDuration(seconds->get_int64())
                                                    : std::string("<none>"),
                     condition};
      }};
  p["PodDisruptionBudget"] = {{{"Name", "string", "name", 0},
                               {"Min Available", "string", "", 0},
                               {"Max Unavailable", "string", "", 0},
                               {"Allowed Disruptions", "integer", "", 0},
                               {"Age", "string", "", 0}},
                              [](const json::value& o) {
                                return Cells{Name(o),
                                             IntOrString(o, {"spec", "minAvailable"}, "N/A"),
                                             IntOrString(o, {"spec", "maxUnavailable"}, "N/A"),
                                             Int(o, {"status", "disruptionsAllowed"}), AgeOf(o)};
                              }};
  // Storage (printPersistentVolume, printPersistentVolumeClaim, printStorageClass).
  auto modes = [](const json::value& o, std::initializer_list<std::string_view> path) {
    std::string out;
    for (const auto& m : Array(o, path)) {
      std::string_view mode = m.is_string() ? std::string_view(m.get_string()) : "";
      std::string_view abbreviation = mode == "ReadWriteOnce"      ? "RWO"
                                      : mode == "ReadOnlyMany"     ? "ROX"
                                      : mode == "ReadWriteMany"    ? "RWX"
                                      : mode == "ReadWriteOncePod" ? "RWOP"
                                                                   : mode;
      out += (out.empty() ? "" : ",") + std::string(abbreviation);
    }
    return out;
  };
  auto unset = [](const json::value& o, std::initializer_list<std::string_view> path) {
    std::string_view v = api::GetString(o, path);
    return v.empty() ? std::string("<unset>") : std::string(v);
  };
  p["PersistentVolume"] = {
      {{"Name", "string", "name", 0},
       {"Capacity", "string", "", 0},
       {"Access Modes", "string", "", 0},
       {"Reclaim Policy", "string", "", 0},
       {"Status", "string", "", 0},
       {"Claim", "string", "", 0},
       {"StorageClass", "string", "", 0},
       {"VolumeAttributesClass", "string", "", 0},
       {"Reason", "string", "", 0},
       {"Age", "string", "", 0},
       {"VolumeMode", "string", "", 1}},
      [=](const json::value& o) {
        std::string claim;
        if (const auto* ref = api::Find(o, {"spec", "claimRef"}); ref && ref->is_object()) {
          claim = fmt::format("{}/{}", api::GetString(*ref, {"namespace"}),
                              api::GetString(*ref, {"name"}));
        }
        return Cells{Name(o),
                     api::GetString(o, {"spec", "capacity", "storage"}),
                     modes(o, {"spec", "accessModes"}),
                     api::GetString(o, {"spec", "persistentVolumeReclaimPolicy"}),
                     api::GetString(o, {"status", "phase"}),
                     claim,
                     api::GetString(o, {"spec", "storageClassName"}),
                     unset(o, {"spec", "volumeAttributesClassName"}),
                     api::GetString(o, {"status", "reason"}),
                     AgeOf(o),
                     api::GetString(o, {"spec", "volumeMode"})};
      }};
  p["PersistentVolumeClaim"] = {
      {{"Name", "string", "name", 0},
       {"Status", "string", "", 0},
       {"Volume", "string", "", 0},
       {"Capacity", "string", "", 0},
       {"Access Modes", "string", "", 0},
       {"StorageClass", "string", "", 0},
       {"VolumeAttributesClass", "string", "", 0},
       {"Age", "string", "", 0},
       {"VolumeMode", "string", "", 1}},
      [=](const json::value& o) {
        std::string phase(api::GetString(o, {"status", "phase"}));
        if (!api::GetString(o, {"metadata", "deletionTimestamp"}).empty()) phase = "Terminating";
        bool bound = !api::GetString(o, {"spec", "volumeName"}).empty();
        return Cells{Name(o),
                     phase,
                     api::GetString(o, {"spec", "volumeName"}),
                     bound ? std::string(api::GetString(o, {"status", "capacity", "storage"})) : "",
                     bound ? modes(o, {"status", "accessModes"}) : "",
                     api::GetString(o, {"spec", "storageClassName"}),
                     unset(o, {"status", "currentVolumeAttributesClassName"}),
                     AgeOf(o),
                     api::GetString(o, {"spec", "volumeMode"})};
      }};
  p["StorageClass"] = {
      {{"Name", "string", "name", 0},
       {"Provisioner", "string", "", 0},
       {"ReclaimPolicy", "string", "", 0},
       {"VolumeBindingMode", "string", "", 0},
       {"AllowVolumeExpansion", "string", "", 0},
       {"Age", "string", "", 0}},
      [](const json::value& o) {
        std::string name = Name(o);
        if (api::GetString(o, {"metadata", "annotations",
                               "storageclass.kubernetes.io/is-default-class"}) == "true")
          name += " (default)";
        const auto* expand = api::Find(o, {"allowVolumeExpansion"});
        return Cells{name,
                     api::GetString(o, {"provisioner"}),
                     api::GetString(o, {"reclaimPolicy"}),
                     api::GetString(o, {"volumeBindingMode"}),
                     expand && expand->is_bool() && expand->get_bool() ? "true" : "false",
                     AgeOf(o)};
      }};
  p["PriorityClass"] = {{{"Name", "string", "name", 0},
                         {"Value", "integer", "", 0},
                         {"Global-Default", "boolean", "", 0},
                         {"Age", "string", "", 0},
                         {"PreemptionPolicy", "string", "", 0}},
                        [](const json::value& o) {
                          const auto* d = api::Find(o, {"globalDefault"});
                          std::string policy(api::GetString(o, {"preemptionPolicy"}));
                          return Cells{Name(o), Int(o, {"value"}),
                                       d && d->is_bool() && d->get_bool(), AgeOf(o),
                                       policy.empty() ? "PreemptLowerPriority" : policy};
                        }};
  p["RuntimeClass"] = {
      {{"Name", "string", "name", 0}, {"Handler", "string", "", 0}, {"Age", "string", "", 0}},
      [](const json::value& o) {
        return Cells{Name(o), api::GetString(o, {"handler"}), AgeOf(o)};
      }};
  p["Ingress"] = {{{"Name", "string", "name", 0},
                   {"Class", "string", "", 0},
                   {"Hosts", "string", "", 0},
                   {"Address", "string", "", 0},
                   {"Ports", "string", "", 0},
                   {"Age", "string", "", 0}},
                  [](const json::value& o) {
                    std::string hosts, address;
                    for (const auto& r : Array(o, {"spec", "rules"})) {
                      std::string host(api::GetString(r, {"host"}));
                      hosts += (hosts.empty() ? "" : ",") + (host.empty() ? "*" : host);
                    }
                    for (const auto& lb : Array(o, {"status", "loadBalancer", "ingress"})) {
                      std::string a(api::GetString(lb, {"ip"}));
                      if (a.empty()) a = api::GetString(lb, {"hostname"});
                      address += (address.empty() ? "" : ",") + a;
                    }
                    std::string cls(api::GetString(o, {"spec", "ingressClassName"}));
                    return Cells{Name(o),
                                 OrNone(cls),
                                 hosts.empty() ? "*" : hosts,
                                 address,
                                 Array(o, {"spec", "tls"}).empty() ? "80" : "80, 443",
                                 AgeOf(o)};
                  }};
  p["IngressClass"] = {
      {{"Name", "string", "name", 0},
       {"Controller", "string", "", 0},
       {"Parameters", "string", "", 0},
       {"Age", "string", "", 0}},
      [](const json::value& o) {
        const auto* params = api::Find(o, {"spec", "parameters"});
        std::string text = "<none>";
        if (params && params->is_object()) {
          std::string group(api::GetString(*params, {"apiGroup"}));
          text = fmt::format("{}{}/{}", group.empty() ? "" : group + "/",
                             api::GetString(*params, {"kind"}), api::GetString(*params, {"name"}));
        }
        return Cells{Name(o), std::string(api::GetString(o, {"spec", "controller"})), text,
                     AgeOf(o)};
      }};
  // printNetworkPolicy: the pod selector as metav1.FormatLabelSelector writes it.
  p["NetworkPolicy"] = {
      {{"Name", "string", "name", 0}, {"Pod-Selector", "string", "", 0}, {"Age", "string", "", 0}},
      [](const json::value& o) {
        std::string out;
        auto add = [&](const std::string& part) { out += (out.empty() ? "" : ",") + part; };
        const auto* sel = api::Find(o, {"spec", "podSelector"});
        if (const auto* l = sel ? api::Find(*sel, {"matchLabels"}) : nullptr; l && l->is_object()) {
          for (const auto& [k, v] : l->get_object())
            if (v.is_string()) add(fmt::format("{}={}", k, v.get_string().c_str()));
        }
        for (const auto& e : sel ? Array(*sel, {"matchExpressions"}) : json::array()) {
          std::string key(api::GetString(e, {"key"}));
          std::string_view op = api::GetString(e, {"operator"});
          std::string values;
          for (const auto& v : Array(e, {"values"}))
            if (v.is_string()) values += (values.empty() ? "" : ",") + std::string(v.get_string());
          if (op == "In") add(fmt::format("{} in ({})", key, values));
          if (op == "NotIn") add(fmt::format("{} notin ({})", key, values));
          if (op == "Exists") add(key);
          if (op == "DoesNotExist") add("!" + key);
        }
        return Cells{Name(o), out.empty() ? "<none>" : out, AgeOf(o)};
      }};
  p["HorizontalPodAutoscaler"] = {
      {{"Name", "string", "name", 0},
       {"Reference", "string", "", 0},
       {"Targets", "string", "", 0},
       {"MinPods", "string", "", 0},
       {"MaxPods", "integer", "", 0},
       {"Replicas", "integer", "", 0},
       {"Age", "string", "", 0}},
      [](const json::value& o) {
        std::string targets;
        for (const auto& m : Array(o, {"spec", "metrics"})) {
          if (api::GetString(m, {"type"}) != "Resource") continue;
          std::string name(api::GetString(m, {"resource", "name"}));
          const auto* util = api::Find(m, {"resource", "target", "averageUtilization"});
          std::string want =
              util && util->is_int64()
                  ? fmt::format("{}%", util->get_int64())
                  : std::string(api::GetString(m, {"resource", "target", "averageValue"}));
          std::string current = "<unknown>";
          for (const auto& c : Array(o, {"status", "currentMetrics"})) {
            if (api::GetString(c, {"resource", "name"}) != name) continue;
            const auto* u = api::Find(c, {"resource", "current", "averageUtilization"});
            if (u && u->is_int64()) current = fmt::format("{}%", u->get_int64());
          }
          targets += (targets.empty() ? "" : ", ") + fmt::format("{}: {}/{}", name, current, want);
        }
        const auto* min = api::Find(o, {"spec", "minReplicas"});
        return Cells{Name(o),
                     fmt::format("{}/{}", api::GetString(o, {"spec", "scaleTargetRef", "kind"}),
                                 api::GetString(o, {"spec", "scaleTargetRef", "name"})),
                     targets.empty() ? "<none>" : targets,
                     min && min->is_int64() ? std::to_string(min->get_int64()) : "<unset>",
                     Int(o, {"spec", "maxReplicas"}),
                     Int(o, {"status", "currentReplicas"}),
                     AgeOf(o)};
      }};
  p["Endpoints"] = {
      {{"Name", "string", "name", 0}, {"Endpoints", "string", "", 0}, {"Age", "string", "", 0}},
      [](const json::value& o) {
        std::vector<std::string> all;
        for (const auto& subset : Array(o, {"subsets"})) {
          for (const auto& a : Array(subset, {"addresses"})) {
            const auto& ports = Array(subset, {"ports"});
            if (ports.empty()) all.emplace_back(api::GetString(a, {"ip"}));
            for (const auto& port : ports)
              all.push_back(fmt::format("{}:{}", api::GetString(a, {"ip"}), Int(port, {"port"})));
          }
        }
        std::string text;
        for (size_t i = 0; i < all.size() && i < 3; ++i) text += (i ? "," : "") + all[i];
        if (all.size() > 3) text += fmt::format(" + {} more...", all.size() - 3);
        return Cells{Name(o), text.empty() ? "<none>" : text, AgeOf(o)};
      }};
  p["EndpointSlice"] = {
      {{"Name", "string", "name", 0},
       {"AddressType", "string", "", 0},
       {"Ports", "string", "", 0},
       {"Endpoints", "string", "", 0},
       {"Age", "string", "", 0}},
      [](const json::value& o) {
        std::string ports;
        for (const auto& port : Array(o, {"ports"}))
          ports += (ports.empty() ? "" : ",") + std::to_string(Int(port, {"port"}));
        std::vector<std::string> all;
        for (const auto& e : Array(o, {"endpoints"})) {
          for (const auto& a : Array(e, {"addresses"}))
            if (a.is_string()) all.emplace_back(a.get_string());
        }
        std::string text;
        for (size_t i = 0; i < all.size() && i < 3; ++i) text += (i ? "," : "") + all[i];
        if (all.size() > 3) text += fmt::format(" + {} more...", all.size() - 3);
        return Cells{Name(o), std::string(api::GetString(o, {"addressType"})),
                     ports.empty() ? "<unset>" : ports, text.empty() ? "<unset>" : text, AgeOf(o)};
      }};
  p["Lease"] = {
      {{"Name", "string", "name", 0}, {"Holder", "string", "", 0}, {"Age", "string", "", 0}},
      [](const json::value& o) {
        return Cells{Name(o), std::string(api::GetString(o, {"spec", "holderIdentity"})), AgeOf(o)};
      }};
  p["DaemonSet"] = {{{"Name", "string", "name", 0},
                     {"Desired", "integer", "", 0},
                     {"Current", "integer", "", 0},
                     {"Ready", "integer", "", 0},
                     {"Up-to-date", "integer", "", 0},
                     {"Available", "integer", "", 0},
                     {"Node Selector", "string", "", 0},
                     {"Age", "string", "", 0},
                     {"Containers", "string", "", 1},
                     {"Images", "string", "", 1},
                     {"Selector", "string", "", 1}},
                    [](const json::value& o) {
                      std::string selector;
                      const auto* ns = api::Find(o, {"spec", "template", "spec", "nodeSelector"});
                      if (ns && ns->is_object()) {
                        for (const auto& [k, v] : ns->get_object()) {
                          if (v.is_string()) {
                            selector += (selector.empty() ? "" : ",") + std::string(k) + "=" +
                                        std::string(v.get_string());
                          }
                        }
                      }
                      const auto& cs = Array(o, {"spec", "template", "spec", "containers"});
                      return Cells{Name(o),
                                   Int(o, {"status", "desiredNumberScheduled"}),
                                   Int(o, {"status", "currentNumberScheduled"}),
                                   Int(o, {"status", "numberReady"}),
                                   Int(o, {"status", "updatedNumberScheduled"}),
                                   Int(o, {"status", "numberAvailable"}),
                                   OrNone(selector),
                                   AgeOf(o),
                                   Joined(cs, "name"),
                                   Joined(cs, "image"),
                                   SelectorText(o)};
                    }};
  p["StatefulSet"] = {{{"Name", "string", "name", 0},
                       {"Ready", "string", "", 0},
                       {"Age", "string", "", 0},
                       {"Containers", "string", "", 1},
                       {"Images", "string", "", 1}},
                      [](const json::value& o) {
                        const auto& cs = Array(o, {"spec", "template", "spec", "containers"});
                        return Cells{Name(o),
                                     fmt::format("{}/{}", Int(o, {"status", "readyReplicas"}),
                                                 Int(o, {"spec", "replicas"})),
                                     AgeOf(o), Joined(cs, "name"), Joined(cs, "image")};
                      }};
}

const Printer& PrinterFor(const std::string& kind) {
  static const auto& printers = *new std::map<std::string, Printer>([] {
    std::map<std::string, Printer> p;
    p["Pod"] = {{{"Name", "string", "name", 0},
                 {"Ready", "string", "", 0},
                 {"Status", "string", "", 0},
                 {"Restarts", "string", "", 0},
                 {"Age", "string", "", 0},
                 {"IP", "string", "", 1},
                 {"Node", "string", "", 1},
                 {"Nominated Node", "string", "", 1},
                 {"Readiness Gates", "string", "", 1}},
                [](const json::value& o) {
                  const auto& statuses = Array(o, {"status", "containerStatuses"});
                  int64_t ready = 0, restarts = 0;
                  auto is_ready = [](const json::value& c) {
                    return c.is_object() && c.get_object().contains("ready") &&
                           c.at("ready") == true;
                  };
                  for (const auto& c : statuses) {
                    if (is_ready(c)) ++ready;
                    restarts += Int(c, {"restartCount"});
                  }
                  // Sidecars count as containers: ready once started and ready.
                  size_t total = Array(o, {"spec", "containers"}).size();
                  const auto started = StartedSidecars(o);
                  for (const auto& c : Array(o, {"spec", "initContainers"}))
                    total += api::GetString(c, {"restartPolicy"}) == "Always" ? 1 : 0;
                  for (const auto& c : Array(o, {"status", "initContainerStatuses"})) {
                    if (!started.contains(api::GetString(c, {"name"}))) continue;
                    if (is_ready(c)) ++ready;
                    restarts += Int(c, {"restartCount"});
                  }
                  std::string ip(api::GetString(o, {"status", "podIP"}));
                  std::string node(api::GetString(o, {"spec", "nodeName"}));
                  return Cells{std::string(api::GetString(o, {"metadata", "name"})),
                               fmt::format("{}/{}", ready, total),
                               PodStatus(o),
                               fmt::format("{}", restarts),
                               Age(api::GetString(o, {"metadata", "creationTimestamp"})),
                               ip.empty() ? "<none>" : ip,
                               node.empty() ? "<none>" : node,
                               "<none>",
                               "<none>"};
                }};
    p["Deployment"] = {{{"Name", "string", "name", 0},
                        {"Ready", "string", "", 0},
                        {"Up-to-date", "integer", "", 0},
                        {"Available", "integer", "", 0},
                        {"Age", "string", "", 0},
                        {"Containers", "string", "", 1},
                        {"Images", "string", "", 1},
                        {"Selector", "string", "", 1}},
                       [](const json::value& o) {
                         const auto& cs = Array(o, {"spec", "template", "spec", "containers"});
                         return Cells{std::string(api::GetString(o, {"metadata", "name"})),
                                      fmt::format("{}/{}", Int(o, {"status", "readyReplicas"}),
                                                  Int(o, {"spec", "replicas"})),
                                      Int(o, {"status", "updatedReplicas"}),
                                      Int(o, {"status", "availableReplicas"}),
                                      Age(api::GetString(o, {"metadata", "creationTimestamp"})),
                                      Joined(cs, "name"),
                                      Joined(cs, "image"),
                                      SelectorText(o)};
                       }};
    auto replica_printer = [](const json::value& o) {
      const auto& cs = Array(o, {"spec", "template", "spec", "containers"});
      return Cells{std::string(api::GetString(o, {"metadata", "name"})),
                   Int(o, {"spec", "replicas"}),
                   Int(o, {"status", "replicas"}),
                   Int(o, {"status", "readyReplicas"}),
                   Age(api::GetString(o, {"metadata", "creationTimestamp"})),
                   Joined(cs, "name"),
                   Joined(cs, "image"),
                   SelectorText(o)};
    };
    std::vector<Column> replica_columns = {
        {"Name", "string", "name", 0}, {"Desired", "integer", "", 0},
        {"Current", "integer", "", 0}, {"Ready", "integer", "", 0},
        {"Age", "string", "", 0},      {"Containers", "string", "", 1},
        {"Images", "string", "", 1},   {"Selector", "string", "", 1}};
    p["ReplicaSet"] = {replica_columns, replica_printer};
    p["ReplicationController"] = {replica_columns, replica_printer};
    p["Service"] = {{{"Name", "string", "name", 0},
                     {"Type", "string", "", 0},
                     {"Cluster-IP", "string", "", 0},
                     {"External-IP", "string", "", 0},
                     {"Port(s)", "string", "", 0},
                     {"Age", "string", "", 0},
                     {"Selector", "string", "", 1}},
                    [](const json::value& o) {
                      std::string ports;
                      for (const auto& port : Array(o, {"spec", "ports"})) {
                        std::string one = fmt::format("{}", Int(port, {"port"}));
                        if (int64_t np = Int(port, {"nodePort"})) one += fmt::format(":{}", np);
                        one += "/" + std::string(api::GetString(port, {"protocol"}));
                        ports += (ports.empty() ? "" : ",") + one;
                      }
                      std::string selector;
                      if (const auto* s = api::Find(o, {"spec", "selector"}); s && s->is_object()) {
                        for (const auto& [k, v] : s->get_object()) {
                          if (v.is_string()) {
                            selector += (selector.empty() ? "" : ",") + std::string(k) + "=" +
                                        std::string(v.get_string());
                          }
                        }
                      }
                      std::string ip(api::GetString(o, {"spec", "clusterIP"}));
                      return Cells{std::string(api::GetString(o, {"metadata", "name"})),
                                   std::string(api::GetString(o, {"spec", "type"})),
                                   ip.empty() ? "<none>" : ip,
                                   "<none>",
                                   ports.empty() ? "<none>" : ports,
                                   Age(api::GetString(o, {"metadata", "creationTimestamp"})),
                                   selector.empty() ? "<none>" : selector};
                    }};
    p["Node"] = {{{"Name", "string", "name", 0},
                  {"Status", "string", "", 0},
                  {"Roles", "string", "", 0},
                  {"Age", "string", "", 0},
                  {"Version", "string", "", 0},
                  {"Internal-IP", "string", "", 1},
                  {"External-IP", "string", "", 1},
                  {"OS-Image", "string", "", 1},
                  {"Kernel-Version", "string", "", 1},
                  {"Container-Runtime", "string", "", 1}},
                 [](const json::value& o) {
                   std::string status = "Unknown";
                   for (const auto& c : Array(o, {"status", "conditions"})) {
                     if (api::GetString(c, {"type"}) == "Ready")
                       status = api::GetString(c, {"status"}) == "True" ? "Ready" : "NotReady";
                   }
                   if (const auto* u = api::Find(o, {"spec", "unschedulable"}); u && *u == true)
                     status += ",SchedulingDisabled";
                   std::string roles;
                   for (const auto& [k, v] : api::GetLabels(o)) {
                     (void)v;
                     if (k.starts_with("node-role.kubernetes.io/"))
                       roles += (roles.empty() ? "" : ",") + k.substr(24);
                   }
                   std::string internal = "<none>", external = "<none>";
                   for (const auto& a : Array(o, {"status", "addresses"})) {
                     if (api::GetString(a, {"type"}) == "InternalIP")
                       internal = api::GetString(a, {"address"});
                     if (api::GetString(a, {"type"}) == "ExternalIP")
                       external = api::GetString(a, {"address"});
                   }
                   auto info = [&](std::string_view f) {
                     std::string v(api::GetString(o, {"status", "nodeInfo", f}));
                     return v.empty() ? std::string("<unknown>") : v;
                   };
                   return Cells{
                       std::string(api::GetString(o, {"metadata", "name"})),
                       status,
                       roles.empty() ? "<none>" : roles,
                       Age(api::GetString(o, {"metadata", "creationTimestamp"})),
                       std::string(api::GetString(o, {"status", "nodeInfo", "kubeletVersion"})),
                       internal,
                       external,
                       info("osImage"),
                       info("kernelVersion"),
                       info("containerRuntimeVersion")};
                 }};
    p["Namespace"] = {
        {{"Name", "string", "name", 0}, {"Status", "string", "", 0}, {"Age", "string", "", 0}},
        [](const json::value& o) {
          return Cells{std::string(api::GetString(o, {"metadata", "name"})),
                       std::string(api::GetString(o, {"status", "phase"})),
                       Age(api::GetString(o, {"metadata", "creationTimestamp"}))};
        }};
    p["ConfigMap"] = {
        {{"Name", "string", "name", 0}, {"Data", "string", "", 0}, {"Age", "string", "", 0}},
        [](const json::value& o) {
          size_t n = 0;
          for (std::string_view f : {"data", "binaryData"}) {
            if (const auto* d = api::Find(o, {f}); d && d->is_object()) n += d->get_object().size();
          }
          return Cells{std::string(api::GetString(o, {"metadata", "name"})),
                       static_cast<int64_t>(n),
                       Age(api::GetString(o, {"metadata", "creationTimestamp"}))};
        }};
    p["Secret"] = {{{"Name", "string", "name", 0},
                    {"Type", "string", "", 0},
                    {"Data", "string", "", 0},
                    {"Age", "string", "", 0}},
                   [](const json::value& o) {
                     const auto* d = api::Find(o, {"data"});
                     int64_t n =
                         d && d->is_object() ? static_cast<int64_t>(d->get_object().size()) : 0;
                     return Cells{std::string(api::GetString(o, {"metadata", "name"})),
                                  std::string(api::GetString(o, {"type"})), n,
                                  Age(api::GetString(o, {"metadata", "creationTimestamp"}))};
                   }};
    p["Job"] = {{{"Name", "string", "name", 0},
                 {"Status", "string", "", 0},
                 {"Completions", "string", "", 0},
                 {"Duration", "string", "", 0},
                 {"Age", "string", "", 0},
                 {"Containers", "string", "", 1},
                 {"Images", "string", "", 1},
                 {"Selector", "string", "", 1}},
                [](const json::value& o) {
                  std::string status = "Running";
                  for (const auto& c : Array(o, {"status", "conditions"})) {
                    if (api::GetString(c, {"status"}) != "True") continue;
                    auto type = api::GetString(c, {"type"});
                    if (type == "Complete") status = "Complete";
                    if (type == "Failed") status = "Failed";
                    if (type == "Suspended") status = "Suspended";
                  }
                  const auto& cs = Array(o, {"spec", "template", "spec", "containers"});
                  std::string start(api::GetString(o, {"status", "startTime"}));
                  return Cells{std::string(api::GetString(o, {"metadata", "name"})),
                               status,
                               fmt::format("{}/{}", Int(o, {"status", "succeeded"}),
                                           Int(o, {"spec", "completions"})),
                               start.empty() ? "" : Age(start),
                               Age(api::GetString(o, {"metadata", "creationTimestamp"})),
                               Joined(cs, "name"),
                               Joined(cs, "image"),
                               SelectorText(o)};
                }};
    p["Event"] = {{{"Last Seen", "string", "", 0},
                   {"Type", "string", "", 0},
                   {"Reason", "string", "", 0},
                   {"Object", "string", "", 0},
                   {"Message", "string", "", 0}},
                  [](const json::value& o) {
                    std::string last(api::GetString(o, {"lastTimestamp"}));
                    if (last.empty()) last = api::GetString(o, {"eventTime"});
                    std::string kind(api::GetString(o, {"involvedObject", "kind"}));
                    for (char& c : kind)
                      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                    return Cells{
                        Age(last), std::string(api::GetString(o, {"type"})),
                        std::string(api::GetString(o, {"reason"})),
                        kind + "/" + std::string(api::GetString(o, {"involvedObject", "name"})),
                        std::string(api::GetString(o, {"message"}))};
                  }};
    AddMorePrinters(p);
    p[""] = {{{"Name", "string", "name", 0}, {"Age", "string", "", 0}}, [](const json::value& o) {
               return Cells{std::string(api::GetString(o, {"metadata", "name"})),
                            Age(api::GetString(o, {"metadata", "creationTimestamp"}))};
             }};
    return p;
  }());
  auto it = printers.find(kind);
  return it == printers.end() ? printers.at("") : it->second;
}

// A custom kind's columns: NAME, then its definition's additionalPrinterColumns
// (or AGE), each cell read at its JSONPath (a date shown as an age, as
// upstream's table convertor does). Built once per kind and kept: a published
// kind lives as long as the process.
const Printer& CustomPrinter(const api::ResourceType& type) {
  static std::mutex mu;
  static auto& printers = *new std::map<const api::ResourceType*, std::unique_ptr<Printer>>();
  static auto& names = *new std::deque<std::string>();  // What the columns' names point to.
  std::lock_guard lock(mu);
  auto& slot = printers[&type];
  if (slot) return *slot;
  slot = std::make_unique<Printer>();
  slot->columns.push_back({"Name", "string", "name", 0});
  for (const auto& c : type.custom->columns) {
    const std::string& name = names.emplace_back(c.name);
    const std::string& t = names.emplace_back(c.type == "date" ? "date" : c.type);
    const std::string& f = names.emplace_back(c.format);
    slot->columns.push_back({name.c_str(), t.c_str(), f.c_str(), c.priority});
  }
  auto columns = type.custom->columns;
  slot->cells = [columns](const json::value& o) {
    Cells cells{std::string(api::GetString(o, {"metadata", "name"}))};
    for (const auto& c : columns) {
      const json::value* v = api::AtJsonPath(o, c.json_path);
      if (!v || v->is_null()) {
        cells.emplace_back(nullptr);
      } else if (c.type == "date" && v->is_string()) {
        cells.emplace_back(Age(v->get_string()));
      } else if (c.type == "string" && !v->is_string()) {
        cells.emplace_back(json::serialize(*v));
      } else {
        cells.push_back(*v);
      }
    }
    return cells;
  };
  return *slot;
}

}  // namespace

bool WantsTable(const Request& req) {
  std::string_view accept = req.Header("accept");
  return accept.find("as=Table") != std::string_view::npos;
}

std::string RenderTable(const api::ResourceType& type, const std::vector<ObjectPtr>& objects,
                        const Request& req, const std::string& resource_version,
                        const std::string& continue_token, bool with_columns) {
  const Printer& printer = type.custom ? CustomPrinter(type) : PrinterFor(type.kind);
  std::string include(req.Query("includeObject").value_or("Metadata"));
  json::object table;
  table["kind"] = "Table";
  table["apiVersion"] = "meta.k8s.io/v1";
  json::object meta;
  if (!resource_version.empty()) meta["resourceVersion"] = resource_version;
  if (!continue_token.empty()) meta["continue"] = continue_token;
  table["metadata"] = std::move(meta);
  json::array columns;
  if (with_columns) {
    for (const auto& c : printer.columns) {
      columns.push_back(json::object{{"name", c.name},
                                     {"type", c.type},
                                     {"format", c.format},
                                     {"description", ""},
                                     {"priority", c.priority}});
    }
  }
  table["columnDefinitions"] = std::move(columns);
  json::array rows;
  for (const auto& obj : objects) {
    auto parsed = api::ParseJson(obj->json);
    if (!parsed.ok()) continue;
    json::object row;
    row["cells"] = printer.cells(*parsed);
    if (include == "Object") {
      row["object"] = std::move(*parsed);
    } else if (include != "None") {
      json::object partial;
      partial["kind"] = "PartialObjectMetadata";
      partial["apiVersion"] = "meta.k8s.io/v1";
      const auto* m = api::Find(*parsed, {"metadata"});
      partial["metadata"] = m ? *m : json::object();
      row["object"] = std::move(partial);
    }
    rows.push_back(std::move(row));
  }
  table["rows"] = std::move(rows);
  return json::serialize(table);
}

}  // namespace kiso::apiserver
