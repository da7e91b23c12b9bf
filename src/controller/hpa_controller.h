// HorizontalPodAutoscalerController: kube-controller-manager's podautoscaler
// for autoscaling/v2 (v1 objects are stored as v2). Every sync period (15 s
// upstream, --horizontal-pod-autoscaler-sync-period) each HPA's target is
// read (Deployment, ReplicaSet, StatefulSet, ReplicationController: replicas
// and selector), the selected pods' usage is read from metrics.k8s.io, and
// for each Resource or ContainerResource metric (cpu, memory; Utilization of
// the pods' requests or AverageValue) the replica count that brings the
// metric to its target is computed as upstream's replica calculator does:
// ceil(ratio × pods with metrics), no change within a 10% tolerance; the
// largest over the metrics wins. Pods metrics (an AverageValue over the
// selected pods), Object metrics (one object's Value or AverageValue) and
// External metrics (the sum of a series' values: Value or AverageValue) are
// read from custom.metrics.k8s.io (v1beta2, else v1beta1) and
// external.metrics.k8s.io/v1beta1, as upstream's metrics clients read them. Behavior then applies:
// the stabilization windows (the lowest recommendation of the scale-up window, the highest of the
// scale-down one; 0 s and 300 s by default) and the scaling policies (Pods and Percent per period,
// selectPolicy Max/Min/Disabled; upstream's defaults), then minReplicas..maxReplicas. A change goes
// through the target's scale subresource with a SuccessfulRescale event; status carries current and
// desired replicas, currentMetrics, lastScaleTime and the AbleToScale, ScalingActive and
// ScalingLimited conditions. Time comes from a Clock (tests move a fake one); pod usage from a
// PodMetricsSource.
#pragma once

#include <boost/json/value.hpp>
#include <deque>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "controller/controller.h"

namespace kiso::controller {

// A container's usage now: cpu in millicores, memory in bytes.
struct ContainerUsage {
  int64_t cpu_milli = 0;
  int64_t memory_bytes = 0;
};
// Pod name → container name → usage, for the pods of a namespace that have
// figures (metrics.k8s.io's PodMetrics).
using PodMetrics = std::map<std::string, std::map<std::string, ContainerUsage>>;
using PodMetricsSource = std::function<Result<PodMetrics>(const std::string& ns)>;

// PodMetrics read through the API (GET metrics.k8s.io/v1beta1 pods).
PodMetricsSource MetricsApiSource(client::Client* client);

// A GET of the custom or external metrics API (custom.metrics.k8s.io,
// external.metrics.k8s.io: served by an aggregated API server such as
// prometheus-adapter or KEDA), by path and query; the answer decoded.
using MetricsGet = std::function<Result<boost::json::value>(
    const std::string& path, const std::vector<std::pair<std::string, std::string>>& query)>;

struct HpaOptions {
  // Where Pods, Object and External metrics come from; unset: the API.
  MetricsGet get_metrics;
  std::chrono::milliseconds sync_period{15000};
  double tolerance = 0.1;
  int workers = 1;  // 0: nothing reconciles but the caller (tests on a fake clock).
};

class HorizontalPodAutoscalerController : public Controller {
 public:
  HorizontalPodAutoscalerController(client::Client* client, Clock* clock, PodMetricsSource metrics,
                                    HpaOptions options = {},
                                    client::SharedInformers* shared = nullptr);
  ~HorizontalPodAutoscalerController() override { Stop(); }

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  struct Recommendation {
    std::chrono::system_clock::time_point at;
    int64_t replicas;
  };
  struct ScaleEvent {
    std::chrono::system_clock::time_point at;
    int64_t change;  // Positive up, negative down.
  };
  struct History {
    std::deque<Recommendation> recommendations;
    std::deque<ScaleEvent> events;
  };

  Clock* clock_;
  PodMetricsSource metrics_;
  HpaOptions options_;
  client::Informer* hpas_ = nullptr;
  client::Informer* pods_ = nullptr;
  std::mutex history_mu_;
  std::map<std::string, History> history_;  // HPA key → its recent past; guarded by history_mu_
};

}  // namespace kiso::controller
