// HttpsServer: TLS 1.2+ over Boost.Beast. HTTP/1.1 connections (keep-alive)
// and their watches hold no thread: completion handlers on a few I/O threads,
// requests handled on a worker pool (quick ones, with a seat free at once,
// where they were read). HTTP/2 (ALPN h2, libnghttp2) for clients that offer
// it: a thread per connection for its frames, requests on the same pool (or
// that thread, for quick ones), watches streamed without a thread. Upgrades (exec, attach,
// port-forward, tunnels), relays and logs that follow hold a thread each. TCP_NODELAY on
// every accepted socket, a request-body limit, limits on connections and
// requests in flight per client (429 beyond them), deadlines for slow and idle
// clients, and graceful shutdown (stop accepting, end streams, join connections).
#pragma once

#include <chrono>
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
  // A connection ends when it spends this long on its TLS handshake, waiting
  // for or sending a request (HTTP/1.1), or with no open stream and no frame
  // (HTTP/2): slow clients do not hold connections.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  // HTTP/2 streams one connection may have open at once (kube-apiserver's
  // default for --http2-max-streams-per-connection).
  uint32_t max_streams = 1000;
  // Says which requests the handler answers at once from memory: it waits on
  // no other party (no store across the network, no proxy, no stream) and
  // does little work (one object read). Such an HTTP/1.1 request whose client
  // has a free seat in the fair gate at once is handled on the I/O thread
  // that read it instead of on a worker, and answered from there: no hand-off
  // between threads on its way in or out, which on a busy machine of few
  // cores is most of a small request's latency (each hand-off waits for a
  // core). Unset: every request goes to a worker.
  std::function<bool(const Request&)> quick;
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

  struct Impl;  // Opaque: its connections (http_server.cc) share it.

 private:
  explicit HttpsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiso::apiserver
