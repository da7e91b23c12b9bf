#include "controller/endpoints_controller.h"

#include <boost/json.hpp>

#include "api/object.h"
#include "controller/service_endpoints.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Services() { return *api::FindResource("", "v1", "services"); }
const api::ResourceType& Pods() { return *api::FindResource("", "v1", "pods"); }
const api::ResourceType& Endpoints() { return *api::FindResource("", "v1", "endpoints"); }

}  // namespace

EndpointsController::EndpointsController(client::Client* client, client::SharedInformers* shared)
    : Controller(client, "endpoints-controller", 2, shared) {
  services_ = Watch(Services(), [this](const json::value*, const json::value& svc, bool) {
    Enqueue(KeyOf(svc));
  });
  pods_ = Watch(Pods(), [this](const json::value* old, const json::value& pod, bool) {
    for (const auto& key : ServicesSelecting(services_->Items(), old, pod)) Enqueue(key);
  });
  // Its own writes come back too: a Reconcile that compared against a cache
  // still behind them looks again once the cache has them.
  endpoints_ = Watch(
      Endpoints(), [this](const json::value*, const json::value& ep, bool) { Enqueue(KeyOf(ep)); });
}

Status EndpointsController::Reconcile(const std::string& key) {
  const auto [ns_part, name_part] = SplitKey(key);
  const std::string& ns = ns_part;
  const std::string& name = name_part;
  auto svc = services_->Get(ns, name);
  auto current = endpoints_->Get(ns, name);
  if (!svc) {
    if (current) {
      // The cache may be behind a Service created just before its Endpoints
      // (a Service without a selector, whose Endpoints its user writes): only
      // a Service that is really gone takes its Endpoints along.
      auto live = client()->Get(Services(), ns, name);
      if (live.ok()) return Status::Ok();  // Its event is on the way, and requeues the key.
      if (live.status().code() != Code::kNotFound) return live.status();
      Status s = client()->Delete(Endpoints(), ns, name);
      if (!s.ok() && s.code() != Code::kNotFound) return s;
    }
    return Status::Ok();
  }
  const auto* selector = api::Find(*svc, {"spec", "selector"});
  if (!selector || !selector->is_object() || selector->get_object().empty()) return Status::Ok();
  // One subset per distinct port list (upstream packs pods with the same ports together).
  std::map<std::string, std::pair<json::array, json::array>>
      by_ports;  // ports JSON → (ready, not).
  std::map<std::string, json::array> ports_of;
  for (auto& e : SelectedEndpoints(*svc, pods_->Items())) {
    // Terminating pods leave Endpoints (EndpointSlices keep them, marked).
    if (e.terminating && !e.ready) continue;
    std::string ports_key = json::serialize(e.ports);
    ports_of[ports_key] = e.ports;
    json::object address{{"ip", e.ip}, {"targetRef", std::move(e.target_ref)}};
    if (!e.hostname.empty()) address["hostname"] = e.hostname;
    if (!e.node_name.empty()) address["nodeName"] = e.node_name;
    auto& lists = by_ports[ports_key];
    (e.ready ? lists.first : lists.second).push_back(std::move(address));
  }
  json::array subsets;
  for (auto& [ports_key, lists] : by_ports) {
    json::object subset;
    if (!lists.first.empty()) subset["addresses"] = std::move(lists.first);
    if (!lists.second.empty()) subset["notReadyAddresses"] = std::move(lists.second);
    subset["ports"] = ports_of[ports_key];
    subsets.push_back(std::move(subset));
  }
  json::value desired = json::object{{"apiVersion", "v1"},
                                     {"kind", "Endpoints"},
                                     {"metadata", json::object{{"name", name}, {"namespace", ns}}},
                                     {"subsets", std::move(subsets)}};
  if (!current) {
    // AlreadyExists: our cache has not seen an earlier write yet. Failing
    // retries the key (with back-off) until it has, and then updates: taking
    // it as done would leave that earlier, older subset list in place.
    auto created = client()->Create(Endpoints(), ns, desired);
    return created.ok() ? Status::Ok() : created.status();
  }
  const auto* have = api::Find(*current, {"subsets"});
  const json::value empty = json::array();
  if ((have ? *have : empty) == desired.at("subsets")) return Status::Ok();
  return UpdateFresh(Endpoints(), *current,
                     [&](json::value& ep) { ep.as_object()["subsets"] = desired.at("subsets"); });
}

}  // namespace kiso::controller
