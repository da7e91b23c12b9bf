#include "controller/ingress_status_controller.h"

#include <boost/json.hpp>

#include "api/ingress_class.h"
#include "api/object.h"
#include "controller/service_lb_controller.h"

namespace kiso::controller {

namespace json = boost::json;

namespace {

const api::ResourceType& Ingresses() {
  return *api::FindResource("networking.k8s.io", "v1", "ingresses");
}
const api::ResourceType& Classes() {
  return *api::FindResource("networking.k8s.io", "v1", "ingressclasses");
}
const api::ResourceType& Nodes() { return *api::FindResource("", "v1", "nodes"); }

}  // namespace

IngressStatusController::IngressStatusController(client::Client* client,
                                                 client::SharedInformers* shared)
    : Controller(client, "ingress-status-controller", 1, shared) {
  ingresses_ = Watch(Ingresses(), [this](const json::value*, const json::value& ing, bool) {
    Enqueue(KeyOf(ing));
  });
  classes_ = Watch(Classes(), [this](const json::value*, const json::value&, bool) {
    EnqueueAll();  // Which Ingresses are kiso's may have changed.
  });
  nodes_ = Watch(Nodes(), [this](const json::value* old, const json::value& node, bool deleted) {
    if (ChangesReadyIps(old, node, deleted)) EnqueueAll();
  });
}

void IngressStatusController::EnqueueAll() {
  for (const auto& ing : ingresses_->List()) Enqueue(KeyOf(ing));
}

Status IngressStatusController::Reconcile(const std::string& key) {
  auto [ns, name] = SplitKey(key);
  auto ing = ingresses_->Get(ns, name);
  if (!ing) return Status::Ok();
  json::array ips;
  for (const auto& ip : ReadyInternalIps(nodes_->List())) ips.push_back(json::object{{"ip", ip}});
  const bool ours = api::IngressBelongsTo(*ing, classes_->List(), api::kKisoIngressController);
  json::array want = ours ? ips : json::array{};
  const json::value* have = api::Find(*ing, {"status", "loadBalancer", "ingress"});
  if (have ? (have->is_array() && have->get_array() == want) : want.empty()) return Status::Ok();
  // Not kiso's: clear only what kiso wrote (the class changed); another
  // controller's entries are its own.
  if (!ours && !(have && have->is_array() && have->get_array() == ips)) return Status::Ok();
  return WriteLoadBalancerIngress(client(), Ingresses(), *ing, std::move(want));
}

Status IngressStatusController::EnsureDefaultClass(client::Client* client) {
  json::value cls = json::object{
      {"apiVersion", "networking.k8s.io/v1"},
      {"kind", "IngressClass"},
      {"metadata",
       json::object{
           {"name", "kiso"},
           {"annotations", json::object{{"ingressclass.kubernetes.io/is-default-class", "true"}}}}},
      {"spec", json::object{{"controller", api::kKisoIngressController}}}};
  auto made = client->Create(Classes(), "", cls);
  if (made.ok() || made.status().code() == Code::kAlreadyExists) return Status::Ok();
  return made.status();
}

}  // namespace kiso::controller
