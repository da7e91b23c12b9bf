// PodNetworkController: this node's side of the pod network across nodes
// (flannel's daemon). Once its Node has a range (spec.podCIDR), it publishes
// what the others need (its backend, address and VXLAN MAC, as annotations of
// its Node) and keeps the backend's routes to every other node's range as the
// Nodes come, change and go (network/overlay/backend.h). What it programmed
// stays when the agent stops (pods keep their network); `kiso node reset`
// removes it.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "client/client.h"
#include "client/informer.h"
#include "network/overlay/backend.h"

namespace kiso::agent {

class PodNetworkController {
 public:
  // `options.pod_cidr` is ignored: the Node's own range is used.
  PodNetworkController(client::Client* client, std::string node_name,
                       network::overlay::OverlayOptions options);
  ~PodNetworkController();
  PodNetworkController(const PodNetworkController&) = delete;
  PodNetworkController& operator=(const PodNetworkController&) = delete;

  void Start();
  void Stop();

 private:
  void Resync();

  client::Client* client_;
  std::string node_name_;
  network::overlay::OverlayOptions options_;
  std::unique_ptr<client::Informer> nodes_;
  std::mutex mu_;  // Resync runs on the informer's thread; Stop may race it.
  std::unique_ptr<network::overlay::OverlayBackend> backend_;
  std::string last_error_;
};

}  // namespace kiso::agent
