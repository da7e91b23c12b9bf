#include "apiserver/http/http_server.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "api/errors.h"
#include "apiserver/http/channel_pump.h"
#include "apiserver/http/http_connection.h"
#include "apiserver/http/spdy_pump.h"
#include "common/http2_session.h"
#include "common/recover.h"
#include "common/worker_pool.h"

namespace kiso::apiserver {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
namespace websocket = beast::websocket;

// A body of shared parts goes out this much at a time (four TLS records).
constexpr size_t kBodyChunk = size_t{64} << 10;

std::string_view Request::Header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string_view() : std::string_view(it->second);
}

std::optional<std::string_view> Request::Query(std::string_view name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return std::string_view(it->second);
}

bool Request::QueryBool(std::string_view name) const {
  auto v = Query(name);
  return v && (*v == "1" || *v == "t" || *v == "T" || *v == "true" || *v == "TRUE" || *v == "True");
}

void Request::Warn(std::string text) const {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  size_t used = 0;
  for (const auto& w : warnings) {
    if (w == text) return;
    used += w.size();
  }
  if (used + text.size() > kMaxWarningBytes) return;
  warnings.push_back(std::move(text));
}

std::vector<std::string> Request::QueryAll(std::string_view name) const {
  std::vector<std::string> out;
  auto [begin, end] = query.equal_range(name);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

void SetTarget(Request& req, std::string_view target) {
  req.target = target;
  req.query.clear();
  auto parsed = boost::urls::parse_origin_form(target);
  if (parsed) {
    req.path = parsed->path();
    boost::urls::encoding_opts opts;
    opts.space_as_plus = true;
    for (auto param : parsed->params(opts)) req.query.emplace(param.key, param.value);
  } else {
    req.path = std::string(target.substr(0, target.find('?')));
  }
}

namespace {

class ChunkWriter : public StreamWriter {
 public:
  ChunkWriter(SslStream& stream, const std::atomic<bool>& stopping)
      : stream_(stream), stopping_(stopping) {}
  bool Write(std::string_view data) override {
    if (failed_ || data.empty()) return !failed_;
    beast::error_code ec;
    asio::write(stream_, http::make_chunk(asio::const_buffer(data.data(), data.size())), ec);
    failed_ = static_cast<bool>(ec);
    return !failed_;
  }
  bool Stopping() const override { return stopping_.load(); }
  void Finish() {
    if (failed_) return;
    beast::error_code ec;
    asio::write(stream_, http::make_chunk_last(), ec);
  }

 private:
  SslStream& stream_;
  const std::atomic<bool>& stopping_;
  bool failed_ = false;
};

Request Convert(const http::request<http::string_body>& in, const std::string& remote,
                const std::optional<PeerCertificate>& peer) {
  Request req;
  req.method = std::string(in.method_string());
  req.remote = remote;
  req.peer = peer;
  SetTarget(req, std::string_view(in.target().data(), in.target().size()));
  for (const auto& field : in) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // A repeated header is one list (X-Stream-Protocol-Version: v4…, v3…).
    auto [it, added] = req.headers.emplace(std::move(name), std::string(field.value()));
    if (!added) it->second.append(", ").append(field.value());
  }
  req.body = in.body();
  return req;
}

}  // namespace

// A tunnel's state, shared by the thread of the connection it is (which waits,
// then runs the tunnel's half of a relay) and the thread that claims it.
struct Tunnel {
  enum class State { kIdle, kClaimed, kRelaying, kDone };
  Tunnel(SslStream& s, asio::io_context& i) : stream(s), io(i) {}

  SslStream& stream;
  asio::io_context& io;
  std::mutex mu;
  std::condition_variable cv;
  State state = State::kIdle;
  std::chrono::steady_clock::time_point claimed_at;
  std::function<void()> start;  // With kRelaying: starts the tunnel's half.
};

