// IngressStatusController: the status half of the built-in ingress controller
// (Traefik's role in K3s; every node agent serves the traffic, see
// agent/ingress_controller.h). Ingresses of kiso's IngressClass — named by
// spec.ingressClassName or the legacy kubernetes.io/ingress.class annotation,
// or of no class while kiso's is the default — get status.loadBalancer.ingress
// listing every Ready node's InternalIP, as ServiceLB gives Traefik's Service;
// an Ingress that moves to another class has kiso's entries cleared.
// EnsureDefaultClass creates the IngressClass `kiso` (the default) once.
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class IngressStatusController : public Controller {
 public:
  explicit IngressStatusController(client::Client* client,
                                   client::SharedInformers* shared = nullptr);
  ~IngressStatusController() override { Stop(); }

  // Creates IngressClass `kiso` (default class, controller api::kKisoIngressController)
  // unless it exists; an existing one is left as the user keeps it.
  static Status EnsureDefaultClass(client::Client* client);

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  void EnqueueAll();

  client::Informer* ingresses_ = nullptr;
  client::Informer* classes_ = nullptr;
  client::Informer* nodes_ = nullptr;
};

}  // namespace kiso::controller
