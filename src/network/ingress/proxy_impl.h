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
#include <list>
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
inline constexpr size_t kSmallBody = size_t{64} << 10;    // Answers up to this are read whole.
inline constexpr std::chrono::seconds kReplyTimeout{30};  // For kiso's own short answers.

using Context = std::shared_ptr<SSL_CTX>;

// The routes a request is served with, and the TLS contexts of their certificates.
struct Snapshot {
  std::shared_ptr<const RouteTable> routes;
  std::vector<Context> contexts;  // Parallel to routes->certificates(); null: unusable.
};

// Hop-by-hop headers (RFC 9110 7.6.1, and those Connection names; IsHopByHop
// below): never forwarded, in either direction.
void StripHopByHop(http::fields& f);

template <class Stream>
tcp::socket::lowest_layer_type& Socket(Stream& s) {
  return beast::get_lowest_layer(s).socket();
}

// A part of a buffer as an offset, so that it stays true when the buffer
// moves as more is read into it; `side`: in the parser's side string instead.
struct Span {
  uint32_t at = 0;
  uint32_t size = 0;
  bool side = false;
};

// The head of one HTTP/1 message, parsed by Beast's parser without
// allocating per field: the start line and every field as spans of the
// buffer it was read from (the few values Beast unfolds itself, obs-fold,
// are copied to `side`). The storage is the connection's, reused by each
// message. A request's body, if any, is appended to `body` (de-chunked,
// bounded by body_limit); an answer's body is left to the caller.
template <bool isRequest>
class HeadParser final : public http::basic_parser<isRequest> {
 public:
  struct Field {
    http::field id;
    Span name;
    Span value;
  };
  struct Storage {
    std::vector<Field> fields;
    std::string side;
    std::string body;
  };
  explicit HeadParser(Storage& s) : s_(s) {
    s_.fields.clear();
    s_.side.clear();
    s_.body.clear();
    this->header_limit(static_cast<std::uint32_t>(kHeaderLimit));
    this->eager(false);  // put() stops at the end of the head.
  }
  // Parses the head at the start of `data`: its size once whole, 0 while
  // more is needed (ec clear) or on an error (ec set).
  size_t ParseHead(std::string_view data, boost::system::error_code& ec) {
    base_ = data.data();
    end_ = data.data() + data.size();
    size_t n = this->put(asio::const_buffer(data.data(), data.size()), ec);
    if (ec == http::error::need_more) {
      ec = {};
      return 0;
    }
    return ec ? 0 : n;
  }
  std::string_view View(const char* base, Span x) const {
    return x.side ? std::string_view(s_.side).substr(x.at, x.size)
                  : std::string_view(base + x.at, x.size);
  }
  const std::vector<Field>& fields() const { return s_.fields; }
  // The first value of a field (Beast's id), or "".
  std::string_view Find(const char* base, http::field id) const {
    for (const auto& f : s_.fields) {
      if (f.id == id) return View(base, f.value);
    }
    return {};
  }

  http::verb verb = http::verb::unknown;
  Span method, target, reason;
  unsigned version = 11;
  unsigned status = 0;

 private:
  Span Of(std::string_view x) {
    const auto from = reinterpret_cast<uintptr_t>(x.data());
    if (from >= reinterpret_cast<uintptr_t>(base_) &&
        from + x.size() <= reinterpret_cast<uintptr_t>(end_)) {
      return {static_cast<uint32_t>(x.data() - base_), static_cast<uint32_t>(x.size()), false};
    }
    Span at{static_cast<uint32_t>(s_.side.size()), static_cast<uint32_t>(x.size()), true};
    s_.side.append(x);
    return at;
  }
  void on_request_impl(http::verb v, beast::string_view m, beast::string_view t, int ver,
                       boost::system::error_code& /*ec*/) override {
    verb = v;
    method = Of(m);
    target = Of(t);
    version = static_cast<unsigned>(ver);
  }
  void on_response_impl(int code, beast::string_view r, int ver,
                        boost::system::error_code& /*ec*/) override {
    status = static_cast<unsigned>(code);
    reason = Of(r);
    version = static_cast<unsigned>(ver);
  }
  void on_field_impl(http::field id, beast::string_view name, beast::string_view value,
                     boost::system::error_code& /*ec*/) override {
    s_.fields.push_back({id, Of(name), Of(value)});
  }
  void on_header_impl(boost::system::error_code& /*ec*/) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& /*length*/,
                         boost::system::error_code& /*ec*/) override {}
  size_t on_body_impl(beast::string_view b, boost::system::error_code& /*ec*/) override {
    s_.body.append(b);
    return b.size();
  }
  void on_chunk_header_impl(std::uint64_t /*size*/, beast::string_view /*extensions*/,
                            boost::system::error_code& /*ec*/) override {}
  size_t on_chunk_body_impl(std::uint64_t /*remain*/, beast::string_view b,
                            boost::system::error_code& /*ec*/) override {
    s_.body.append(b);
    return b.size();
  }
  void on_finish_impl(boost::system::error_code& /*ec*/) override {}

  Storage& s_;
  const char* base_ = nullptr;  // The buffer being parsed.
  const char* end_ = nullptr;
};
using RequestHead = HeadParser<true>;
using AnswerHead = HeadParser<false>;

