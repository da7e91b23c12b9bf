// ClusterRoleAggregationController: a ClusterRole with an aggregationRule
// holds the rules of every ClusterRole its clusterRoleSelectors select
// (kube-controller-manager's clusterrole-aggregation controller). This is how
// `admin`, `edit` and `view` grow when a CRD's installer adds a role labelled
// rbac.authorization.k8s.io/aggregate-to-edit=true.
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class ClusterRoleAggregationController : public Controller {
 public:
  explicit ClusterRoleAggregationController(client::Client* client,
                                            client::SharedInformers* shared = nullptr);
  ~ClusterRoleAggregationController() override { Stop(); }

 protected:
  // Key: "/name" of an aggregated ClusterRole.
  Status Reconcile(const std::string& key) override;

 private:
  client::Informer* roles_ = nullptr;
};

}  // namespace kiso::controller
