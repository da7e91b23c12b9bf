// What every namespace holds for its pods' API access, kept there by two
// controllers of kube-controller-manager's:
// - ServiceAccountsController: the "default" ServiceAccount (the API server
//   creates it with the namespace; this puts it back when deleted).
// - RootCaPublisher: the ConfigMap kube-root-ca.crt with the cluster's CA
//   certificate (key ca.crt), which the projected API-access volume of every
//   pod mounts; restored when deleted or changed.
#pragma once

#include <string>

#include "controller/controller.h"

namespace kiso::controller {

class ServiceAccountsController : public Controller {
 public:
  explicit ServiceAccountsController(client::Client* client,
                                     client::SharedInformers* shared = nullptr);
  ~ServiceAccountsController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& ns) override;

 private:
  client::Informer* namespaces_ = nullptr;
  client::Informer* accounts_ = nullptr;
};

class RootCaPublisher : public Controller {
 public:
  RootCaPublisher(client::Client* client, std::string ca_pem,
                  client::SharedInformers* shared = nullptr);
  ~RootCaPublisher() override { Stop(); }

 protected:
  Status Reconcile(const std::string& ns) override;

 private:
  std::string ca_pem_;
  client::Informer* namespaces_ = nullptr;
  client::Informer* configmaps_ = nullptr;
};

}  // namespace kiso::controller
