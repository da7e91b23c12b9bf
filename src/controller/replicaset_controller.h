// ReplicaSetController: keeps spec.replicas pods of a ReplicaSet's template
// alive (kube-controller-manager's replicaset controller): creates missing
// pods with a controller ownerReference, deletes surplus ones (not yet
// scheduled first, then not ready, then newest), and reports status replicas,
// ready, available (ready for spec.minReadySeconds, which a Deployment passes
// on to its ReplicaSets), fullyLabeled and observedGeneration. Expectations keep it
// from acting twice on pods it created or deleted but has not seen yet. The
// same controller keeps v1 ReplicationControllers (whose selector is a plain
// label map), as upstream's replication controller is its ReplicaSet one.
#pragma once

#include <map>
#include <mutex>

#include "controller/controller.h"

namespace kiso::controller {

class ReplicaSetController : public Controller {
 public:
  enum class Kind { kReplicaSet, kReplicationController };
  explicit ReplicaSetController(client::Client* client, client::SharedInformers* shared = nullptr,
                                Kind kind = Kind::kReplicaSet);
  ~ReplicaSetController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  void OnPod(const boost::json::value* old, const boost::json::value& pod, bool deleted);
  // REQUIRES: mu_ held. Finds the ReplicaSet key controlling `pod`.
  std::string OwnerKey(const boost::json::value& pod);

  const api::ResourceType& type_;
  std::string kind_;         // "ReplicaSet" or "ReplicationController".
  std::string api_version_;  // Its owner references': "apps/v1" or "v1".
  client::Informer* sets_ = nullptr;
  client::Informer* pods_ = nullptr;
  Expectations expectations_;  // RS key → its creates/deletes not yet seen.
  std::mutex mu_;
  std::map<std::string, std::string> uid_to_key_;  // RS uid → key.
};

}  // namespace kiso::controller
