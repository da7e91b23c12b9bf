#include "apiserver/http/http_server.h"

#include <fmt/format.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include "api/errors.h"
#include "apiserver/http/channel_pump.h"
#include "apiserver/http/http_connection.h"
#include "apiserver/http/spdy_pump.h"
#include "apiserver/http/tls_records.h"
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

// A body of shared parts goes out this much at a time: four TLS records
// sealed into one send (SealRecords).
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
  bool failed() const { return failed_; }
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

constexpr size_t kMaxHeaderBytes = size_t{64} << 10;

api::ApiError BodyTooLarge(const ConnectionOptions& options) {
  return api::RequestEntityTooLarge(
      fmt::format("the request body is larger than the limit of {} bytes", options.max_body_bytes));
}

bool Mutating(http::verb m) {
  return m != http::verb::get && m != http::verb::head && m != http::verb::options;
}

// The handler's answer to `req`, converted from `in`; a handler that throws
// is a 500, reported.
Response Run(const HttpHandler& handler, const http::request<http::string_body>& in, Request& req) {
  try {
    return handler(req);
  } catch (...) {
    ReportRecovered(fmt::format("{} {}", req.remote, std::string_view(in.target())),
                    CurrentExceptionMessage());
    return StatusAnswer(api::InternalError(std::string(CurrentExceptionMessage())));
  }
}

// The same, converting `in` into `req` first (a request that cannot be
// converted is a 500 too).
Response Run(const HttpHandler& handler, const http::request<http::string_body>& in, Request& req,
             const std::string& remote, const std::optional<PeerCertificate>& peer) {
  try {
    req = Convert(in, remote, peer);
  } catch (...) {
    ReportRecovered(fmt::format("{} {}", remote, std::string_view(in.target())),
                    CurrentExceptionMessage());
    return StatusAnswer(api::InternalError(std::string(CurrentExceptionMessage())));
  }
  return Run(handler, in, req);
}

}  // namespace

Response StatusAnswer(const api::ApiError& e) {
  Response out;
  out.status = e.code;
  out.body = e.ToJson();
  if (e.retry_after_seconds > 0)
    out.headers.emplace_back("retry-after", std::to_string(e.retry_after_seconds));
  return out;
}

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
  std::function<void()> start;   // With kRelaying: starts the tunnel's half.
  std::function<void()> finish;  // If set, called once the tunnel's thread stops running `io`.
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
// first side to end (close, error) ends both. Once a side's thread has
// stopped running its io_context it may destroy it (the connection is over),
// so nothing is posted to a side that has finished: the other side's last
// completions, racing the end, are dropped there rather than posted to a
// destroyed io_context.
class Relay : public std::enable_shared_from_this<Relay> {
 public:
  Relay(SslStream& client, asio::io_context& client_io, SslStream& tunnel,
        asio::io_context& tunnel_io)
      : up_{client, client_io, tunnel, tunnel_io, {}},
        down_{tunnel, tunnel_io, client, client_io, {}},
        client_guard_(client_io.get_executor()),
        tunnel_guard_(tunnel_io.get_executor()) {}

  // On each side's thread: Start before it runs its io_context, Finish once
  // run() has returned there.
  void StartClientSide() { Read(up_); }
  void StartTunnelSide() { Read(down_); }
  void FinishClientSide() { Finish(client_guard_, client_done_); }
  void FinishTunnelSide() { Finish(tunnel_guard_, tunnel_done_); }

 private:
  struct Direction {
    SslStream& from;
    asio::io_context& from_io;
    SslStream& to;
    asio::io_context& to_io;
    std::array<char, 16384> buf;
  };

  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;

  void Finish(Guard& guard, bool& done) {
    guard.reset();  // Ended (or stopped): no handler of this side runs any more.
    std::lock_guard lock(mu_);
    done = true;
  }

  // Posts `f` to the side whose io_context is `io`, unless it has finished.
  template <class F>
  void Post(asio::io_context& io, F&& f) {
    std::lock_guard lock(mu_);
    if (&io == &up_.from_io ? client_done_ : tunnel_done_) return;
    asio::post(io, std::forward<F>(f));
  }

  void Read(Direction& d) {
    d.from.async_read_some(
        asio::buffer(d.buf), asio::bind_executor(d.from_io, [self = shared_from_this(), &d](
                                                                beast::error_code ec, size_t n) {
          if (ec) return self->Close();
          self->Post(d.to_io, [self, &d, n] {
            asio::async_write(
                d.to, asio::buffer(d.buf.data(), n),
                asio::bind_executor(d.to_io, [self, &d](beast::error_code ec, size_t) {
                  if (ec) return self->Close();
                  self->Post(d.from_io, [self, &d] { self->Read(d); });
                }));
          });
        }));
  }

