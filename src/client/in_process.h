// The in-process transport: requests go straight to the API server's handlers
// (no sockets, no TLS), so controllers inside `kiso server` use exactly the
// API that remote clients use.
#pragma once

#include "apiserver/api_server.h"
#include "client/client.h"

namespace kiso::client {

class InProcessTransport : public Transport {
 public:
  explicit InProcessTransport(apiserver::ApiServer* server) : server_(server) {}
  apiserver::Response RoundTrip(const apiserver::Request& request) override {
    return server_->ServeInProcess(request);
  }
  bool InProcess() const override { return true; }

 private:
  apiserver::ApiServer* server_;
};

}  // namespace kiso::client
