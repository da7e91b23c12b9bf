// GarbageCollector: deletion along the ownerReferences DAG (the seed's graph
// model, 07.7.4; kube-controller-manager's garbagecollector):
//   background — an object whose owners are all gone is deleted;
//   foreground — an owner with the foregroundDeletion finalizer waits until its
//                dependents are deleted (foreground too), then loses the finalizer;
//   orphan     — an owner with the orphan finalizer has its ownerReferences
//                removed from its dependents, then loses the finalizer.
// One informer per served type feeds an owner→dependents index; keys are
// object UIDs, reconciled level-triggered from a work queue.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "controller/controller.h"

namespace kiso::controller {

class GarbageCollector : public Controller {
 public:
  explicit GarbageCollector(client::Client* client, client::SharedInformers* shared = nullptr);
  ~GarbageCollector() override { Stop(); }

 protected:
  Status Reconcile(const std::string& uid) override;
  std::optional<boost::json::value> Subject(const std::string& uid) override;

 private:
  struct Node {
    const api::ResourceType* type = nullptr;
    std::string ns;
    std::string name;
    std::string uid;
    std::vector<std::pair<std::string, boost::json::value>> owners;  // uid → ownerReference.
    bool deleting = false;
    std::set<std::string> finalizers;
  };

  void OnEvent(const api::ResourceType* type, const boost::json::value* old,
               const boost::json::value& obj, bool deleted);
  bool OwnerExists(const Node& node, const std::string& owner_uid, const boost::json::value& ref);
  Status RemoveFinalizer(const Node& node, const std::string& finalizer);

  std::map<const api::ResourceType*, client::Informer*> informers_;  // Set before Start.
  std::mutex mu_;
  std::map<std::string, Node> nodes_;  // uid → node; guarded by mu_
  std::map<std::string, std::set<std::string>>
      dependents_;  // owner uid → dependent uids; guarded by mu_
};

}  // namespace kiso::controller
