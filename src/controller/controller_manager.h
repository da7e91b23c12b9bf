// ControllerManager: every controller of kube-controller-manager's role that
// kiso runs, built and started together, stopped together (in the reverse of
// their dependencies). The server runs one while it holds the
// kube-controller-manager Lease, so that with several servers exactly one
// acts (client/leader_election.h); a new one is built each time it leads again.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "client/client.h"
#include "client/shared_informers.h"
#include "controller/csr_approving_controller.h"
#include "controller/csr_signing_controller.h"
#include "controller/node_ipam_controller.h"

namespace kiso::controller {

struct ControllerManagerOptions {
  std::chrono::milliseconds hpa_sync_period{15000};
  int64_t terminated_pod_gc_threshold = 12500;
  std::chrono::seconds node_grace_period{40};
  bool ingress = true;      // The built-in ingress controller's Ingress status.
  std::string ca_cert_pem;  // Published as kube-root-ca.crt in every namespace.
  CsrReader read_csr;       // For the approving controller.
  CsrSigner sign_csr;       // For the signing controller.
  // Pod ranges for Nodes without one (--allocate-node-cidrs); validated before.
  bool allocate_node_cidrs = true;
  NodeIpamOptions node_ipam;
};

class ControllerManager {
 public:
  // Builds every controller on the shared informers (nothing runs yet).
  ControllerManager(client::Client* client, client::SharedInformers* informers,
                    const ControllerManagerOptions& options);
  ~ControllerManager();  // Stops first.
  ControllerManager(const ControllerManager&) = delete;
  ControllerManager& operator=(const ControllerManager&) = delete;

  void Start();
  // Returns once no controller acts (their handlers are off the informers).
  void Stop();

 private:
  struct Controllers;
  std::unique_ptr<Controllers> c_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace kiso::controller