namespace {

// The agent closed the tunnel or sent something unasked: either way unusable.
bool PeerGone(SslStream& s) {
  char c = 0;
  ssize_t n = ::recv(s.next_layer().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

// Copies bytes both ways between a client's connection and a tunnel, each
// stream touched only by the thread running its own io_context: a read on one
// side posts the write to the other, whose completion posts the next read. The
// first side to end (close, error) ends both.
class Relay : public std::enable_shared_from_this<Relay> {
 public:
  Relay(SslStream& client, asio::io_context& client_io, SslStream& tunnel,
        asio::io_context& tunnel_io)
      : up_{client, client_io, tunnel, tunnel_io, {}},
        down_{tunnel, tunnel_io, client, client_io, {}},
        client_guard_(client_io.get_executor()),
        tunnel_guard_(tunnel_io.get_executor()) {}

  // Called on each side's thread before it runs its io_context.
  void StartClientSide() { Read(up_); }
  void StartTunnelSide() { Read(down_); }

 private:
  struct Direction {
    SslStream& from;
    asio::io_context& from_io;
    SslStream& to;
    asio::io_context& to_io;
    std::array<char, 16384> buf;
  };

  void Read(Direction& d) {
    d.from.async_read_some(
        asio::buffer(d.buf), [self = shared_from_this(), &d](beast::error_code ec, size_t n) {
          if (ec) return self->Close();
          asio::post(d.to_io, [self, &d, n] {
            asio::async_write(d.to, asio::buffer(d.buf.data(), n),
                              [self, &d](beast::error_code ec, size_t) {
                                if (ec) return self->Close();
                                asio::post(d.from_io, [self, &d] { self->Read(d); });
                              });
          });
        });
  }

  void Close() {
    if (closed_.exchange(true)) return;
    auto end = [](SslStream& s, auto& guard) {
      beast::error_code ignored;
      s.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
      s.next_layer().cancel(ignored);
      guard.reset();
    };
    asio::post(up_.from_io,
               [self = shared_from_this(), end] { end(self->up_.from, self->client_guard_); });
    asio::post(down_.from_io,
               [self = shared_from_this(), end] { end(self->down_.from, self->tunnel_guard_); });
  }

  Direction up_;    // Client → agent.
  Direction down_;  // Agent → client.
  asio::executor_work_guard<asio::io_context::executor_type> client_guard_;
  asio::executor_work_guard<asio::io_context::executor_type> tunnel_guard_;
  std::atomic<bool> closed_{false};
};

// Requests that stay open as long as their client wants (upstream's
// long-running check): they hold a connection, not a seat in the gate.
bool LongRunning(const http::request<http::string_body>& in) {
  if (websocket::is_upgrade(in) || in.find(http::field::upgrade) != in.end()) return true;
  return apiserver::LongRunning(std::string_view(in.target().data(), in.target().size()));
}

}  // namespace

bool LongRunning(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query = target.substr(std::min(target.size(), path.size() + 1));
  for (std::string_view word : {"watch=true", "watch=1", "follow=true", "follow=1"}) {
    size_t at = query.find(word);
    if (at != std::string_view::npos && (at == 0 || query[at - 1] == '&')) return true;
  }
  for (std::string_view sub : {"/log", "/exec", "/attach", "/portforward", "/proxy"}) {
    if (path.ends_with(sub)) return true;
  }
  return path.find("/watch/") != std::string_view::npos ||
         path.find("/proxy/") != std::string_view::npos;
}

namespace {

// A Status as the response (with Retry-After when it says to retry); the
// connection closes after it unless `keep_alive`.
void WriteError(SslStream& stream, const api::ApiError& e, bool keep_alive = false,
                unsigned version = 11) {
  http::response<http::string_body> res{static_cast<http::status>(e.code), version};
  res.set(http::field::content_type, "application/json");
  if (e.retry_after_seconds > 0)
    res.set(http::field::retry_after, std::to_string(e.retry_after_seconds));
  res.body() = e.ToJson();
  res.keep_alive(keep_alive);
  res.prepare_payload();
  beast::error_code ignored;
  http::write(stream, res, ignored);
}

// The tunnel's side: waits to be claimed (or for its agent to go, or the
// server to stop), then runs its half of the relay.
void WaitAsTunnel(Tunnel& t, const std::atomic<bool>& stopping) {
  constexpr auto kCheck = std::chrono::seconds(2);
  constexpr auto kClaimTimeout = std::chrono::seconds(30);
  std::unique_lock lock(t.mu);
  while (t.state != Tunnel::State::kRelaying) {
    if (t.state == Tunnel::State::kDone) return;
    if (t.state == Tunnel::State::kIdle && (stopping || PeerGone(t.stream))) {
      t.state = Tunnel::State::kDone;
      return;
    }
    if (t.state == Tunnel::State::kClaimed &&
        std::chrono::steady_clock::now() - t.claimed_at > kClaimTimeout) {
      t.state = Tunnel::State::kDone;  // Claimed, never used.
      return;
    }
    t.cv.wait_for(lock, kCheck);
  }
  auto start = std::move(t.start);
  lock.unlock();
  t.io.restart();
  start();
  t.io.run();
}

// The client's side: forwards the request down the claimed tunnel, then runs
// the client's half of the relay until either end closes.
void RelayThrough(asio::io_context& io, SslStream& stream, beast::flat_buffer& buffer,
                  http::request<http::string_body> head, Tunnel& t) {
  auto broken = [&](std::string_view why) {
    WriteError(stream,
               api::ServiceUnavailable(fmt::format("the tunnel to the pod's node agent {}", why)));
  };
  {
    std::lock_guard lock(t.mu);
    if (t.state != Tunnel::State::kClaimed) return broken("was closed before it could be used");
  }
  // The agent serves this one request, then closes: the client's next request
  // must come back to the server, not go down the tunnel.
  head.erase(http::field::authorization);
  head.keep_alive(false);
  beast::error_code ec;
  http::write(t.stream, head, ec);  // The tunnel's thread only waits until kRelaying.
  if (!ec && buffer.size() > 0) asio::write(t.stream, buffer.data(), ec);
  buffer.clear();
  if (ec) {
    std::lock_guard lock(t.mu);
    t.state = Tunnel::State::kDone;
    t.cv.notify_all();
    return broken(fmt::format("broke: {}", ec.message()));
  }
  auto relay = std::make_shared<Relay>(stream, io, t.stream, t.io);
  {
    std::lock_guard lock(t.mu);
    t.start = [relay] { relay->StartTunnelSide(); };
    t.state = Tunnel::State::kRelaying;
    t.cv.notify_all();
  }
  io.restart();
  relay->StartClientSide();
  relay.reset();
  io.run();
}

}  // namespace

bool ClaimTunnel(Tunnel& t) {
  std::lock_guard lock(t.mu);
  if (t.state != Tunnel::State::kIdle) return false;
  if (PeerGone(t.stream)) {
    t.state = Tunnel::State::kDone;
    t.cv.notify_all();
    return false;
  }
  t.state = Tunnel::State::kClaimed;
  t.claimed_at = std::chrono::steady_clock::now();
  return true;
}

Result<std::pair<int, std::string>> GetThrough(const std::shared_ptr<Tunnel>& tunnel,
                                               const std::string& target,
                                               std::chrono::milliseconds timeout) {
  constexpr uint64_t kBodyLimit = 16 << 20;
  // Runs on the tunnel's own thread (its io_context), as a relay's half does.
  struct Call {
    explicit Call(asio::io_context& io) : timer(io) {}
    http::request<http::empty_body> req;
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    asio::steady_timer timer;
    std::promise<Result<std::pair<int, std::string>>> done;
  };
  auto call = std::make_shared<Call>(tunnel->io);
  call->req = {http::verb::get, target, 11};
  call->req.set(http::field::host, "kiso-agent");
  call->req.keep_alive(false);
  call->parser.body_limit(kBodyLimit);
  auto answer = call->done.get_future();
  {
    std::lock_guard lock(tunnel->mu);
    if (tunnel->state != Tunnel::State::kClaimed)
      return MakeStatus(Code::kUnavailable, "the tunnel was closed before it could be used");
    tunnel->start = [call, tunnel, timeout] {
      auto fail = [call](const beast::error_code& ec) {
        call->timer.cancel();
        call->done.set_value(
            MakeStatus(Code::kUnavailable, "the tunnel to the node agent broke: {}", ec.message()));
      };
      call->timer.expires_after(timeout);
      call->timer.async_wait([tunnel](const beast::error_code& ec) {
        if (ec) return;
        beast::error_code ignored;
        tunnel->stream.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
      });
      http::async_write(tunnel->stream, call->req,
                        [call, tunnel, fail](beast::error_code ec, size_t) {
                          if (ec) return fail(ec);
                          http::async_read(tunnel->stream, call->buffer, call->parser,
                                           [call, fail](beast::error_code ec, size_t) {
                                             if (ec) return fail(ec);
                                             call->timer.cancel();
                                             auto& res = call->parser.get();
                                             call->done.set_value(std::pair<int, std::string>(
                                                 res.result_int(), std::move(res.body())));
                                           });
                        });
    };
    tunnel->state = Tunnel::State::kRelaying;
    tunnel->cv.notify_all();
  }
  // The tunnel's thread notices within its check interval at worst.
  if (answer.wait_for(timeout + std::chrono::seconds(3)) != std::future_status::ready)
    return MakeStatus(Code::kUnavailable, "the node agent did not answer in time");
  return answer.get();
}

void ForwardThrough(const std::shared_ptr<Tunnel>& tunnel, const Request& req,
                    std::shared_ptr<AnswerSink> sink) {
  // Runs on the tunnel's own thread (its io_context), as a relay's half does;
  // the sink's writes may block it, which holds up this tunnel alone.
  struct Call {
    http::request<http::string_body> req;
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    std::array<char, 16384> chunk{};
    std::shared_ptr<AnswerSink> sink;
    bool head_sent = false;
  };
  auto call = std::make_shared<Call>();
  call->sink = std::move(sink);
  auto& out = call->req;
  out.version(11);
  out.method_string(req.method);
  out.target(req.target);
  for (const auto& [name, value] : req.headers) {
    if (name == "authorization" || name == "connection" || name == "te" ||
        name == "transfer-encoding" || name == "content-length")
      continue;
    out.insert(name, value);
  }
  if (out.find(http::field::host) == out.end()) out.set(http::field::host, "kiso-agent");
  out.body() = req.body;
  out.keep_alive(false);  // The agent serves this one request, then closes.
  out.prepare_payload();
  call->parser.body_limit(boost::none);  // Logs that follow never end.
  auto fail = [call](std::string_view why) {
    if (call->head_sent) return call->sink->End(false);
    api::ApiError e =
        api::ServiceUnavailable(fmt::format("the tunnel to the pod's node agent {}", why));
    call->sink->Head(e.code, {{"content-type", "application/json"}});
    call->sink->Write(e.ToJson());
    call->sink->End(true);
  };
  std::lock_guard lock(tunnel->mu);
  if (tunnel->state != Tunnel::State::kClaimed) return fail("was closed before it could be used");
  int fd = tunnel->stream.next_layer().native_handle();
  // The client left: the agent's side is cut, which ends the reads below.
  call->sink->OnCancel([fd] { ::shutdown(fd, SHUT_RDWR); });
  tunnel->start = [call, tunnel, fail] {
    auto read_body = std::make_shared<std::function<void()>>();
    *read_body = [call, tunnel, fail, read_body] {
      auto& parser = call->parser;
      if (parser.is_done()) {
        call->sink->End(true);
        *read_body = nullptr;  // Ends the cycle.
        return;
      }
      parser.get().body().data = call->chunk.data();
      parser.get().body().size = call->chunk.size();
      http::async_read(tunnel->stream, call->buffer, parser,
                       [call, fail, read_body](beast::error_code ec, size_t) {
                         if (ec == http::error::need_buffer) ec = {};
                         size_t got = call->chunk.size() - call->parser.get().body().size;
                         if (got > 0 && !call->sink->Write({call->chunk.data(), got}))
                           ec = asio::error::operation_aborted;
                         if (ec) {
                           fail(ec.message());
                           *read_body = nullptr;
                           return;
                         }
                         (*read_body)();
                       });
    };
    http::async_write(
        tunnel->stream, call->req, [call, tunnel, fail, read_body](beast::error_code ec, size_t) {
          if (ec) {
            fail(fmt::format("broke: {}", ec.message()));
            *read_body = nullptr;
            return;
          }
          http::async_read_header(
              tunnel->stream, call->buffer, call->parser,
              [call, fail, read_body](beast::error_code ec, size_t) {
                if (ec) {
                  fail(fmt::format("broke: {}", ec.message()));
                  *read_body = nullptr;
                  return;
                }
                std::vector<std::pair<std::string, std::string>> headers;
                for (const auto& f : call->parser.get()) {
                  headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
                }
                call->head_sent = true;
                call->sink->Head(call->parser.get().result_int(), std::move(headers));
                (*read_body)();
              });
        });
  };
  tunnel->state = Tunnel::State::kRelaying;
  tunnel->cv.notify_all();
}

void CloseTunnel(Tunnel& t) {
  std::lock_guard lock(t.mu);
  if (t.state != Tunnel::State::kIdle) return;
  t.state = Tunnel::State::kDone;
  t.cv.notify_all();
}

void RestrictTlsVersions(ssl::context& tls) {
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
}

Status TrustServer(ssl::context& tls, const std::string& ca_pem) {
  beast::error_code ec;
  tls.set_verify_mode(ssl::verify_peer);
  if (ca_pem.empty()) {
    tls.set_default_verify_paths(ec);
  } else {
    tls.add_certificate_authority(asio::buffer(ca_pem), ec);
  }
  if (ec) return MakeStatus(Code::kInvalidArgument, "the server's CA: {}", ec.message());
  return Status::Ok();
}

Status UseClientCertificate(ssl::context& tls, const std::string& cert_pem,
                            const std::string& key_pem) {
  if (cert_pem.empty() && key_pem.empty()) return Status::Ok();
  beast::error_code ec;
  tls.use_certificate_chain(asio::buffer(cert_pem), ec);
  if (!ec) tls.use_private_key(asio::buffer(key_pem), ssl::context::pem, ec);
  if (ec) return MakeStatus(Code::kInvalidArgument, "the client certificate: {}", ec.message());
  return Status::Ok();
}

void ServeConnection(asio::io_context& io, SslStream& stream, beast::flat_buffer& buffer,
                     const std::string& remote, const HttpHandler& handler,
                     const ConnectionOptions& options) {
  auto stopping = [&] { return options.stopping && options.stopping->load(); };
  ThreadPriority priority;
  while (!stopping()) {
    if (options.on_idle) options.on_idle();
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    parser.header_limit(64 * 1024);
    beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      WriteError(stream, api::RequestEntityTooLarge(
                             fmt::format("the request body is larger than the limit of {} bytes",
                                         options.max_body_bytes)));
      return;
    }
    if (ec) return;
    if (options.on_request) options.on_request();
    const auto& in = parser.get();
    bool keep_alive = in.keep_alive() && !stopping();
    std::optional<FairGate::Ticket> seat;  // Held until the response is written.
    bool background = false;
    if (options.gate && !LongRunning(in)) {
      auto m = in.method();
      bool mutating = m != http::verb::get && m != http::verb::head && m != http::verb::options;
      seat = options.gate->Enter(options.flow, mutating);
      if (!seat) {
        // 429, as kube-apiserver's max-in-flight filter answers.
        WriteError(stream, api::TooManyRequests(), keep_alive, in.version());
        if (!keep_alive) return;
        continue;
      }
      background = seat->crowded() && !mutating;
    }
    priority.Set(background);
    Response out;
    Request req;
    try {
      req = Convert(in, remote, options.peer);
      out = handler(req);
    } catch (...) {
      ReportRecovered(fmt::format("{} {}", remote, std::string_view(in.target())),
                      CurrentExceptionMessage());
      out = Response{};
      out.status = 500;
      out.body = api::InternalError(std::string(CurrentExceptionMessage())).ToJson();
    }
    if (out.events) {
      out.stream = [events = std::move(out.events)](StreamWriter& w) { PumpEvents(*events, w); };
    }
    if (out.relay) {
      RelayThrough(io, stream, buffer, in, *out.relay);
      return;  // The connection ends with the relay.
    }
    if (out.accept_tunnel) {
      http::response<http::empty_body> res{http::status::switching_protocols, in.version()};
      res.set(http::field::connection, "Upgrade");
      res.set(http::field::upgrade, kTunnelProtocol);
      http::write(stream, res, ec);
      if (ec) return;
      auto tunnel = std::make_shared<Tunnel>(stream, io);
      if (options.on_tunnel) options.on_tunnel(tunnel);
      out.accept_tunnel(tunnel);
      static const std::atomic<bool> kNever{false};
      WaitAsTunnel(*tunnel, options.stopping ? *options.stopping : kNever);
      return;
    }
    if (out.channels && out.channels->dial && !websocket::is_upgrade(in)) {
      // Port-forward over SPDY on the connection itself (kubectl's fallback).
      http::response<http::empty_body> res{http::status::switching_protocols, in.version()};
      res.set(http::field::connection, "Upgrade");
      res.set(http::field::upgrade, "SPDY/3.1");
      res.set("X-Stream-Protocol-Version", "portforward.k8s.io");
      http::write(stream, res, ec);
      if (ec) return;
      PumpSpdy(io, stream, buffer, *out.channels);
      return;  // The connection ends with the session.
    }
    if (out.channels && !websocket::is_upgrade(in)) {
      // exec or attach over SPDY on the connection itself (clients without WebSockets).
      http::response<http::empty_body> res{http::status::switching_protocols, in.version()};
      res.set(http::field::connection, "Upgrade");
      res.set(http::field::upgrade, "SPDY/3.1");
      res.set("X-Stream-Protocol-Version", out.websocket_protocol);
      http::write(stream, res, ec);
      if (ec) return;
      CommandStreams expected;
      expected.in = req.QueryBool("stdin");
      expected.out = req.QueryBool("stdout");
      expected.resize = req.QueryBool("tty");
      expected.err = req.QueryBool("stderr") && !expected.resize;
      PumpSpdyCommand(io, stream, buffer, *out.channels, expected);
      return;  // The connection ends with the session.
    }
    if (out.channels && websocket::is_upgrade(in)) {
      WebSocketStream ws(stream);
      std::string protocol = out.websocket_protocol;
      ws.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& r) {
        r.set(http::field::sec_websocket_protocol, protocol);
      }));
      ws.binary(true);
      ws.accept(in, ec);
      if (ec) return;
      // Port-forward's SPDY inside the WebSocket, or the channel protocol.
      if (out.channels->dial) {
        PumpSpdy(io, ws, *out.channels);
        return;
      }
      PumpChannels(io, ws, *out.channels, protocol == "v5.channel.k8s.io");
      return;  // The connection ends with the session.
    }
    if (out.stream) {
      http::response<http::empty_body> res{static_cast<http::status>(out.status), in.version()};
      res.set(http::field::content_type, out.content_type);
      for (const auto& [k, v] : out.headers) res.insert(k, v);
      res.chunked(true);
      res.keep_alive(keep_alive);
      http::response_serializer<http::empty_body> sr{res};
      http::write_header(stream, sr, ec);
      if (ec) return;
      static const std::atomic<bool> kNever{false};
      ChunkWriter writer(stream, options.stopping ? *options.stopping : kNever);
      try {
        out.stream(writer);
      } catch (...) {
        ReportRecovered(fmt::format("{} {}: a stream", remote, std::string_view(in.target())),
                        CurrentExceptionMessage());
        return;  // The connection ends without the last chunk: the client sees it broken.
      }
      writer.Finish();
    } else if (out.parts) {
      // A body of shared parts: gathered into one buffer at a time (a TLS
      // record per part would be many small ones), never copied whole.
      http::response<http::empty_body> res{static_cast<http::status>(out.status), in.version()};
      res.set(http::field::content_type, out.content_type);
      for (const auto& [k, v] : out.headers) res.insert(k, v);
      res.content_length(out.BodySize());
      res.keep_alive(keep_alive);
      http::response_serializer<http::empty_body> sr{res};
      http::write_header(stream, sr, ec);
      if (ec) return;
      BodyReader reader(out);
      std::string chunk(kBodyChunk, '\0');
      while (size_t n = reader.Read(chunk.data(), chunk.size())) {
        asio::write(stream, asio::buffer(chunk.data(), n), ec);
        if (ec) return;
      }
    } else {
      http::response<http::string_body> res{static_cast<http::status>(out.status), in.version()};
      res.set(http::field::content_type, out.content_type);
      for (const auto& [k, v] : out.headers) res.insert(k, v);
      res.body() = std::move(out.body);
      res.keep_alive(keep_alive);
      res.prepare_payload();
      http::write(stream, res, ec);
      if (ec) return;
    }
    if (!keep_alive) return;
  }
}