struct Worker;

// A deadline for a connection's current read or write, enforced by its
// worker's sweep (one timer per worker, rather than one armed and cancelled
// around every read and write): past it, the sockets are cancelled, so the
// pending operation ends with operation_aborted, and `expired` says why.
class Deadline {
 public:
  Deadline(Worker& w, tcp::socket* client);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  // From now for `d`; `upstream` (if any) is cancelled with the client's socket.
  void Arm(std::chrono::steady_clock::duration d, tcp::socket* upstream = nullptr) {
    at_ = std::chrono::steady_clock::now() + d;
    upstream_ = upstream;
  }
  void Disarm() {
    at_ = std::chrono::steady_clock::time_point::max();
    upstream_ = nullptr;
  }
  bool expired() const { return expired_; }
  void Check(std::chrono::steady_clock::time_point now);

 private:
  Worker& w_;
  tcp::socket* client_;
  tcp::socket* upstream_ = nullptr;
  std::chrono::steady_clock::time_point at_ = std::chrono::steady_clock::time_point::max();
  bool expired_ = false;
  std::list<Deadline*>::iterator self_;
};

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
  std::list<Deadline*> deadlines;  // Outlives the event loop's coroutines (declared first).
  // Run by one thread, every socket and timer used on it alone (an accepted
  // socket reaches it through a posted coroutine): no locking of sockets.
  asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::map<std::string, std::vector<std::unique_ptr<Upstream>>, std::less<>>
      idle;                                // "ip:port"; this worker's only
  std::shared_ptr<const Snapshot> routes;  // The worker's copy of Impl::snapshot, and its
  uint64_t routes_version = 0;             // version: the atomic is read once per change.
  std::thread thread;
};

inline Deadline::Deadline(Worker& w, tcp::socket* client) : w_(w), client_(client) {
  self_ = w_.deadlines.insert(w_.deadlines.end(), this);
}
inline Deadline::~Deadline() { w_.deadlines.erase(self_); }
inline void Deadline::Check(std::chrono::steady_clock::time_point now) {
  if (now < at_) return;
  expired_ = true;
  at_ = std::chrono::steady_clock::time_point::max();
  boost::system::error_code ignored;
  if (client_) client_->cancel(ignored);
  if (upstream_) upstream_->cancel(ignored);
}

// Header fields as the head builders below read them: Beast's, or a
// HeadParser's spans of the buffer they were read from.
struct BeastFields {
  const http::fields& f;
  template <class Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& x : f) {
      fn(x.name(), std::string_view(x.name_string().data(), x.name_string().size()),
         std::string_view(x.value().data(), x.value().size()));
    }
  }
};
struct PairFields {  // HTTP/2's (lower-case names).
  const std::vector<std::pair<std::string, std::string>>& f;
  template <class Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& [name, value] : f) fn(http::string_to_field(name), name, value);
  }
};
template <bool isRequest>
struct ParsedFields {
  const HeadParser<isRequest>& p;
  const char* base;
  template <class Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& x : p.fields()) fn(x.id, p.View(base, x.name), p.View(base, x.value));
  }
};

// Hop-by-hop fields (RFC 9110 7.6.1), and those the Connection field names:
// never forwarded, in either direction.
bool IsHopByHop(http::field id, std::string_view name, std::string_view connection);
template <class Fields>
std::string_view ConnectionOf(const Fields& fields) {
  std::string_view connection;
  fields.ForEach([&](http::field id, std::string_view, std::string_view value) {
    if (id == http::field::connection) connection = value;
  });
  return connection;
}