  void Close() {
    if (closed_.exchange(true)) return;
    auto end = [](SslStream& s, Guard& guard) {
      beast::error_code ignored;
      s.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
      s.next_layer().cancel(ignored);
      guard.reset();
    };
    Post(up_.from_io,
         [self = shared_from_this(), end] { end(self->up_.from, self->client_guard_); });
    Post(down_.from_io,
         [self = shared_from_this(), end] { end(self->down_.from, self->tunnel_guard_); });
  }

  Direction up_;    // Client → agent.
  Direction down_;  // Agent → client.
  Guard client_guard_;
  Guard tunnel_guard_;
  std::atomic<bool> closed_{false};
  std::mutex mu_;  // Orders posts to a side against its end.
  bool client_done_ = false;
  bool tunnel_done_ = false;
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

// The head of an answer as `out` says: status, content type and headers.
template <class Body>
void SetHead(http::response<Body>& res, const Response& out, unsigned version, bool keep_alive) {
  res.result(static_cast<http::status>(out.status));
  res.version(version);
  res.set(http::field::content_type, out.content_type);
  for (const auto& [k, v] : out.headers) res.insert(k, v);
  res.keep_alive(keep_alive);
}

// A body of shared parts' next piece: up to kBodyChunk of it read into
// `chunk`, and sealed into `sealed` as TLS records for the bare socket when
// the session allows and `may_seal` (SealRecords: no read may be under way
// on `stream`), else (kNotNow) for the stream to encrypt from `chunk`. Size 0:
// the body is all sent.
struct Piece {
  size_t size = 0;
  Sealed how = Sealed::kNotNow;
};
Piece NextPiece(SslStream& stream, BodyReader& reader, std::string& chunk, std::string& sealed,
                bool may_seal = true) {
  if (chunk.empty()) chunk.resize(kBodyChunk);
  Piece piece;
  piece.size = reader.Read(chunk.data(), chunk.size());
  sealed.clear();
  if (piece.size > 0 && may_seal)
    piece.how = SealRecords(stream.native_handle(), {chunk.data(), piece.size}, sealed);
  return piece;
}

// Writes an answer whose body is `body` and `parts` (not a stream) on this
// thread; false when the client could not take it.
bool WriteAnswer(SslStream& stream, Response& out, unsigned version, bool keep_alive) {
  beast::error_code ec;
  if (!out.parts) {
    http::response<http::string_body> res;
    SetHead(res, out, version, keep_alive);
    res.body() = std::move(out.body);
    res.prepare_payload();
    http::write(stream, res, ec);
    return !ec;
  }
  // A body of shared parts: gathered into one buffer at a time (a TLS record
  // per part would be many small ones), never copied whole.
  http::response<http::empty_body> res;
  SetHead(res, out, version, keep_alive);
  res.content_length(out.BodySize());
  http::response_serializer<http::empty_body> sr{res};
  http::write_header(stream, sr, ec);
  if (ec) return false;
  BodyReader reader(out);
  std::string chunk, sealed;
  while (true) {
    auto [size, how] = NextPiece(stream, reader, chunk, sealed);
    if (size == 0) return true;
    if (how == Sealed::kBroken) return false;
    if (how == Sealed::kDone) {
      asio::write(stream.next_layer(), asio::buffer(sealed), ec);
    } else {
      asio::write(stream, asio::buffer(chunk.data(), size), ec);
    }
    if (ec) return false;
  }
}

// A Status as the response (with Retry-After when it says to retry); the
// connection closes after it unless `keep_alive`.
void WriteError(SslStream& stream, const api::ApiError& e, bool keep_alive = false,
                unsigned version = 11) {
  Response out = StatusAnswer(e);
  WriteAnswer(stream, out, version, keep_alive);
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
  auto finish = std::move(t.finish);
  lock.unlock();
  t.io.restart();
  start();
  t.io.run();
  if (finish) finish();
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
    t.finish = [relay] { relay->FinishTunnelSide(); };
    t.state = Tunnel::State::kRelaying;
    t.cv.notify_all();
  }
  io.restart();
  relay->StartClientSide();
  io.run();
  relay->FinishClientSide();
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
      http::async_write(
          tunnel->stream, call->req,
          asio::bind_executor(tunnel->io, [call, tunnel, fail](beast::error_code ec, size_t) {
            if (ec) return fail(ec);
            http::async_read(
                tunnel->stream, call->buffer, call->parser,
                asio::bind_executor(tunnel->io, [call, fail](beast::error_code ec, size_t) {
                  if (ec) return fail(ec);
                  call->timer.cancel();
                  auto& res = call->parser.get();
                  call->done.set_value(
                      std::pair<int, std::string>(res.result_int(), std::move(res.body())));
                }));
          }));
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
      http::async_read(
          tunnel->stream, call->buffer, parser,
          asio::bind_executor(tunnel->io, [call, fail, read_body](beast::error_code ec, size_t) {
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
          }));
    };
    http::async_write(
        tunnel->stream, call->req,
        asio::bind_executor(
            tunnel->io, [call, tunnel, fail, read_body](beast::error_code ec, size_t) {
              if (ec) {
                fail(fmt::format("broke: {}", ec.message()));
                *read_body = nullptr;
                return;
              }
              http::async_read_header(
                  tunnel->stream, call->buffer, call->parser,
                  asio::bind_executor(tunnel->io, [call, fail, read_body](beast::error_code ec,
                                                                          size_t) {
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
                  }));
            }));
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