// The subject of the client's certificate, if it sent one (the handshake
// verified it against the client CA).
std::optional<PeerCertificate> PeerOf(SslStream& stream) {
  X509* cert = SSL_get0_peer_certificate(stream.native_handle());
  if (cert == nullptr || SSL_get_verify_result(stream.native_handle()) != X509_V_OK)
    return std::nullopt;
  PeerCertificate peer;
  X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
    X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    if (nid != NID_commonName && nid != NID_organizationName) continue;
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    if (len < 0) continue;
    std::string value(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
    OPENSSL_free(utf8);
    if (nid == NID_commonName) {
      peer.common_name = std::move(value);
    } else {
      peer.organizations.push_back(std::move(value));
    }
  }
  return peer;
}

struct HttpsServer::Impl {
  HttpsServerOptions options;
  Handler handler;
  asio::io_context io{1};
  ssl::context tls{ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};

  std::unique_ptr<FairGate> gate;
  std::mutex mu;
  std::condition_variable idle;
  std::map<std::string, int> per_client;       // Open connections by client address.
  std::set<int> open_fds;                      // Sockets of live connections, shut down on Stop.
  std::vector<std::weak_ptr<Tunnel>> tunnels;  // Woken on Stop.
  int active = 0;
  // HTTP/1.1 connections waiting for a request (or a TLS handshake), by
  // socket: when each is cut (slow clients, idle keep-alive connections).
  std::map<int, std::chrono::steady_clock::time_point> deadlines;
  std::condition_variable deadlines_changed;
  std::thread reaper;
  // The handlers of HTTP/2 requests.
  WorkerPool workers;

