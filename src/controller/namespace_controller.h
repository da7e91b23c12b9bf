// NamespaceController: a namespace marked for deletion (Terminating) has
// everything in it deleted; once nothing is left, its "kubernetes" finalizer is
// removed through /finalize and the API server removes the namespace
// (kube-controller-manager's namespace controller).
#pragma once

#include <memory>
#include <thread>

#include "client/client.h"
#include "client/informer.h"
#include "client/work_queue.h"

namespace kiso::controller {

class NamespaceController {
 public:
  explicit NamespaceController(client::Client* client);
  ~NamespaceController();
  void Start();
  void Stop();

 private:
  void Reconcile(const std::string& name);

  client::Client* client_;
  std::unique_ptr<client::Informer> informer_;
  client::WorkQueue queue_;
  std::thread worker_;
};

}  // namespace kiso::controller
