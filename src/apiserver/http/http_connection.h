// One HTTP/1.1 connection served over TLS: the request loop the HTTPS server
// runs on each accepted connection, and a node agent runs on each tunnel it
// dialled (the same code both ways). Internal to kiso_apiserver: it brings in
// Asio and Beast, so only http_server.cc and tunnel_dialer.cc include it.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <functional>
#include <optional>
#include <string>

#include "apiserver/http/fair_gate.h"
#include "apiserver/http/http.h"
#include "common/status.h"

namespace kiso::apiserver {

using SslStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
using HttpHandler = std::function<Response(Request&)>;

struct ConnectionOptions {
  size_t max_body_bytes = size_t{3} << 20;
  const std::atomic<bool>* stopping = nullptr;  // Set while the owner shuts down.
  // Called when a request has been read, before it is handled.
  std::function<void()> on_request;
  // Called with each tunnel this connection turns into (the server's list,
  // so that stopping wakes it).
  std::function<void(const std::shared_ptr<Tunnel>&)> on_tunnel;
  // When set, every request that is not long-running needs a seat here for
  // the flow `flow` (the client's address) until its response is written.
  FairGate* gate = nullptr;
  std::string flow;
  // The client's verified certificate, given to every request of the connection.
  std::optional<PeerCertificate> peer;
};

// TLS 1.2 and later only, on a server's or a client's context.
void RestrictTlsVersions(boost::asio::ssl::context& tls);
// A client's context that verifies the server against `ca_pem` (empty: the
// system's trust store). InvalidArgument when the CA cannot be read.
Status TrustServer(boost::asio::ssl::context& tls, const std::string& ca_pem);
// A client's context that presents `cert_pem` (with its chain) and `key_pem`
// to the server; a no-op when both are empty.
Status UseClientCertificate(boost::asio::ssl::context& tls, const std::string& cert_pem,
                            const std::string& key_pem);

// Serves requests on `stream` until the peer closes, a response ends the
// connection, or *stopping. `buffer` may hold bytes already read. `io` is the
// connection's own io_context, which the stream is bound to; WebSockets and
// relays run asynchronous operations on it from this thread alone.
void ServeConnection(boost::asio::io_context& io, SslStream& stream,
                     boost::beast::flat_buffer& buffer, const std::string& remote,
                     const HttpHandler& handler, const ConnectionOptions& options);

}  // namespace kiso::apiserver