  // `timeout` zero: no deadline (a request is being served).
  void SetDeadline(int fd, std::chrono::milliseconds timeout) {
    std::lock_guard lock(mu);
    if (timeout.count() == 0) {
      deadlines.erase(fd);
      return;
    }
    deadlines[fd] = std::chrono::steady_clock::now() + timeout;
    deadlines_changed.notify_all();
  }

  // Shuts down (for reading and writing) the connections past their deadline:
  // the blocked read ends, and with it the connection.
  void Reap() {
    std::unique_lock lock(mu);
    while (!stopping) {
      auto next = std::chrono::steady_clock::time_point::max();
      auto now = std::chrono::steady_clock::now();
      for (auto it = deadlines.begin(); it != deadlines.end();) {
        if (it->second <= now) {
          ::shutdown(it->first, SHUT_RDWR);
          it = deadlines.erase(it);
        } else {
          next = std::min(next, it->second);
          ++it;
        }
      }
      // Woken early by a new deadline or Stop; with none, only by those.
      if (next == std::chrono::steady_clock::time_point::max()) {
        deadlines_changed.wait(lock);
      } else {
        deadlines_changed.wait_until(lock, next);
      }
    }
  }

  void AcceptLoop() {
    while (!stopping) {
      tcp::socket socket(io);
      beast::error_code ec;
      acceptor.accept(socket, ec);
      if (ec) {
        if (stopping) break;
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto peer = socket.remote_endpoint(ec);
      std::string client = ec ? "" : peer.address().to_string();
      std::lock_guard lock(mu);
      if (stopping) break;
      if (per_client[client] >= options.max_connections_per_client) {
        // One client may not hold every thread: closed before any TLS work.
        socket.close(ec);
        continue;
      }
      ++per_client[client];
      open_fds.insert(socket.native_handle());
      ++active;
      std::thread([this, s = std::move(socket), client]() mutable {
        Serve(std::move(s), client);
      }).detach();
    }
  }

  void Serve(tcp::socket accepted, const std::string& client) {
    // Each connection has its own io_context: a WebSocket (exec, attach) runs
    // asynchronous operations on it from this thread alone.
    asio::io_context conn_io(1);
    beast::error_code ec;
    auto protocol = accepted.local_endpoint(ec).protocol();
    tcp::socket socket(conn_io, protocol, accepted.release(ec));
    int fd = socket.native_handle();
    std::string remote;
    auto endpoint = socket.remote_endpoint(ec);
    if (!ec) remote = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    {
      SslStream stream(std::move(socket), tls);
      SetDeadline(fd, options.idle_timeout);
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) {
        beast::flat_buffer buffer;
        ConnectionOptions connection;
        connection.max_body_bytes = options.max_body_bytes;
        connection.stopping = &stopping;
        connection.on_tunnel = [this](const std::shared_ptr<Tunnel>& t) {
          std::lock_guard lock(mu);
          std::erase_if(tunnels, [](const auto& w) { return w.expired(); });
          tunnels.push_back(t);
        };
        connection.gate = gate.get();
        connection.flow = client;
        connection.peer = PeerOf(stream);
        connection.idle_timeout = options.idle_timeout;
        connection.max_streams = options.max_streams;
        connection.on_request = [this, fd] { SetDeadline(fd, {}); };
        connection.on_idle = [this, fd] { SetDeadline(fd, options.idle_timeout); };
        const unsigned char* alpn = nullptr;
        unsigned int alpn_size = 0;
        SSL_get0_alpn_selected(stream.native_handle(), &alpn, &alpn_size);
        if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_size) == "h2") {
          SetDeadline(fd, {});  // HTTP/2 keeps its own: no deadline to clear per request.
          connection.on_request = nullptr;
          connection.on_idle = nullptr;
          ServeHttp2(conn_io, stream, remote, handler, connection, workers);
        } else {
          ServeConnection(conn_io, stream, buffer, remote, handler, connection);
        }
      }
      {
        std::lock_guard lock(mu);
        open_fds.erase(fd);
        deadlines.erase(fd);
        if (--per_client[client] == 0) per_client.erase(client);
      }
      stream.shutdown(ec);
      stream.next_layer().close(ec);
    }
    std::lock_guard lock(mu);
    if (--active == 0) idle.notify_all();
  }
};

