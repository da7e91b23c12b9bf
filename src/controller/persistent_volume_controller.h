// PersistentVolumeController: kube-controller-manager's persistentvolume-binder,
// pvc-protection and pv-protection controllers, and the resizer's part for
// volumes that need no work on the node (local-path's directories).
// - A Pending claim is bound to the volume that satisfies it (the smallest, a
//   volume kept for it first; scheduler/volume_binding.h): the volume's
//   claimRef, then its phase Bound; the claim's volumeName, then its phase,
//   capacity and access modes. A claim naming a volume (spec.volumeName) gets
//   that one. A claim whose class binds WaitForFirstConsumer waits for the
//   scheduler's volume.kubernetes.io/selected-node, and then binds only
//   volumes that node may use. With no volume to bind and a class that has a
//   provisioner, the claim is annotated for it (volume.kubernetes.io/
//   storage-provisioner) and the provisioner makes one, kept for the claim.
// - A volume is Available while free, Bound while its claim exists, Released
//   once the claim is gone; its reclaim policy then applies: Retain keeps it,
//   Delete is its provisioner's to do (pv.kubernetes.io/provisioned-by), and a
//   volume no provisioner made fails (phase Failed), as upstream's deleters do
//   for sources they cannot delete.
// - A bound claim asking for more storage than its volume has grows the
//   volume and then the claim's status.capacity (admission allowed it: its
//   class allows expansion).
// - A deleted claim keeps its kubernetes.io/pvc-protection finalizer while a
//   pod that is not finished uses it; a deleted volume keeps
//   kubernetes.io/pv-protection while it is Bound.
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class PersistentVolumeController : public Controller {
 public:
  explicit PersistentVolumeController(client::Client* client,
                                      client::SharedInformers* shared = nullptr);
  ~PersistentVolumeController() override { Stop(); }

 protected:
  // Keys: "ns/name" for a claim, "/name" for a volume (api::KeyOf's).
  Status Reconcile(const std::string& key) override;
  std::optional<boost::json::value> Subject(const std::string& key) override;

 private:
  Status SyncClaim(const boost::json::value& claim);
  Status SyncVolume(const boost::json::value& volume);
  Status Bind(const boost::json::value& claim, const boost::json::value& volume);
  Status Expand(const boost::json::value& claim, const boost::json::value& volume);
  Status SetVolumePhase(const boost::json::value& volume, std::string_view phase,
                        std::string_view message = "");
  Status RemoveFinalizer(const api::ResourceType& type, const boost::json::value& obj,
                         std::string_view finalizer);
  bool ClaimInUse(const boost::json::value& claim);
  // Warning/Normal events once per (object, reason, message).
  void EventOnce(const boost::json::value& obj, const std::string& type, const std::string& reason,
                 const std::string& message);

  client::Informer* claims_ = nullptr;
  client::Informer* volumes_ = nullptr;
  client::Informer* classes_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* nodes_ = nullptr;
  std::mutex events_mu_;
  std::map<std::string, std::string> last_event_;  // uid → reason/message; guarded by events_mu_
};

}  // namespace kiso::controller