namespace {

// Answers that hold the connection for as long as they last.
bool HoldsConnection(const Response& out) {
  return out.relay || out.accept_tunnel || out.channels || out.stream;
}

bool ServeLongLived(asio::io_context& io, SslStream& stream, beast::flat_buffer& buffer,
                    const http::request<http::string_body>& in, const Request& req, Response& out,
                    const ConnectionOptions& options, const std::string& remote, bool keep_alive) {
  beast::error_code ec;
  if (out.relay) {
    RelayThrough(io, stream, buffer, in, *out.relay);
    return false;  // The connection ends with the relay.
  }
  if (out.accept_tunnel) {
    http::response<http::empty_body> res{http::status::switching_protocols, in.version()};
    res.set(http::field::connection, "Upgrade");
    res.set(http::field::upgrade, kTunnelProtocol);
    http::write(stream, res, ec);
    if (ec) return false;
    auto tunnel = std::make_shared<Tunnel>(stream, io);
    if (options.on_tunnel) options.on_tunnel(tunnel);
    out.accept_tunnel(tunnel);
    static const std::atomic<bool> kNever{false};
    WaitAsTunnel(*tunnel, options.stopping ? *options.stopping : kNever);
    return false;
  }
  if (out.channels && out.channels->dial && !websocket::is_upgrade(in)) {
    // Port-forward over SPDY on the connection itself (kubectl's fallback).
    http::response<http::empty_body> res{http::status::switching_protocols, in.version()};
    res.set(http::field::connection, "Upgrade");
    res.set(http::field::upgrade, "SPDY/3.1");
    res.set("X-Stream-Protocol-Version", "portforward.k8s.io");
    http::write(stream, res, ec);
    if (ec) return false;
    PumpSpdy(io, stream, buffer, *out.channels);
    return false;  // The connection ends with the session.
  }
  if (out.channels && !websocket::is_upgrade(in)) {
    // exec or attach over SPDY on the connection itself (clients without WebSockets).
    http::response<http::empty_body> res{http::status::switching_protocols, in.version()};
    res.set(http::field::connection, "Upgrade");
    res.set(http::field::upgrade, "SPDY/3.1");
    res.set("X-Stream-Protocol-Version", out.websocket_protocol);
    http::write(stream, res, ec);
    if (ec) return false;
    CommandStreams expected;
    expected.in = req.QueryBool("stdin");
    expected.out = req.QueryBool("stdout");
    expected.resize = req.QueryBool("tty");
    expected.err = req.QueryBool("stderr") && !expected.resize;
    PumpSpdyCommand(io, stream, buffer, *out.channels, expected);
    return false;  // The connection ends with the session.
  }
  if (out.channels) {
    WebSocketStream ws(stream);
    std::string protocol = out.websocket_protocol;
    ws.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& r) {
      r.set(http::field::sec_websocket_protocol, protocol);
    }));
    ws.binary(true);
    ws.accept(in, ec);
    if (ec) return false;
    // Port-forward's SPDY inside the WebSocket, or the channel protocol.
    if (out.channels->dial) {
      PumpSpdy(io, ws, *out.channels);
      return false;
    }
    PumpChannels(io, ws, *out.channels, protocol == "v5.channel.k8s.io");
    return false;  // The connection ends with the session.
  }
  // A stream written as it is read (chunked).
  http::response<http::empty_body> res;
  SetHead(res, out, in.version(), keep_alive);
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  http::write_header(stream, sr, ec);
  if (ec) return false;
  static const std::atomic<bool> kNever{false};
  ChunkWriter writer(stream, options.stopping ? *options.stopping : kNever);
  try {
    out.stream(writer);
  } catch (...) {
    ReportRecovered(fmt::format("{} {}: a stream", remote, std::string_view(in.target())),
                    CurrentExceptionMessage());
    return false;  // The connection ends without the last chunk: the client sees it broken.
  }
  writer.Finish();
  return keep_alive && !writer.failed();
}

}  // namespace