HttpsServer::HttpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpsServer>> HttpsServer::Start(const HttpsServerOptions& options,
                                                        Handler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
  impl->gate = std::make_unique<FairGate>(options.fairness);
  beast::error_code ec;
  RestrictTlsVersions(impl->tls);
  impl->tls.use_certificate_chain(asio::buffer(options.cert_pem), ec);
  if (!ec) impl->tls.use_private_key(asio::buffer(options.key_pem), ssl::context::pem, ec);
  if (ec) return MakeStatus(Code::kInvalidArgument, "TLS certificate or key: {}", ec.message());
  if (!options.client_ca_pem.empty()) {
    impl->tls.add_certificate_authority(asio::buffer(options.client_ca_pem), ec);
    if (ec) return MakeStatus(Code::kInvalidArgument, "client CA: {}", ec.message());
    // Ask for a certificate; a client without one is authenticated otherwise.
    impl->tls.set_verify_mode(ssl::verify_peer);
    // Which CA signs client certificates, for clients that choose among several.
    X509* ca = nullptr;
    BIO* bio = BIO_new_mem_buf(options.client_ca_pem.data(),
                               static_cast<int>(options.client_ca_pem.size()));
    ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (ca != nullptr) {
      SSL_CTX_add_client_CA(impl->tls.native_handle(), ca);
      X509_free(ca);
    }
  }
  auto ip = asio::ip::make_address(options.address, ec);
  if (ec) {
    return MakeStatus(Code::kInvalidArgument, "listen address {:?}: {}", options.address,
                      ec.message());
  }
  tcp::endpoint endpoint(ip, options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return MakeStatus(Code::kUnavailable, "listen on {}:{}: {}", options.address, options.port,
                      ec.message());
  }
  // HTTP/2 for the clients that offer it (kubectl, client-go), HTTP/1.1 for the rest.
  SSL_CTX_set_alpn_select_cb(impl->tls.native_handle(), http2::SelectAlpn, nullptr);
  Impl* raw = impl.get();
  impl->accept_thread = std::thread([raw] { raw->AcceptLoop(); });
  impl->reaper = std::thread([raw] { raw->Reap(); });
  return std::unique_ptr<HttpsServer>(new HttpsServer(std::move(impl)));
}

void HttpsServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  // shutdown(2) wakes a thread blocked in accept(2) or read(2) on Linux.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  if (impl_->gate) impl_->gate->Close();  // Queued requests are refused (429), not waited for.
  std::vector<std::shared_ptr<Tunnel>> tunnels;
  {
    std::lock_guard lock(impl_->mu);
    impl_->deadlines_changed.notify_all();
    for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RD);
    for (const auto& w : impl_->tunnels) {
      if (auto t = w.lock()) tunnels.push_back(std::move(t));
    }
  }
  for (const auto& t : tunnels) {
    std::lock_guard lock(t->mu);
    t->cv.notify_all();
  }
}

HttpsServer::~HttpsServer() {
  Stop();
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  if (impl_->reaper.joinable()) impl_->reaper.join();
  std::unique_lock lock(impl_->mu);
  impl_->idle.wait(lock, [this] { return impl_->active == 0; });
  lock.unlock();
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

uint16_t HttpsServer::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace kiso::apiserver
