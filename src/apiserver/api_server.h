// ApiServer: the Kubernetes API over HTTPS on top of a Store — authentication,
// routing to the verb handlers, discovery, OpenAPI, health and metrics, the
// watch cache, the built-in namespaces, and periodic compaction.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "apiserver/http/fair_gate.h"
#include "apiserver/http/http.h"
#include "common/status.h"
#include "store/store.h"

namespace kiso::apiserver {

struct ApiServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 6443;  // 0 picks a free port.
  // The address the `kubernetes` Service's Endpoints name (kube-apiserver's
  // --advertise-address); empty: `address` unless loopback or any, else the
  // host's primary IPv4 address.
  std::string advertise_address;
  std::string data_dir;  // Holds tls/ and kubeconfig.yaml.
  // How often history older than the previous interval is compacted (kube-apiserver: 5 min).
  std::chrono::seconds compaction_interval{300};
  size_t watch_history_events = 50000;
  // Requests in flight and fairness between clients; connections per client.
  FairGateOptions fairness;
  int max_connections_per_client = 2048;
  std::chrono::milliseconds http_idle_timeout = std::chrono::seconds(60);
  uint32_t http2_max_streams = 1000;
  // The issuer of ServiceAccount tokens (kube-apiserver's
  // --service-account-issuer; K3s' default), also the API's audience.
  std::string service_account_issuer = "https://kubernetes.default.svc.cluster.local";
  // Where Services' cluster IPs come from (K3s' --service-cidr); the first
  // address is the kubernetes Service's.
  std::string service_cidr = "10.43.0.0/16";
};

class ApiServer {
 public:
  // Generates or loads credentials, fills the watch cache, creates the
  // built-in namespaces, and starts serving. `store` must outlive the server.
  static Result<std::unique_ptr<ApiServer>> Start(store::Store* store,
                                                  const ApiServerOptions& options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  uint16_t port() const;
  // Serves a request from inside the process (controllers, the embedded agent):
  // the same handlers as HTTPS, without the network and without authentication.
  Response ServeInProcess(const Request& request);
  // Routes pods/log|exec|attach|portforward of pods on `node` to `handler`
  // (an agent in this process); unregistered nodes answer with a Status.
  void ServeNodeStreams(const std::string& node, NodeStreamHandler handler);
  const std::string& kubeconfig_path() const;
  const std::string& admin_token() const;
  // The cluster CA's certificate (PEM): what clients verify the server with.
  const std::string& ca_cert_pem() const;
  // Where pods reach this server (the kubernetes Service's endpoint address).
  const std::string& advertise_address() const;
  // Stops accepting, ends watches, waits for in-flight requests. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiso::apiserver
