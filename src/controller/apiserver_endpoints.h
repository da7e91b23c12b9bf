// ApiServerEndpoints: the `kubernetes` Service's endpoints list every live API
// server (kube-apiserver's "lease" endpoint reconciler). Every server, leader
// or not, keeps a Lease of its own in kube-system (`apiserver-<id>`, labelled
// apiserver.kubernetes.io/identity=kube-apiserver, its advertised address and
// port in annotations) renewed every third of its duration, and sets the
// default/kubernetes Endpoints and EndpointSlice to the addresses of the
// Leases renewed within their duration. A server that stops deletes its Lease
// and takes itself out at once; one that dies drops out when its Lease runs
// out. The servers are expected to share one port (the Service has one
// target port); a Lease naming another port is left out.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"

namespace kiso::controller {

struct ApiServerEndpointsOptions {
  std::string server_id;  // Names the Lease: apiserver-<server_id>.
  std::string identity;   // Its holderIdentity.
  std::string address;    // Advertised; none: the server is in no endpoints.
  uint16_t port = 0;
  std::chrono::seconds lease_duration{15};
};

class ApiServerEndpoints {
 public:
  ApiServerEndpoints(client::Client* client, ApiServerEndpointsOptions options);
  ~ApiServerEndpoints();
  ApiServerEndpoints(const ApiServerEndpoints&) = delete;
  ApiServerEndpoints& operator=(const ApiServerEndpoints&) = delete;

  void Start();
  // Deletes this server's Lease and its address from the endpoints.
  void Stop();

  // One round: renew (unless `leaving`), then the endpoints from the live Leases.
  Status Sync(bool leaving = false);
  // The addresses of live servers on this server's port, sorted.
  Result<std::vector<std::string>> LiveAddresses();

 private:
  Status Renew();
  Status WriteEndpoints(const std::vector<std::string>& addresses);

  client::Client* client_;
  ApiServerEndpointsOptions options_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
};

}  // namespace kiso::controller
