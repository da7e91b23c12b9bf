// HttpsServer: TLS 1.2+ over Boost.Beast, one thread per connection (HTTP/1.1
// keep-alive), TCP_NODELAY on every accepted socket, a request-body limit,
// limits on connections and requests in flight per client (429 beyond them),
// and graceful shutdown (stop accepting, end streams, join connections).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "apiserver/http/fair_gate.h"
#include "apiserver/http/http.h"
#include "common/status.h"

namespace kiso::apiserver {

struct HttpsServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 6443;  // 0 picks a free port.
  std::string cert_pem;
  std::string key_pem;
  // When set, clients may present a certificate this CA signed; its subject
  // reaches the handler as Request::peer (an invalid one fails the handshake).
  std::string client_ca_pem;
  size_t max_body_bytes = size_t{3} << 20;
  // Requests in flight and fairness between clients (fair_gate.h); each
  // client address is a flow.
  FairGateOptions fairness;
  // Open connections one client address may hold; more are closed at once.
  int max_connections_per_client = 2048;
};

class HttpsServer {
 public:
  using Handler = std::function<Response(Request&)>;

  // Binds and starts accepting on a background thread. `handler` runs on the
  // connection's thread and must be thread-safe.
  static Result<std::unique_ptr<HttpsServer>> Start(const HttpsServerOptions& options,
                                                    Handler handler);
  ~HttpsServer();  // Stop(), then joins every connection thread.
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  uint16_t port() const;
  // Stops accepting and tells streams to end; idempotent.
  void Stop();

 private:
  struct Impl;
  explicit HttpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiso::apiserver
