// IngressProxy: the HTTP(S) reverse proxy of the built-in ingress controller
// (Traefik's role in K3s). It serves HTTP/1.1 on one port and HTTPS on
// another, picks each request's backend from the current RouteTable
// (routes.h), and relays the request to a ready endpoint — round robin, with
// the next endpoint tried when one refuses — streaming the response back.
// HTTPS certificates come from the table by SNI; a name no Ingress serves
// gets a generated self-signed certificate (as Traefik's default one).
// Clients may speak HTTP/2 (ALPN h2 over TLS, prior knowledge in the clear:
// http2.cc); Upgrade requests (WebSocket) are passed through.
//
// Connections are served by coroutines on a small pool of threads (no thread
// per connection); client connections are kept alive between requests and
// upstream connections are reused when the backend keeps them open. Every
// read is bounded: 64 KiB of headers, `max_body` of request body, idle and
// upstream timeouts.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "network/ingress/routes.h"

namespace kiso::network::ingress {

struct ProxyOptions {
  std::string address = "0.0.0.0";
  int http_port = 80;    // 0: the kernel picks one; -1: no HTTP listener.
  int https_port = 443;  // Likewise.
  int threads = 2;
  size_t max_body = 64 << 20;                 // Request bodies beyond: 413.
  std::chrono::seconds idle_timeout{60};      // A kept-alive client connection between requests.
  std::chrono::seconds upstream_timeout{60};  // Reading a backend's answer.
  std::chrono::seconds connect_timeout{5};
};

class IngressProxy {
 public:
  // Binds the listeners and starts serving (every request gets 404 until
  // SetRoutes). Fails when a port cannot be bound, naming it.
  static Result<std::unique_ptr<IngressProxy>> Start(ProxyOptions options);
  ~IngressProxy();  // Stops.
  IngressProxy(const IngressProxy&) = delete;
  IngressProxy& operator=(const IngressProxy&) = delete;

  // Requests accepted from now on use `routes` (REQUIRES: sealed). Thread-safe.
  void SetRoutes(std::shared_ptr<const RouteTable> routes);
  uint16_t http_port() const;   // 0 when not served.
  uint16_t https_port() const;  // 0 when not served.
  // Closes the listeners and every connection; returns when no thread runs.
  void Stop();

  struct Impl;

 private:
  explicit IngressProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiso::network::ingress