// A request's head as an endpoint gets it, but for its framing (below):
// HTTP/1.1, Host first (`host`: the Host field's, or HTTP/2's :authority),
// every other field but the hop-by-hop ones, Expect and the framing,
// then what ingress-nginx adds: X-Forwarded-For (the client's address
// appended), X-Forwarded-Proto, X-Forwarded-Host, X-Real-Ip; and
// Connection/Upgrade when `upgrade` is asked for again, hop by hop.
struct UpstreamRequest {
  std::string_view method, target, host, upgrade, client_ip;
  bool tls_listener = false;
};
template <class Fields>
void AppendUpstreamHead(std::string& out, const UpstreamRequest& r, const Fields& fields) {
  out.append(r.method).append(" ").append(r.target).append(" HTTP/1.1\r\n");
  if (!r.host.empty()) out.append("Host: ").append(r.host).append("\r\n");
  const std::string_view connection = ConnectionOf(fields);
  std::string_view forwarded_for;
  fields.ForEach([&](http::field id, std::string_view name, std::string_view value) {
    if (IsHopByHop(id, name, connection) || id == http::field::host || id == http::field::expect ||
        id == http::field::content_length || id == http::field::transfer_encoding) {
      return;
    }
    if (id == http::field::unknown) {
      if (beast::iequals(name, "X-Forwarded-For")) {
        if (forwarded_for.empty()) forwarded_for = value;
        return;
      }
      if (beast::iequals(name, "X-Forwarded-Proto") || beast::iequals(name, "X-Forwarded-Host") ||
          beast::iequals(name, "X-Real-Ip")) {
        return;
      }
    }
    out.append(name).append(": ").append(value).append("\r\n");
  });
  out.append("X-Forwarded-For: ");
  if (!forwarded_for.empty()) out.append(forwarded_for).append(", ");
  out.append(r.client_ip).append("\r\nX-Forwarded-Proto: ");
  out.append(r.tls_listener ? "https" : "http").append("\r\n");
  if (!r.host.empty()) out.append("X-Forwarded-Host: ").append(r.host).append("\r\n");
  out.append("X-Real-Ip: ").append(r.client_ip).append("\r\n");
  if (!r.upgrade.empty()) {
    out.append("Connection: Upgrade\r\nUpgrade: ").append(r.upgrade).append("\r\n");
  }
}
// Ends a head from AppendUpstreamHead: the body's Content-Length (as
// Beast's prepare_payload: when there is a body, or the method expects one).
inline void EndUpstreamHead(std::string& out, http::verb method, size_t body_size) {
  if (body_size > 0 || method == http::verb::post || method == http::verb::put ||
      method == http::verb::patch) {
    out.append("Content-Length: ").append(std::to_string(body_size)).append("\r\n");
  }
  out.append("\r\n");
}

