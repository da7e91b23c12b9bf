// ServiceLbController: K3s' ServiceLB role for Services of type LoadBalancer
// (without a spec.loadBalancerClass, which names another implementation):
// status.loadBalancer.ingress lists the InternalIP of every Ready node, and
// every node's data plane answers the Service's ports on those addresses
// (network/proxy: load-balancer addresses are external IPs). A Service that
// stops being a LoadBalancer has its ingress cleared.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "controller/controller.h"

namespace kiso::controller {

// The InternalIP of every Ready node: where a load balancer's (and the built-in
// ingress controller's) ports answer.
std::set<std::string> ReadyInternalIps(const std::vector<boost::json::value>& nodes);
// Whether a node event changes ReadyInternalIps.
bool ChangesReadyIps(const boost::json::value* old, const boost::json::value& node, bool deleted);
// Writes `ingress` as obj's status.loadBalancer.ingress (removes it when
// empty) through the status subresource; an object gone meanwhile is no error.
Status WriteLoadBalancerIngress(client::Client* client, const api::ResourceType& type,
                                const boost::json::value& obj, boost::json::array ingress);

class ServiceLbController : public Controller {
 public:
  explicit ServiceLbController(client::Client* client, client::SharedInformers* shared = nullptr);
  ~ServiceLbController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  client::Informer* services_ = nullptr;
  client::Informer* nodes_ = nullptr;
};

}  // namespace kiso::controller
