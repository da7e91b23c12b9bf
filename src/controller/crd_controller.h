// CrdController: the apiextensions controllers of kube-apiserver for
// CustomResourceDefinitions — naming (names accepted unless another
// definition or a built-in kind holds them: NamesAccepted), establishing
// (Established, after which the API server serves the kinds), storedVersions,
// and finalizing: a deleted definition's objects are deleted (the
// customresourcecleanup finalizer) before the definition goes.
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class CrdController : public Controller {
 public:
  explicit CrdController(client::Client* client, client::SharedInformers* shared = nullptr);
  ~CrdController() override { Stop(); }

 protected:
  // Key: "/name" of a CustomResourceDefinition.
  Status Reconcile(const std::string& key) override;

 private:
  Status Finalize(const boost::json::value& crd);
  client::Informer* crds_ = nullptr;
};

}  // namespace kiso::controller
