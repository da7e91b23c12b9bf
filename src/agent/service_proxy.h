// ServiceProxy: kube-proxy's role in every node agent. It watches Services
// and EndpointSlices and keeps the node's nftables table (network/proxy/
// rules.h) serving them: the whole table once its caches have synced (after a
// restart too: one transaction replaces whatever was there, and conntrack
// keeps established connections), then one transaction per batch of changes,
// touching only the Service ports that changed. A transaction the kernel
// refuses is followed by a full rebuild. Least-connections ports are also
// given to the socket balancer (eBPF, network/proxy/socket_balancer.h).
// Stop() leaves the nftables rules in place (a restarted agent takes them
// over; `kiso node reset` removes them) and detaches the socket balancer.
#pragma once

#include <atomic>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "client/client.h"
#include "client/informer.h"
#include "client/slice_index.h"
#include "network/proxy/nftables.h"
#include "network/proxy/rules.h"
#include "network/proxy/socket_balancer.h"

namespace kiso::agent {

struct ServiceProxyOptions {
  std::string node_name;
  network::proxy::RulesOptions rules;
};

class ServiceProxy {
 public:
  ServiceProxy(client::Client* client, ServiceProxyOptions options);
  ~ServiceProxy();
  ServiceProxy(const ServiceProxy&) = delete;
  ServiceProxy& operator=(const ServiceProxy&) = delete;

  // Prepares the node (the bridge, loopback node ports, bridged traffic
  // through netfilter), then watches.
  Status Start();
  void Stop();

  // The Service ports of one Service as the data plane sees them (named
  // "ns/name:port/protocol"), given its EndpointSlices.
  static network::proxy::ServicePorts PortsOf(const boost::json::value& service,
                                              const std::vector<boost::json::value>& slices,
                                              const std::string& node_name);
  // Transactions applied so far (tests and benchmarks wait on it).
  uint64_t generation() const { return generation_.load(); }

 private:
  void Dirty(const std::string& key);
  void Run();
  // Every kHousekeepingPeriod on the sync thread: the socket balancer's node
  // addresses and its tc programs follow the interfaces, and every kSweepPeriod the count of
  // connections from other nodes that ended unseen taken off.
  void Housekeeping();
  static constexpr std::chrono::seconds kHousekeepingPeriod{2};
  static constexpr std::chrono::seconds kSweepPeriod{30};
  // Deletes the conntrack entries of UDP flows to endpoints that `changed`
  // ports no longer route to (UDP has no end that would let them go).
  void ForgetUdpFlows(const network::proxy::ServicePorts& before,
                      const network::proxy::ServicePorts& after,
                      const std::set<std::string>& changed);
  // The ports of Service `key` ("ns/name") as the caches have it now.
  network::proxy::ServicePorts CurrentPorts(const std::string& key);

  client::Client* client_;
  ServiceProxyOptions options_;
  network::proxy::Ruleset rules_;
  network::proxy::Nftables nft_;                             // Used by the sync thread only.
  std::unique_ptr<network::proxy::SocketBalancer> sockets_;  // Null when it cannot load.
  std::unique_ptr<client::Informer> services_;
  std::unique_ptr<client::Informer> slices_;
  client::SliceIndex slice_index_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> dirty_;  // guarded by mu_
  bool stop_ = false;            // guarded by mu_
  std::thread thread_;
  std::atomic<uint64_t> generation_{0};

  // The sync thread's own: what the table serves now.
  network::proxy::ServicePorts applied_;
  std::string tc_problem_;  // What attaching the tc programs last said ("" when fine).
  std::chrono::steady_clock::time_point next_sweep_;
};

}  // namespace kiso::agent
