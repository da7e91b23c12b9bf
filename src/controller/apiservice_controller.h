// APIServiceAvailabilityController: kube-aggregator's available condition
// controller. Each APIService gets status condition Available: True
// ("Local") for a version the server serves itself; for one served by a
// Service, False with ServiceNotFound or MissingEndpoints while the Service
// or a ready endpoint is missing, else the version's discovery document is
// fetched through the API server's proxy (which also keeps it for
// discovery) — True "Passed" when it answers, False "FailedDiscoveryCheck"
// when it does not. Checked when the APIService, its Service or its
// Endpoints change, and every 30 s.
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class ApiServiceAvailabilityController : public Controller {
 public:
  explicit ApiServiceAvailabilityController(
      client::Client* client, client::SharedInformers* shared = nullptr,
      std::chrono::milliseconds period = std::chrono::seconds(30));
  ~ApiServiceAvailabilityController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  std::chrono::milliseconds period_;
  client::Informer* apiservices_ = nullptr;
  client::Informer* services_ = nullptr;
  client::Informer* endpoints_ = nullptr;
};

}  // namespace kiso::controller
