// IngressController: the built-in ingress controller of every node (Traefik's
// role in K3s). It watches the Ingresses that belong to kiso's IngressClasses
// (api/ingress_class.h), the Services and EndpointSlices they name and their
// TLS Secrets (when it may read them: a node on another machine needs the
// ClusterRole kiso:ingress-tls-reader bound), and keeps the node's ingress
// proxy (network/ingress/proxy.h) serving a RouteTable built from them:
// rebuilt whole on each batch of changes, from caches, off the request path.
// The proxy connects to ready endpoints' pod addresses directly, as Traefik
// does. The Ingresses' status is written by the server
// (controller/ingress_status_controller.h), not by nodes.
#pragma once

#include <boost/json/value.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "client/client.h"
#include "client/informer.h"
#include "client/slice_index.h"
#include "network/ingress/proxy.h"

namespace kiso::agent {

class IngressController {
 public:
  IngressController(client::Client* client, network::ingress::ProxyOptions options);
  ~IngressController();
  IngressController(const IngressController&) = delete;
  IngressController& operator=(const IngressController&) = delete;

  // Binds the proxy's ports (failing with the port that could not be bound),
  // then watches.
  Status Start();
  void Stop();
  uint16_t http_port() const { return proxy_ ? proxy_->http_port() : 0; }
  uint16_t https_port() const { return proxy_ ? proxy_->https_port() : 0; }

  // The routes that Ingresses, classes, Services, slices and Secrets (as
  // listed) give; `services` receives the "ns/name" of every Service named.
  static std::shared_ptr<network::ingress::RouteTable> Build(
      const std::vector<boost::json::value>& ingresses,
      const std::vector<boost::json::value>& classes,
      const std::function<std::optional<boost::json::value>(const std::string& ns,
                                                            const std::string& name)>& service,
      const std::function<std::vector<boost::json::value>(const std::string& key)>& slices,
      const std::function<std::optional<boost::json::value>(const std::string& ns,
                                                            const std::string& name)>& secret,
      std::set<std::string>* services);

 private:
  void Dirty();
  void Run();
  std::vector<client::Informer*> Informers() const;  // Those made (Secrets' may not be).

  client::Client* client_;
  network::ingress::ProxyOptions options_;
  std::unique_ptr<network::ingress::IngressProxy> proxy_;
  std::unique_ptr<client::Informer> ingresses_;
  std::unique_ptr<client::Informer> classes_;
  std::unique_ptr<client::Informer> services_;
  std::unique_ptr<client::Informer> slices_;
  std::unique_ptr<client::Informer> secrets_;  // Null when this node may not read Secrets.
  client::SliceIndex slice_index_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = false;                // guarded by mu_
  bool stop_ = false;                 // guarded by mu_
  std::set<std::string> referenced_;  // Services the routes name; guarded by mu_
  std::thread thread_;
};

}  // namespace kiso::agent
