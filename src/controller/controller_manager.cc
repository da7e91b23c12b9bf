#include "controller/controller_manager.h"

#include <vector>

#include "common/clock.h"
#include "controller/apiservice_controller.h"
#include "controller/clusterrole_aggregation_controller.h"
#include "controller/crd_controller.h"
#include "controller/cronjob_controller.h"
#include "controller/daemonset_controller.h"
#include "controller/deployment_controller.h"
#include "controller/disruption_controller.h"
#include "controller/endpoints_controller.h"
#include "controller/endpointslice_controller.h"
#include "controller/garbage_collector.h"
#include "controller/hpa_controller.h"
#include "controller/ingress_status_controller.h"
#include "controller/job_controller.h"
#include "controller/namespace_controller.h"
#include "controller/node_lifecycle_controller.h"
#include "controller/persistent_volume_controller.h"
#include "controller/pod_gc_controller.h"
#include "controller/replicaset_controller.h"
#include "controller/resource_quota_controller.h"
#include "controller/service_account_controllers.h"
#include "controller/service_lb_controller.h"
#include "controller/statefulset_controller.h"

namespace kiso::controller {
namespace {

PodGcOptions PodGc(const ControllerManagerOptions& o) {
  PodGcOptions p;
  p.terminated_threshold = o.terminated_pod_gc_threshold;
  return p;
}

HpaOptions Hpa(const ControllerManagerOptions& o) {
  HpaOptions h;
  h.sync_period = o.hpa_sync_period;
  return h;
}

NodeLifecycleOptions NodeLifecycle(const ControllerManagerOptions& o) {
  NodeLifecycleOptions n;
  n.grace_period = o.node_grace_period;
  return n;
}

}  // namespace

struct ControllerManager::Controllers {
  Controllers(client::Client* client, client::SharedInformers* informers,
              const ControllerManagerOptions& o)
      : gc(client, informers),
        namespaces(client, informers),
        replicasets(client, informers),
        replication_controllers(client, informers,
                                ReplicaSetController::Kind::kReplicationController),
        deployments(client, informers),
        jobs(client, informers),
        daemonsets(client, informers),
        cronjobs(client, Clock::Real(), informers),
        statefulsets(client, informers),
        pod_gc(client, PodGc(o), informers),
        disruption(client, informers),
        volumes(client, informers),
        autoscalers(client, Clock::Real(), MetricsApiSource(client), Hpa(o), informers),
        endpoints(client, informers),
        endpoint_slices(client, informers),
        service_lb(client, informers),
        ingress_status(o.ingress ? std::make_unique<IngressStatusController>(client, informers)
                                 : nullptr),
        service_accounts(client, informers),
        root_ca(client, o.ca_cert_pem, informers),
        aggregation(client, informers),
        crds(client, informers),
        apiservices(client, informers),
        quotas(client, informers),
        csr_approving(client, o.read_csr, informers),
        csr_signing(client, o.sign_csr, informers),
        node_lifecycle(client, NodeLifecycle(o), Clock::Real(), informers),
        node_ipam(o.allocate_node_cidrs
                      ? std::make_unique<NodeIpamController>(client, o.node_ipam, informers)
                      : nullptr) {}

  GarbageCollector gc;
  NamespaceController namespaces;
  ReplicaSetController replicasets;
  ReplicaSetController replication_controllers;
  DeploymentController deployments;
  JobController jobs;
  DaemonSetController daemonsets;
  CronJobController cronjobs;
  StatefulSetController statefulsets;
  PodGcController pod_gc;
  DisruptionController disruption;
  PersistentVolumeController volumes;
  HorizontalPodAutoscalerController autoscalers;
  EndpointsController endpoints;
  EndpointSliceController endpoint_slices;
  ServiceLbController service_lb;
  std::unique_ptr<IngressStatusController> ingress_status;
  ServiceAccountsController service_accounts;
  RootCaPublisher root_ca;
  ClusterRoleAggregationController aggregation;
  CrdController crds;
  ApiServiceAvailabilityController apiservices;
  ResourceQuotaController quotas;
  CertificateApprovingController csr_approving;
  CertificateSigningController csr_signing;
  NodeLifecycleController node_lifecycle;
  std::unique_ptr<NodeIpamController> node_ipam;

  std::vector<Controller*> InStartOrder() {
    std::vector<Controller*> all{&gc,           &apiservices,
                                 &namespaces,   &replicasets,
                                 &deployments,  &jobs,
                                 &daemonsets,   &cronjobs,
                                 &statefulsets, &replication_controllers,
                                 &pod_gc,       &disruption,
                                 &volumes,      &autoscalers,
                                 &endpoints,    &endpoint_slices,
                                 &service_lb};
    if (ingress_status) all.push_back(ingress_status.get());
    for (Controller* c :
         std::initializer_list<Controller*>{&service_accounts, &root_ca, &aggregation, &crds,
                                            &quotas, &csr_approving, &csr_signing, &node_lifecycle})
      all.push_back(c);
    if (node_ipam) all.push_back(node_ipam.get());
    return all;
  }
};

ControllerManager::ControllerManager(client::Client* client, client::SharedInformers* informers,
                                     const ControllerManagerOptions& options)
    : c_(std::make_unique<Controllers>(client, informers, options)) {}

ControllerManager::~ControllerManager() { Stop(); }

void ControllerManager::Start() {
  if (started_) return;
  started_ = true;
  for (Controller* c : c_->InStartOrder()) c->Start();
}

void ControllerManager::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // The reverse of their start: the garbage collector, which the others' deletes feed, last.
  auto all = c_->InStartOrder();
  for (auto c = all.rbegin(); c != all.rend(); ++c) (*c)->Stop();
}

}  // namespace kiso::controller
