#include "controller/service_endpoints.h"

#include <boost/json.hpp>
#include <charconv>

#include "api/object.h"
#include "controller/controller.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

// A service port's target on a pod: a number, or a named container port.
std::optional<int64_t> TargetPort(const json::value& service_port, const json::value& pod) {
  const auto* target = api::Find(service_port, {"targetPort"});
  if (!target) target = api::Find(service_port, {"port"});
  if (target && target->is_int64()) return target->get_int64();
  if (!target || !target->is_string()) return std::nullopt;
  const auto* containers = api::Find(pod, {"spec", "containers"});
  if (!containers || !containers->is_array()) return std::nullopt;
  for (const auto& c : containers->get_array()) {
    const auto* ports = api::Find(c, {"ports"});
    if (!ports || !ports->is_array()) continue;
    for (const auto& p : ports->get_array()) {
      if (api::GetString(p, {"name"}) == target->get_string()) {
        const auto* n = api::Find(p, {"containerPort"});
        if (n && n->is_int64()) return n->get_int64();
      }
    }
  }
  return std::nullopt;
}

}  // namespace

bool Selects(const json::value& service, const json::value& pod) {
  const auto* selector = api::Find(service, {"spec", "selector"});
  if (!selector || !selector->is_object() || selector->get_object().empty()) return false;
  auto labels = api::GetLabels(pod);
  for (const auto& [k, v] : selector->get_object()) {
    auto it = labels.find(std::string(k));
    if (it == labels.end() || !v.is_string() || it->second != v.get_string()) return false;
  }
  return true;
}

std::vector<std::string> ServicesSelecting(const SharedObjects& services, const json::value* old,
                                           const json::value& pod) {
  std::vector<std::string> out;
  std::string_view ns = api::GetString(pod, {"metadata", "namespace"});
  for (const auto& shared : services) {
    const json::value& svc = *shared;
    if (api::GetString(svc, {"metadata", "namespace"}) != ns) continue;
    if (Selects(svc, pod) || (old && Selects(svc, *old))) out.push_back(api::KeyOf(svc));
  }
  return out;
}

int64_t PodWeight(const json::value& pod) {
  std::string_view w = api::GetString(pod, {"metadata", "annotations", "kiso.dev/weight"});
  int64_t n = 0;
  auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), n);
  return ec == std::errc() && end == w.data() + w.size() && n > 0 ? n : 1;
}

std::vector<PodEndpoint> SelectedEndpoints(const json::value& service, const SharedObjects& pods) {
  std::vector<PodEndpoint> out;
  std::string_view ns = api::GetString(service, {"metadata", "namespace"});
  std::string_view name = api::GetString(service, {"metadata", "name"});
  const auto* publish = api::Find(service, {"spec", "publishNotReadyAddresses"});
  bool publish_not_ready = publish && publish->is_bool() && publish->get_bool();
  for (const auto& shared : pods) {
    const json::value& pod = *shared;
    if (api::GetString(pod, {"metadata", "namespace"}) != ns || !Selects(service, pod)) continue;
    std::string ip(api::GetString(pod, {"status", "podIP"}));
    std::string_view phase = api::GetString(pod, {"status", "phase"});
    if (ip.empty() || phase == "Succeeded" || phase == "Failed") continue;
    PodEndpoint e;
    e.ip = ip;
    e.terminating = !api::GetString(pod, {"metadata", "deletionTimestamp"}).empty();
    e.serving = IsReadyPod(pod);
    e.ready = publish_not_ready || (e.serving && !e.terminating);
    e.node_name = std::string(api::GetString(pod, {"spec", "nodeName"}));
    if (api::GetString(pod, {"spec", "subdomain"}) == name)
      e.hostname = std::string(api::GetString(pod, {"spec", "hostname"}));
    e.target_ref = json::object{{"kind", "Pod"},
                                {"namespace", ns},
                                {"name", api::GetString(pod, {"metadata", "name"})},
                                {"uid", api::GetString(pod, {"metadata", "uid"})}};
    if (const auto* sp = api::Find(service, {"spec", "ports"}); sp && sp->is_array()) {
      for (const auto& p : sp->get_array()) {
        auto port = TargetPort(p, pod);
        if (!port) continue;
        json::object entry{{"port", *port}, {"protocol", api::GetString(p, {"protocol"})}};
        if (auto n = api::GetString(p, {"name"}); !n.empty()) entry["name"] = n;
        e.ports.push_back(std::move(entry));
      }
    }
    e.weight = PodWeight(pod);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace kiso::controller
