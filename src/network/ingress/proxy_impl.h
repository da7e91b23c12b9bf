// The ingress proxy's insides, shared by its HTTP/1.1 side (proxy.cc) and
// its HTTP/2 side (http2.cc). Not for other users: it brings in Asio and Beast.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "network/ingress/proxy.h"

namespace kiso::network::ingress {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

inline constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
inline constexpr size_t kHeaderLimit = size_t{64} << 10;
inline constexpr size_t kIdlePerTarget = 64;  // Upstream connections kept per endpoint.
inline constexpr size_t kRelayChunk = size_t{32} << 10;
inline constexpr size_t kSmallBody = size_t{64} << 10;  // Answers up to this are read whole.

using Context = std::shared_ptr<SSL_CTX>;

// The routes a request is served with, and the TLS contexts of their certificates.
struct Snapshot {
  std::shared_ptr<const RouteTable> routes;
  std::vector<Context> contexts;  // Parallel to routes->certificates(); null: unusable.
};

// Hop-by-hop headers (RFC 9110 7.6.1): never forwarded, in either direction.
void StripHopByHop(http::fields& f);

template <class Stream>
tcp::socket::lowest_layer_type& Socket(Stream& s) {
  return beast::get_lowest_layer(s).socket();
}

// A connection to an endpoint, kept between requests with its read buffer
// (wrapping a socket anew would allocate a stream and its timers each time).
// Held by pointer: moving a Beast stream allocates its insides anew.
struct Upstream {
  explicit Upstream(asio::io_context& ioc) : stream(ioc) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

// One per thread, as nginx has workers: its own event loop (a connection
// stays on one thread, no handler crosses threads, no lock on the request
// path) and its own idle upstream connections.
struct Worker {
  asio::io_context ioc{1};  // Run by one thread: Asio may skip some locking.
  std::map<std::string, std::vector<std::unique_ptr<Upstream>>>
      idle;  // "ip:port"; this worker's only
  std::thread thread;
};

struct IngressProxy::Impl {
  ProxyOptions options;
  std::vector<std::unique_ptr<Worker>> workers;  // The first also accepts.
  // The HTTPS listener's: the default certificate; SNI switches to an Ingress's.
  asio::ssl::context tls{asio::ssl::context::tls_server};
  std::unique_ptr<tcp::acceptor> http_acceptor;
  std::unique_ptr<tcp::acceptor> https_acceptor;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot;
  std::mutex set_mu;                        // Serialises SetRoutes (its context cache).
  std::map<std::string, Context> contexts;  // cert+key PEM → context; guarded by set_mu
  std::atomic<bool> stopped{false};
  size_t next_worker = 0;  // The accepting coroutine's only.

  explicit Impl(ProxyOptions o) : options(std::move(o)) {}

  Status Listen(int port, bool tls_listener);
  asio::awaitable<void> Accept(tcp::acceptor& acceptor, bool tls_listener);
  template <class Stream>
  asio::awaitable<void> Serve(Worker& w, Stream& stream, bool tls_listener, std::string client_ip);
  template <class Stream>
  asio::awaitable<bool> Forward(Worker& w, Stream& client, beast::flat_buffer& client_buffer,
                                http::request<http::string_body>& req, const Backend& backend,
                                bool tls_listener, const std::string& client_ip);
  // The head of a backend's answer, and the connection it is read from.
  struct Answer {
    std::string target;
    std::unique_ptr<Upstream> up;
    std::unique_ptr<http::response_parser<http::empty_body>> parser;  // Null: `failure`.
    http::status failure = http::status::bad_gateway;
  };
  // Sends `req` to one of the backend's endpoints (round robin, the next one
  // tried when one refuses) and reads the answer's head.
  asio::awaitable<Answer> Ask(Worker& w, http::request<http::string_body>& req,
                              const Backend& backend, bool head);
  static void PrepareRequest(http::request<http::string_body>& req, bool tls_listener,
                             const std::string& client_ip);
  asio::awaitable<std::unique_ptr<Upstream>> Connect(Worker& w, const std::string& target,
                                                     bool* pooled);
  void Release(Worker& w, const std::string& target, std::unique_ptr<Upstream> up);
  void Spawn(Worker& w, asio::awaitable<void> work);
  // HTTP/2 (http2.cc): a connection whose client chose h2 by ALPN, or sent
  // the HTTP/2 preface on the plain port (`initial`: the bytes read so far).
  template <class Stream>
  asio::awaitable<void> ServeHttp2(Worker& w, Stream& stream, bool tls_listener,
                                   std::string client_ip, std::string initial);
};

// Writes a message whose body is whole in one writev of two buffers: its
// head serialised into one string, then its body. (Beast's serializer walks
// every header field as buffers of their own, a cost that showed in the
// benchmark's profile.) The Content-Length must be set (prepare_payload, or
// a parsed answer's own): nothing here frames the body.
template <class Stream, bool isRequest>
asio::awaitable<boost::system::error_code> WriteWhole(
    Stream& s, const http::message<isRequest, http::string_body>& m) {
  std::string head;
  head.reserve(256 + m.body().size() / 64);
  const std::string_view version = m.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
  if constexpr (isRequest) {
    head.append(m.method_string()).append(" ").append(m.target()).append(" ").append(version);
  } else {
    head.append(version).append(" ").append(std::to_string(m.result_int())).append(" ");
    head.append(m.reason());
  }
  head.append("\r\n");
  for (const auto& f : m)
    head.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
  head.append("\r\n");
  std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(m.body())};
  auto [ec, n] = co_await asio::async_write(s, buffers, kTuple);
  co_return ec;
}

// One of kiso's own short answers (404, 502…); true when the connection stays.
template <class Stream>
asio::awaitable<bool> Reply(Stream& stream, unsigned version, http::status status,
                            std::string_view body, bool keep_alive) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  boost::system::error_code ec = co_await WriteWhole(stream, res);
  co_return !ec && keep_alive;
}

// Where a request for `host` and `path` goes: its backend, or kiso's own
// answer (404 without a rule, 503 without endpoints) — for HTTP/1.1 and
// HTTP/2 alike.
struct Routed {
  std::shared_ptr<const Snapshot> snapshot;  // Holds the backend alive.
  const Backend* backend = nullptr;          // Null: answer `refusal`, `text`.
  http::status refusal = http::status::ok;
  std::string_view text;
};
Routed Route(std::shared_ptr<const Snapshot> snapshot, std::string_view host,
             std::string_view path);

}  // namespace kiso::network::ingress