void ServeConnection(asio::io_context& io, SslStream& stream, beast::flat_buffer& buffer,
                     const std::string& remote, const HttpHandler& handler,
                     const ConnectionOptions& options) {
  auto stopping = [&] { return options.stopping && options.stopping->load(); };
  ThreadPriority priority;
  while (!stopping()) {
    if (options.on_idle) options.on_idle();
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    parser.header_limit(kMaxHeaderBytes);
    beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::body_limit) {
      WriteError(stream, BodyTooLarge(options));
      return;
    }
    if (ec) return;
    if (options.on_request) options.on_request();
    const auto& in = parser.get();
    bool keep_alive = in.keep_alive() && !stopping();
    std::optional<FairGate::Ticket> seat;  // Held until the response is written.
    bool background = false;
    if (options.gate && !LongRunning(in)) {
      bool mutating = Mutating(in.method());
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
    Request req;
    Response out = Run(handler, in, req, remote, options.peer);
    if (out.events) {
      out.stream = [events = std::move(out.events)](StreamWriter& w) { PumpEvents(*events, w); };
    }
    if (HoldsConnection(out)) {
      if (!ServeLongLived(io, stream, buffer, in, req, out, options, remote, keep_alive)) return;
      continue;
    }
    if (!WriteAnswer(stream, out, in.version(), keep_alive) || !keep_alive) return;
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
  asio::io_context io{1};  // The acceptor's.
  ssl::context tls{ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};

  // Every connection's socket, TLS and HTTP/1.1 reads and writes, as
  // completion handlers run by `io_threads`: no thread per connection.
  asio::io_context connections{static_cast<int>(IoThreads())};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> connections_work;
  std::vector<std::thread> io_threads;

  std::unique_ptr<FairGate> gate;
  std::mutex mu;
  std::condition_variable idle;
  std::map<std::string, int> per_client;       // Open connections by client address.
  std::set<int> open_fds;                      // Sockets of live connections, shut down on Stop.
  std::vector<std::weak_ptr<Tunnel>> tunnels;  // Woken on Stop.
  int active = 0;
  // Connections waiting for a request (or a TLS handshake), by socket: when
  // each is cut (slow clients, idle keep-alive connections).
  std::map<int, std::chrono::steady_clock::time_point> deadlines;
  std::condition_variable deadlines_changed;
  std::thread reaper;
  // The handlers of requests (HTTP/1.1 and HTTP/2): those that pass the fair
  // gate on `gated_workers`, where each may wait for its seat (at most the
  // gate's in-flight limits of them), the rest (watches, upgrades) here.
  WorkerPool workers;
  std::optional<WorkerPool> gated_workers;

  static unsigned IoThreads() { return std::clamp(std::thread::hardware_concurrency(), 2U, 8U); }

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
  // the read under way ends, and with it the connection.
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

  void AcceptLoop();
};

namespace {

// Once the server stops, how long its connections get to end on their own (a
// watch's last chunk, a TLS close, which is given two seconds) before those
// left are cut.
constexpr auto kStopGrace = std::chrono::seconds(3);

// A watch's chunk: as much as the cache has ready, up to this.
constexpr size_t kEventChunk = size_t{256} << 10;
// Chunks a watch sends in one go (SendChunkNow) before it lets the
// connections that share its thread have a turn.
constexpr int kChunksSentNowAtOnce = 8;

// One client connection, served by completion handlers on the server's
// io_context (a strand keeps its handlers one at a time): the TLS handshake,
// each HTTP/1.1 request read and its answer written, a watch pumped as the
// watch cache wakes it. Requests are handled on the worker pool (a handler
// may block: the store, the fair gate). Two kinds of connection still get a
// thread of their own, with its own io_context for their completions: an
// HTTP/2 connection (its frames), and an answer that holds the connection
// for as long as it lasts (upgrades, tunnels, relays, logs that follow).
class Connection : public std::enable_shared_from_this<Connection> {
 private:
  // A completion handler that keeps the connection and runs on its strand.
  template <class F>
  auto Bind(F f) {
    return asio::bind_executor(strand_, [self = shared_from_this(), f](auto&&... args) {
      f(*self, std::forward<decltype(args)>(args)...);
    });
  }
  template <class F>
  void Post(F f) {
    asio::post(strand_, [self = shared_from_this(), f = std::move(f)]() mutable { f(*self); });
  }

 public:
  Connection(HttpsServer::Impl& server, tcp::socket socket, std::string client)
      : counted_(server),
        server_(server),
        client_(std::move(client)),
        strand_(asio::make_strand(server.connections)),
        stream_(std::move(socket), server.tls),
        timer_(strand_) {
    fd_ = stream_.next_layer().native_handle();
    beast::error_code ec;
    auto endpoint = stream_.next_layer().remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ~Connection() {
    {
      std::lock_guard lock(server_.mu);
      server_.open_fds.erase(fd_);
      server_.deadlines.erase(fd_);
      if (--server_.per_client[client_] == 0) server_.per_client.erase(client_);
    }
    beast::error_code ec;
    stream_.next_layer().close(ec);
  }

  void Start() {
    server_.SetDeadline(fd_, server_.options.idle_timeout);
    stream_.async_handshake(ssl::stream_base::server,
                            Bind([](Connection& c, beast::error_code ec) { c.OnHandshake(ec); }));
  }

 private:
  // Counts the connection among the server's live ones until the very last:
  // destroyed after every other member.
  struct Counted {
    explicit Counted(HttpsServer::Impl& s) : server(s) {
      std::lock_guard lock(server.mu);
      ++server.active;
    }
    ~Counted() {
      std::lock_guard lock(server.mu);
      if (--server.active == 0) server.idle.notify_all();
    }
    Counted(const Counted&) = delete;
    Counted& operator=(const Counted&) = delete;
    HttpsServer::Impl& server;
  };

  bool Stopping() const { return server_.stopping.load(); }

  void OnHandshake(beast::error_code ec) {
    if (ec) return Close();
    options_.max_body_bytes = server_.options.max_body_bytes;
    options_.stopping = &server_.stopping;
    options_.on_tunnel = [s = &server_](const std::shared_ptr<Tunnel>& t) {
      std::lock_guard lock(s->mu);
      std::erase_if(s->tunnels, [](const auto& w) { return w.expired(); });
      s->tunnels.push_back(t);
    };
    options_.gate = server_.gate.get();
    options_.gated_workers = &*server_.gated_workers;
    options_.quick = &server_.options.quick;
    options_.flow = client_;
    options_.peer = PeerOf(stream_);
    options_.idle_timeout = server_.options.idle_timeout;
    options_.max_streams = server_.options.max_streams;
    const unsigned char* alpn = nullptr;
    unsigned int alpn_size = 0;
    SSL_get0_alpn_selected(stream_.native_handle(), &alpn, &alpn_size);
    if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_size) == "h2") {
      server_.SetDeadline(fd_, {});  // HTTP/2 keeps its own.
      return OnThread([](Connection& c, asio::io_context& io) {
        ServeHttp2(io, c.stream_, c.remote_, c.server_.handler, c.options_, c.server_.workers);
        return false;
      });
    }
    ReadRequest();
  }

  // Runs `serve` on a thread of its own with its own io_context (every
  // completion of what it starts is bound there); the connection goes on
  // reading requests when it returns true, and ends otherwise.
  void OnThread(std::function<bool(Connection&, asio::io_context&)> serve) {
    try {
      std::thread([self = shared_from_this(), serve = std::move(serve)]() mutable {
        bool next = false;
        {
          asio::io_context io(1);
          next = serve(*self, io);
        }
        serve = nullptr;
        self->Post([next](Connection& c) {
          c.answering_ = false;
          if (next && !c.Stopping()) return c.ReadRequest();
          c.Close(true);
        });
        self.reset();  // Last: the connection (and with the last one, the server) may end here.
      }).detach();
    } catch (const std::system_error& e) {
      spdlog::warn("{}: no thread for the connection: {}", remote_, e.what());
      Close();
    }
  }

  // Reads the next request. While an answer is under way (a watch), the
  // read also tells when the client leaves; a request that comes meanwhile
  // waits for the answer to end.
  void ReadRequest() {
    if (closing_ || reading_) return;
    if (Stopping() && !answering_) return Close(true);
    if (!answering_) server_.SetDeadline(fd_, server_.options.idle_timeout);
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->header_limit(kMaxHeaderBytes);
    reading_ = true;
    http::async_read(stream_, buffer_, *parser_,
                     Bind([](Connection& c, beast::error_code ec, size_t) { c.OnRead(ec); }));
  }

  void OnRead(beast::error_code ec) {
    reading_ = false;
    if (closing_) return;
    if (answering_) {
      if (!ec) {
        next_waiting_ = true;
        return;
      }
      // The client left, or the server is stopping (its read side shut).
      left_ = true;
      if (Stopping()) return Pump();  // A watch ends cleanly, with its last chunk.
      return Close();
    }
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      answering_ = true;
      return Send(StatusAnswer(BodyTooLarge(options_)));
    }
    if (ec) return Close();
    Dispatch();
  }

  // Hands the request read to a worker.
  void Dispatch() {
    next_waiting_ = false;
    answering_ = true;
    server_.SetDeadline(fd_, {});
    auto in = std::make_shared<http::request<http::string_body>>(parser_->release());
    parser_.reset();
    keep_alive_ = in->keep_alive() && !Stopping();
    version_ = in->version();
    const bool gated = options_.gate && !LongRunning(*in);
    std::shared_ptr<Request> req;  // Converted already, when the quick check needed it.
    if (gated && AnsweredAtOnce(in, req)) return;
    WorkerPool& pool = gated ? *options_.gated_workers : server_.workers;
    pool.Run([self = shared_from_this(), in, req, gated] { self->Handle(in, req, gated); });
  }

  // On the strand: a quick request (HttpsServerOptions::quick) whose client
  // has a seat free now is handled here and its answer sent; false for any
  // other, with `req` the request converted for the check (or null).
  bool AnsweredAtOnce(const std::shared_ptr<http::request<http::string_body>>& in,
                      std::shared_ptr<Request>& req) {
    if (options_.quick == nullptr || !*options_.quick || in->method() != http::verb::get)
      return false;
    try {
      req = std::make_shared<Request>(Convert(*in, remote_, options_.peer));
    } catch (...) {
      return false;  // The worker's Run converts it again and reports it.
    }
    if (!(*options_.quick)(*req)) return false;
    auto seat = options_.gate->TryEnter(options_.flow, /*mutating=*/false);
    if (!seat) return false;
    Answer(in, req, std::make_shared<Response>(Run(server_.handler, *in, *req)), std::move(seat));
    return true;
  }

  // On a worker: the fair gate, the handler, then the answer back to the strand.
  // `gated`: the request passes the fair gate (it is not long-running);
  // `converted`: `in` as the handler takes it, when it was converted already.
  void Handle(const std::shared_ptr<http::request<http::string_body>>& in,
              std::shared_ptr<Request> converted, bool gated) {
    std::optional<FairGate::Ticket> seat;  // Held until the answer is written.
    ThreadPriority priority;
    if (gated) {
      bool mutating = Mutating(in->method());
      seat = options_.gate->Enter(options_.flow, mutating);
      if (!seat) {
        // 429, as kube-apiserver's max-in-flight filter answers.
        return Post([](Connection& c) { c.Send(StatusAnswer(api::TooManyRequests())); });
      }
      priority.Set(seat->crowded() && !mutating);
    }
    std::shared_ptr<Request> req;
    std::shared_ptr<Response> out;
    if (converted) {
      req = std::move(converted);
      out = std::make_shared<Response>(Run(server_.handler, *in, *req));
    } else {
      req = std::make_shared<Request>();
      out = std::make_shared<Response>(Run(server_.handler, *in, *req, remote_, options_.peer));
    }
    if (seat && seat->crowded() && !HoldsConnection(*out) && !out->events) {
      // A crowded flow's answer is written here too, at the priority it was
      // made at: its encryption takes only the cores no other request wants.
      // The strand has nothing of this connection's to run meanwhile.
      bool sent = WriteAnswer(stream_, *out, version_, keep_alive_);
      priority.Set(false);
      seat.reset();
      return Post([sent](Connection& c) { sent ? c.Answered() : c.Close(); });
    }
    priority.Set(false);
    Post([in, req, out, seat = std::make_shared<decltype(seat)>(std::move(seat))](Connection& c) {
      c.Answer(in, req, out, std::move(*seat));
    });
  }

  // On the strand: the handler's answer `out` to `in` (given as `req`), sent
  // holding `seat` until it is written.
  void Answer(const std::shared_ptr<http::request<http::string_body>>& in,
              const std::shared_ptr<Request>& req, const std::shared_ptr<Response>& out,
              std::optional<FairGate::Ticket> seat) {
    if (HoldsConnection(*out)) {
      // The strand runs nothing of this connection's until the thread is done.
      return OnThread([in, req, out, seat = std::make_shared<decltype(seat)>(std::move(seat))](
                          Connection& c, asio::io_context& io) {
        bool next = ServeLongLived(io, c.stream_, c.buffer_, *in, *req, *out, c.options_, c.remote_,
                                   c.keep_alive_);
        seat->reset();
        return next;
      });
    }
    seat_ = std::move(seat);
    Send(std::move(*out));
  }

  // On the strand: the answer's head, then its body or its events.
  void Send(Response out) {
    if (closing_) return;
    if (out.events) {
      events_ = std::move(out.events);
      auto head = std::make_shared<http::response<http::empty_body>>();
      SetHead(*head, out, version_, keep_alive_);
      head->chunked(true);
      auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*head);
      writing_ = true;
      http::async_write_header(stream_, *sr,
                               Bind([head, sr](Connection& c, beast::error_code ec, size_t) {
                                 c.writing_ = false;
                                 if (ec) return c.Close();
                                 std::weak_ptr<Connection> weak = c.shared_from_this();
                                 c.events_->Start([weak] {
                                   if (auto c = weak.lock()) c->Wake();
                                 });
                                 c.ReadRequest();  // Tells when the client leaves.
                                 c.Pump();
                               }));
      return;
    }
    if (out.parts) {
      auto head = std::make_shared<http::response<http::empty_body>>();
      SetHead(*head, out, version_, keep_alive_);
      head->content_length(out.BodySize());
      auto sr = std::make_shared<http::response_serializer<http::empty_body>>(*head);
      body_.emplace(out);
      writing_ = true;
      http::async_write_header(stream_, *sr,
                               Bind([head, sr](Connection& c, beast::error_code ec, size_t) {
                                 c.writing_ = false;
                                 if (ec) return c.Close();
                                 c.WriteParts();
                               }));
      return;
    }
    auto res = std::make_shared<http::response<http::string_body>>();
    SetHead(*res, out, version_, keep_alive_);
    res->body() = std::move(out.body);
    res->prepare_payload();
    writing_ = true;
    http::async_write(stream_, *res, Bind([res](Connection& c, beast::error_code ec, size_t) {
                        c.writing_ = false;
                        if (ec) return c.Close();
                        c.Answered();
                      }));
  }

  // A body of shared parts, a piece at a time (NextPiece). No read is under
  // way while a request that is not a watch is answered (checked all the same).
  void WriteParts() {
    auto [size, how] = NextPiece(stream_, *body_, chunk_, sealed_, /*may_seal=*/!reading_);
    if (size == 0 || how == Sealed::kBroken) {
      body_.reset();
      chunk_ = std::string();
      sealed_ = std::string();
      return size == 0 ? Answered() : Close();
    }
    writing_ = true;
    auto next = Bind([](Connection& c, beast::error_code ec, size_t) {
      c.writing_ = false;
      if (ec) return c.Close();
      c.WriteParts();
    });
    if (how == Sealed::kDone) {
      asio::async_write(stream_.next_layer(), asio::buffer(sealed_), std::move(next));
    } else {
      asio::async_write(stream_, asio::buffer(chunk_.data(), size), std::move(next));
    }
  }

  // The answer is out: the next request, or the end.
  void Answered() {
    answering_ = false;
    seat_.reset();
    if (left_) return Close();
    if (!keep_alive_ || Stopping()) return Close(true);
    if (next_waiting_) return Dispatch();
    if (reading_) {
      server_.SetDeadline(fd_, server_.options.idle_timeout);
      return;
    }
    ReadRequest();
  }

  // From any thread: the watch has something (or ended). One post at a time.
  void Wake() {
    if (wake_posted_.exchange(true)) return;
    Post([](Connection& c) {
      c.wake_posted_ = false;
      c.Pump();
    });
  }

  // On the strand: writes what the watch has ready, one chunk at a time.
  void Pump() {
    if (!events_ || writing_ || closing_) return;
    if (left_ || Stopping()) return EndWatch();
    for (int sent_now = 0;;) {
      EventStream::Pulled p = events_->Pull(kEventChunk);
      if (!p.data.empty()) {
        switch (SendChunkNow(p.data)) {
          case Sent::kAll:
            if (p.done) return EndWatch();
            if (++sent_now == kChunksSentNowAtOnce) {  // The pool's other connections' turn.
              return Post([](Connection& c) { c.Pump(); });
            }
            continue;
          case Sent::kPart:
            if (p.done) done_after_write_ = true;
            return;
          case Sent::kFailed:
            return Close();
          case Sent::kNotNow:
            break;
        }
        chunk_ = std::move(p.data);
        writing_ = true;
        asio::async_write(stream_, http::make_chunk(asio::buffer(chunk_)),
                          Bind([done = p.done](Connection& c, beast::error_code ec, size_t) {
                            c.writing_ = false;
                            if (ec) return c.Close();
                            if (done) return c.EndWatch();
                            c.Pump();
                          }));
        return;
      }
      if (p.done) return EndWatch();
      if (p.next == std::chrono::steady_clock::time_point::min()) continue;
      if (pull_at_.Moves(p.next)) {
        timer_.expires_at(p.next);
        timer_.async_wait(Bind([](Connection& c, beast::error_code ec) {
          if (ec) return;  // Cancelled: re-armed, or the watch is over.
          c.pull_at_.Clear();
          c.Pump();
        }));
      }
      return;
    }
  }

  void CancelPull() {
    timer_.cancel();
    pull_at_.Clear();
  }

  enum class Sent { kAll, kPart, kFailed, kNotNow };
  // A watch's chunk, sealed here as TLS records (SealRecords) and sent with
  // one send(2) where the socket takes it: no completion to wait for, where
  // Asio's stream would copy the records through its buffer pair and
  // complete each write through the strand. kPart: the socket took some, the
  // rest is being written (writing_), then Pump goes on. kNotNow: nothing
  // done; write `data` through the stream. Only on TLS 1.3, whose reads
  // (the watch's pending one, which tells when the client leaves) never
  // write: a TLS 1.2 peer's renegotiation would have the stream write
  // handshake records while this connection's own records were on their way.
  Sent SendChunkNow(std::string_view data) {
    SSL* ssl = stream_.native_handle();
    if (SSL_version(ssl) != TLS1_3_VERSION) return Sent::kNotNow;
    framed_.clear();
    fmt::format_to(std::back_inserter(framed_), "{:x}\r\n", data.size());
    framed_.append(data);
    framed_.append("\r\n");
    sealed_.clear();
    switch (SealRecords(ssl, framed_, sealed_)) {
      case Sealed::kNotNow:
        return Sent::kNotNow;
      case Sealed::kBroken:
        return Sent::kFailed;
      case Sealed::kDone:
        break;
    }
    size_t sent = 0;
    while (sent < sealed_.size()) {
      ssize_t n =
          ::send(fd_, sealed_.data() + sent, sealed_.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        return Sent::kFailed;
      }
    }
    if (sent == sealed_.size()) {
      TrimChunkBuffers();
      return Sent::kAll;
    }
    writing_ = true;
    asio::async_write(stream_.next_layer(),
                      asio::buffer(sealed_.data() + sent, sealed_.size() - sent),
                      Bind([](Connection& c, beast::error_code ec, size_t) {
                        c.writing_ = false;
                        if (ec) return c.Close();
                        c.TrimChunkBuffers();
                        if (std::exchange(c.done_after_write_, false)) return c.EndWatch();
                        c.Pump();
                      }));
    return Sent::kPart;
  }
  // A watch that sent a large chunk (its initial state) does not keep room
  // for one while it waits for its next event, mostly a small one.
  void TrimChunkBuffers() {
    constexpr size_t kKeep = size_t{16} << 10;
    if (framed_.capacity() > kKeep) std::string().swap(framed_);
    if (sealed_.capacity() > kKeep) std::string().swap(sealed_);
  }

  // The watch is over (its time is up, or the server stops): the last chunk.
  void EndWatch() {
    if (events_) events_->Cancel();
    events_.reset();
    CancelPull();
    chunk_ = std::string();
    static constexpr std::string_view kLastChunk = "0\r\n\r\n";
    writing_ = true;
    asio::async_write(stream_, asio::buffer(kLastChunk.data(), kLastChunk.size()),
                      Bind([](Connection& c, beast::error_code ec, size_t) {
                        c.writing_ = false;
                        if (ec) return c.Close();
                        c.Answered();
                      }));
  }

  // Ends the connection. `polite`: the connection is sound (an answer said
  // it ends, the server stops), so the client gets a TLS close, given two
  // seconds at most; otherwise (the client left, a read or write failed, or
  // something is still under way) the socket is shut, which ends whatever
  // is under way. The last handler to finish frees the connection.
  void Close(bool polite = false) {
    if (closing_) return;
    closing_ = true;
    if (events_) events_->Cancel();
    events_.reset();
    CancelPull();
    seat_.reset();
    beast::error_code ec;
    if (!polite || reading_ || writing_) {
      stream_.next_layer().shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    timer_.expires_after(std::chrono::seconds(2));
    timer_.async_wait(Bind([](Connection& c, beast::error_code ec) {
      beast::error_code ignored;
      if (!ec) c.stream_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    }));
    stream_.async_shutdown(Bind([](Connection& c, beast::error_code) { c.timer_.cancel(); }));
  }

  Counted counted_;  // First: destroyed last.
  HttpsServer::Impl& server_;
  std::string client_;
  std::string remote_;
  int fd_ = -1;
  asio::strand<asio::io_context::executor_type> strand_;
  SslStream stream_;
  asio::steady_timer timer_;  // A watch's next pull.
  PullTime pull_at_;          // When timer_ is set to pull next.
  ConnectionOptions options_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool reading_ = false;
  bool writing_ = false;
  bool answering_ = false;     // From a request's dispatch until its answer is out.
  bool next_waiting_ = false;  // A request came while answering.
  bool left_ = false;          // The read side ended while answering.
  bool closing_ = false;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  std::optional<FairGate::Ticket> seat_;
  std::optional<BodyReader> body_;
  std::string chunk_;
  std::string sealed_;  // chunk_'s records (WriteParts), or a watch chunk's (SendChunkNow).
  std::string framed_;  // A watch chunk framed for chunked transfer (SendChunkNow).
  bool done_after_write_ = false;  // The watch's last events are in the write under way.
  std::shared_ptr<EventStream> events_;
  std::atomic<bool> wake_posted_{false};
};

}  // namespace

