// NamespaceController: a namespace marked for deletion (Terminating) has
// everything in it deleted; once nothing is left, its "kubernetes" finalizer is
// removed through /finalize and the API server removes the namespace
// (kube-controller-manager's namespace controller).
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class NamespaceController : public Controller {
 public:
  explicit NamespaceController(client::Client* client, client::SharedInformers* shared = nullptr);
  ~NamespaceController() override { Stop(); }

 protected:
  // Key: the namespace's name. Objects still finishing their deletion make it
  // an error, so the namespace is retried with back-off.
  Status Reconcile(const std::string& name) override;

 private:
  client::Informer* namespaces_ = nullptr;
};

}  // namespace kiso::controller
