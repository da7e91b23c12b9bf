// ApiServerWatch: the cluster's API servers as the `kubernetes` Service's
// EndpointSlice in `default` lists them (every live server keeps itself
// there: controller/apiserver_endpoints.h), for a client that must reach any
// of them — a node agent failing over, and dialing its tunnels to each.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/informer.h"

namespace kiso::client {

class ApiServerWatch {
 public:
  // `on_change` gets the servers' https://ADDRESS:PORT, sorted, whenever the
  // list changes (never an empty one: a moment with no server listed is not
  // news a client can act on).
  using OnChange = std::function<void(const std::vector<std::string>& urls)>;
  ApiServerWatch(Client* client, OnChange on_change);
  ~ApiServerWatch();
  ApiServerWatch(const ApiServerWatch&) = delete;
  ApiServerWatch& operator=(const ApiServerWatch&) = delete;

  void Start();
  void Stop();

  // The URLs an EndpointSlice lists (ready endpoints, its https port).
  static std::vector<std::string> UrlsOf(const boost::json::value& slice);

 private:
  OnChange on_change_;
  std::vector<std::string> last_;  // Only the informer's thread touches it.
  std::unique_ptr<Informer> slices_;
};

}  // namespace kiso::client
