// ClusterDns: the cluster DNS inside `kiso server` — a DnsServer answering
// from a ClusterZone that Services and EndpointSlices keep current, and the
// `kube-dns` Service in kube-system (the tenth address of the service range,
// as K3s has it; ports dns/UDP and dns-tcp/TCP 53) whose Endpoints name this
// server, so that pods reach it through the service data plane.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "client/client.h"
#include "client/shared_informers.h"
#include "client/slice_index.h"
#include "dns/server.h"
#include "dns/zone.h"

namespace kiso::dns {

struct ClusterDnsOptions {
  std::string domain = "cluster.local";
  std::string service_ip = "10.43.0.10";
  std::string advertise_address;  // Where pods reach the server (the Endpoints' address).
  DnsServerOptions server;
};

class ClusterDns {
 public:
  static Result<std::unique_ptr<ClusterDns>> Start(client::Client* client,
                                                   client::SharedInformers* informers,
                                                   ClusterDnsOptions options);
  ~ClusterDns();
  ClusterDns(const ClusterDns&) = delete;
  ClusterDns& operator=(const ClusterDns&) = delete;

  void Stop();
  uint16_t port() const { return server_->port(); }
  const ClusterZone& zone() const { return zone_; }

 private:
  explicit ClusterDns(ClusterDnsOptions options)
      : zone_(options.domain), options_(std::move(options)) {}
  void Refresh(const std::string& key);
  Status SeedService(client::Client* client);

  ClusterZone zone_;
  ClusterDnsOptions options_;
  std::unique_ptr<DnsServer> server_;
  client::Informer* services_ = nullptr;
  client::Informer* slices_ = nullptr;
  std::vector<std::pair<client::Informer*, int>> handlers_;
  client::SliceIndex slice_index_;
};

}  // namespace kiso::dns
