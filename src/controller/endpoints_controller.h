// EndpointsController: for each Service with a selector, an Endpoints object of
// the same name listing the selected pods' IPs — ready ones under addresses,
// the rest under notReadyAddresses — with the Service's ports resolved to the
// pods' target ports (kube-controller-manager's endpoints controller).
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class EndpointsController : public Controller {
 public:
  explicit EndpointsController(client::Client* client, client::SharedInformers* shared = nullptr);
  ~EndpointsController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  client::Informer* services_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* endpoints_ = nullptr;
};

}  // namespace kiso::controller