void HttpsServer::Impl::AcceptLoop() {
  while (!stopping) {
    tcp::socket socket(connections);
    beast::error_code ec;
    acceptor.accept(socket, ec);
    if (ec) {
      if (stopping) break;
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto peer = socket.remote_endpoint(ec);
    std::string client = ec ? "" : peer.address().to_string();
    {
      std::lock_guard lock(mu);
      if (stopping) break;
      if (per_client[client] >= options.max_connections_per_client) {
        // One client may not hold every connection: closed before any TLS work.
        socket.close(ec);
        continue;
      }
      ++per_client[client];
      open_fds.insert(socket.native_handle());
    }
    std::make_shared<Connection>(*this, std::move(socket), client)->Start();
  }
}

HttpsServer::HttpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpsServer>> HttpsServer::Start(const HttpsServerOptions& options,
                                                        Handler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
  impl->gate = std::make_unique<FairGate>(options.fairness);
  impl->gated_workers.emplace(options.fairness.max_inflight +
                              options.fairness.max_mutating_inflight);
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
  impl->connections_work.emplace(impl->connections.get_executor());
  for (unsigned i = 0; i < Impl::IoThreads(); ++i) {
    impl->io_threads.emplace_back([raw] { raw->connections.run(); });
  }
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
  auto idle = [this] { return impl_->active == 0; };
  if (!impl_->idle.wait_for(lock, kStopGrace, idle)) {
    // What is left waits on its client: a write the client makes no room
    // for (it reads nothing, or its packets are lost) would wait for as long
    // as TCP retries. Cut, each ends at once.
    spdlog::info("stopping: {} connection(s) still waiting on their clients after {} s, cut",
                 impl_->open_fds.size(), kStopGrace.count());
    for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
    impl_->idle.wait(lock, idle);
  }
  lock.unlock();
  impl_->connections_work.reset();
  for (auto& t : impl_->io_threads) t.join();
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

uint16_t HttpsServer::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace kiso::apiserver
