// StatefulSetController: pods with stable identities (kube-controller-
// manager's statefulset controller). Pod <set>-<ordinal> for each ordinal
// from spec.ordinals.start, with hostname = its name and subdomain =
// spec.serviceName (so the headless Service gives each pod a DNS name), and
// labels statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index and
// controller-revision-hash (its template's ControllerRevision;
// revision_history.h).
//
// OrderedReady (the default) creates pods one at a time in ordinal order,
// each once every lower one is running and ready, and removes the highest
// first, one at a time, only while every other is healthy; Parallel creates
// and deletes them all at once. RollingUpdate replaces pods whose revision is
// not the current template's from the highest ordinal down to
// rollingUpdate.partition, one at a time, each once the rest are ready (pods
// below the partition are recreated at the old revision); OnDelete replaces a
// pod only when the user deletes it. Failed pods are deleted and made anew.
// Status: replicas, ready, available (ready for minReadySeconds), current
// and updated counts, currentRevision, updateRevision, observedGeneration —
// what `kubectl rollout status|history|undo sts/…` read.
//
// volumeClaimTemplates: each pod's claims, <template>-<set>-<ordinal>, are
// created before it (labels of the template and the set's selector) and kept
// when it is deleted, so a pod made again finds its data.
// persistentVolumeClaimRetentionPolicy: whenDeleted Delete makes the set an
// owner of its claims (the garbage collector deletes them with it);
// whenScaled Delete makes a condemned pod (an ordinal scaled away) the owner
// of its claims, which go with it. Retain (the default) keeps them.
#pragma once

#include "controller/controller.h"

namespace kiso::controller {

class StatefulSetController : public Controller {
 public:
  explicit StatefulSetController(client::Client* client, client::SharedInformers* shared = nullptr);
  ~StatefulSetController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  client::Informer* sets_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* revisions_ = nullptr;
  client::Informer* claims_ = nullptr;
  Expectations expectations_;  // Set key → its pod creates and deletes not yet seen.
};

}  // namespace kiso::controller