// An answer's head as the client gets it: the status line in the client's
// HTTP `version`, every field but the hop-by-hop ones, and whether the
// connection stays (HTTP/1.1 says so only to close, HTTP/1.0 only to keep).
template <class Fields>
void AppendClientHead(std::string& out, unsigned version, unsigned status, std::string_view reason,
                      const Fields& fields, bool keep_alive) {
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ").append(std::to_string(status));
  out.append(" ").append(reason).append("\r\n");
  const std::string_view connection = ConnectionOf(fields);
  fields.ForEach([&](http::field id, std::string_view name, std::string_view value) {
    if (!IsHopByHop(id, name, connection))
      out.append(name).append(": ").append(value).append("\r\n");
  });
  if (version == 10 && keep_alive) out.append("Connection: keep-alive\r\n");
  if (version != 10 && !keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
}

// A client connection's state, kept between its requests (nothing of it is
// allocated anew per request).
struct ClientState {
  ClientState(Worker& w, tcp::socket* client) : deadline(w, client) {}
  Deadline deadline;
  RequestHead::Storage request;
  AnswerHead::Storage answer;
  std::string out;  // A head on its way: the request's upstream, then the answer's back.
};

// One request as relayed: its head for the backend (AppendUpstreamHead,
// EndUpstreamHead) and body, and what the client asked for.
struct Exchange {
  std::string_view request;
  std::string_view body;
  unsigned version = 11;
  bool client_keep = true;
  bool head_method = false;
  std::string upgrade;  // The protocol asked for (Connection: upgrade), or "".
};

struct IngressProxy::Impl {
  ProxyOptions options;
  std::vector<std::unique_ptr<Worker>> workers;  // The first also accepts.
  // The HTTPS listener's: the default certificate; SNI switches to an Ingress's.
  asio::ssl::context tls{asio::ssl::context::tls_server};
  std::unique_ptr<tcp::acceptor> http_acceptor;
  std::unique_ptr<tcp::acceptor> https_acceptor;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot;
  std::atomic<uint64_t> snapshot_version{0};  // Bumped after each store to `snapshot`.
  std::mutex set_mu;                          // Serialises SetRoutes (its context cache).
  std::map<std::string, Context> contexts;    // cert+key PEM → context; guarded by set_mu
  std::atomic<bool> stopped{false};
  size_t next_worker = 0;  // The accepting coroutine's only.

  explicit Impl(ProxyOptions o) : options(std::move(o)) {}

  Status Listen(int port, bool tls_listener);
  asio::awaitable<void> Accept(tcp::acceptor& acceptor, bool tls_listener);
  // Enforces the worker's deadlines until Stop.
  asio::awaitable<void> Sweep(Worker& w);
  // The current routes as `w` sees them: its copy, renewed when SetRoutes changed them.
  const std::shared_ptr<const Snapshot>& RoutesOf(Worker& w);
  template <class Stream>
  asio::awaitable<void> Serve(Worker& w, Stream& stream, bool tls_listener, std::string client_ip);
  // Relays one request to the backend and its answer to the client; true
  // when the client connection stays.
  template <class Stream>
  asio::awaitable<bool> Forward(Worker& w, Stream& client, beast::flat_buffer& client_buffer,
                                const Exchange& x, const Backend& backend, ClientState& c);
  // A backend's answer: its connection, the head at the start of its buffer.
  struct Answer {
    const std::string* target = nullptr;  // The endpoint's; lives with the routes.
    std::unique_ptr<Upstream> up;
    size_t head_bytes = 0;  // 0: no answer, `failure` says why.
    http::status failure = http::status::bad_gateway;
  };
  // Sends `request` and `body` to one of the backend's endpoints (round
  // robin, the next one tried when one refuses) and parses the answer's head
  // into `head` (interim 1xx answers but 101 passed over), each step within
  // the upstream timeout on `deadline`.
  asio::awaitable<Answer> Ask(Worker& w, std::string_view request, std::string_view body,
                              const Backend& backend, bool head_method,
                              std::optional<AnswerHead>& head, AnswerHead::Storage& storage,
                              Deadline& deadline);
  // The answer's head parsed again by Beast's own parser (for the answers
  // that are streamed, and for HTTP/2), the head consumed from the buffer.
  static std::unique_ptr<http::response_parser<http::empty_body>> BeastAnswer(Answer& a,
                                                                              bool head_method);
  // An idle connection to `target` kept by `w`, or null.
  static std::unique_ptr<Upstream> TakeIdle(Worker& w, const std::string& target);
  // A new connection to `target` (null: refused or timed out).
  asio::awaitable<std::unique_ptr<Upstream>> Connect(Worker& w, const std::string& target);
  void Release(Worker& w, const std::string& target, std::unique_ptr<Upstream> up);
  void Spawn(Worker& w, asio::awaitable<void> work);
  // HTTP/2 (http2.cc): a connection whose client chose h2 by ALPN, or sent
  // the HTTP/2 preface on the plain port (`initial`: the bytes read so far).
  template <class Stream>
  asio::awaitable<void> ServeHttp2(Worker& w, Stream& stream, bool tls_listener,
                                   std::string client_ip, std::string initial);
};

// The socket itself for a plain connection (no Beast stream and its timers
// in between: deadlines are the worker's), the TLS stream for TLS.
template <class Stream>
auto& Io(Stream& s) {
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    return s.socket();
  } else {
    return s;
  }
}

// Parses the head `buffer` starts with into `p`: its size once whole, 0
// while more must be read into the buffer (ec clear) or on an error.
// (Inline in each reading loop rather than a coroutine of its own: a
// coroutine frame per read was a malloc in the benchmark's profile.)
template <bool isRequest>
size_t ParseBuffered(HeadParser<isRequest>& p, const beast::flat_buffer& buffer,
                     boost::system::error_code& ec) {
  return p.ParseHead({static_cast<const char*>(buffer.data().data()), buffer.size()}, ec);
}
// The error a failed read while reading a head means: end_of_stream when the
// peer closed before a byte of it, partial_message when within it.
inline boost::system::error_code ReadError(const boost::system::error_code& rec,
                                           const beast::flat_buffer& buffer) {
  if (rec != asio::error::eof) return rec;
  return buffer.size() == 0 ? http::error::end_of_stream : http::error::partial_message;
}

// One of kiso's own short answers (404, 502…); true when the connection stays.
template <class Stream>
asio::awaitable<bool> Reply(Stream& stream, unsigned version, http::status status,
                            std::string_view body, bool keep_alive) {
  beast::get_lowest_layer(stream).expires_after(kReplyTimeout);
  http::fields f;
  f.set(http::field::content_type, "text/plain; charset=utf-8");
  f.set(http::field::content_length, std::to_string(body.size()));
  std::string out;
  AppendClientHead(out, version, static_cast<unsigned>(status), http::obsolete_reason(status),
                   BeastFields{f}, keep_alive);
  out.append(body);
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
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
