// HealthServer: the HTTP endpoint kiso serves until the API server lands.
// GET /healthz, /livez, /readyz answer 200 "ok" when the store answers a
// linearizable read, 503 with the store's error otherwise; anything else is 404.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "store/store.h"

namespace kiso::apiserver {

class HealthServer {
 public:
  // Listens on `address`:`port` (port 0 picks a free one) and serves on a
  // background thread until destroyed. `store` must outlive the server.
  static Result<std::unique_ptr<HealthServer>> Start(store::Store* store,
                                                     const std::string& address, uint16_t port);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  uint16_t port() const;

 private:
  struct Impl;
  explicit HealthServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiso::apiserver
