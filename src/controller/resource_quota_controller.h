// ResourceQuotaController: keeps each ResourceQuota's status — `hard` as its
// spec says, `used` as the namespace's objects use it (api/quota.h) — recounted
// whenever a quota changes and whenever an object it counts comes, goes or changes
// (kube-controller-manager's resourcequota controller and its replenishment).
// Admission charges a quota as objects are created (admission/resource_quota.h);
// this gives back what deleted or finished objects used. Kinds counted only by
// `count/<resource>.<group>` are recounted every 30 s.
#pragma once

#include <set>

#include "controller/controller.h"

namespace kiso::controller {

class ResourceQuotaController : public Controller {
 public:
  explicit ResourceQuotaController(client::Client* client,
                                   client::SharedInformers* shared = nullptr);
  ~ResourceQuotaController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  // Requeues every quota of the namespace `obj` is in.
  void EnqueueNamespace(const boost::json::value& obj);

  client::Informer* quotas_ = nullptr;
  std::set<const api::ResourceType*> watched_;  // Kinds whose changes requeue quotas.
};

}  // namespace kiso::controller
