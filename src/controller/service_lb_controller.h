// ServiceLbController: K3s' ServiceLB role for Services of type LoadBalancer
// (without a spec.loadBalancerClass, which names another implementation):
// status.loadBalancer.ingress lists the InternalIP of every Ready node, and
// every node's data plane answers the Service's ports on those addresses
// (network/proxy: load-balancer addresses are external IPs). A Service that
// stops being a LoadBalancer has its ingress cleared.
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

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
