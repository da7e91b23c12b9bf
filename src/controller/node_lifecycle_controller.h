// NodeLifecycleController: node health from heartbeats (kube-controller-manager's
// node lifecycle controller). A node whose Lease in kube-node-lease has not been
// renewed for the grace period (40 s by default) gets Ready=Unknown ("Kubelet
// stopped posting node status.") and the node.kubernetes.io/unreachable:NoExecute
// taint; pods on a tainted node are evicted once their toleration runs out (at
// once without one), and their controllers recreate them elsewhere. A node whose
// heartbeats resume loses the taint.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "controller/controller.h"

namespace kiso::controller {

struct NodeLifecycleOptions {
  std::chrono::seconds grace_period{40};
  std::chrono::milliseconds monitor_period{1000};
};

class NodeLifecycleController : public Controller {
 public:
  NodeLifecycleController(client::Client* client, NodeLifecycleOptions options,
                          Clock* clock = Clock::Real(), client::SharedInformers* shared = nullptr);
  ~NodeLifecycleController() override;

  // One pass over every node: what the monitor thread runs each period (tests call it directly).
  void MonitorOnce();
  // The Lease renewTime last seen for `node` ("" if none): tests wait for it.
  std::string LastRenewTime(const std::string& node);

 protected:
  Status Reconcile(const std::string& key) override;  // Key: node name; evicts its pods.
  void OnStop() override;

 private:
  void MonitorLoop();

  NodeLifecycleOptions options_;
  Clock* clock_;
  client::Informer* nodes_ = nullptr;
  client::Informer* leases_ = nullptr;
  client::Informer* pods_ = nullptr;
  std::thread monitor_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  // When the taint was seen on each node, for toleration seconds.
  std::map<std::string, Clock::TimePoint> tainted_since_;
  // When this controller last saw each node's Lease renewed (its own clock, as
  // upstream: remote timestamps are not trusted).
  std::map<std::string, Clock::TimePoint> last_heartbeat_;
  std::map<std::string, std::string> last_renew_time_;
};

}  // namespace kiso::controller
