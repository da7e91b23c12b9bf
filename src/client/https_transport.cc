#include "client/https_transport.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/url.hpp>
#include <functional>
#include <mutex>
#include <vector>

#include "api/errors.h"
#include "apiserver/http/http_connection.h"

namespace kiso::client {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Connection {
  asio::io_context io;
  ssl::stream<tcp::socket> stream;
  beast::flat_buffer buffer;
  std::string url;   // The server's.
  std::string host;  // The server's, for the Host field.
  explicit Connection(ssl::context& tls) : stream(io, tls) {}
};

// One API server: https://host:port.
struct Target {
  std::string url;
  std::string host;
  int port = 443;
};

// The servers at `urls` (each https://HOST[:PORT]), in order, once each.
Result<std::vector<Target>> TargetsOf(const std::vector<std::string>& urls) {
  std::vector<Target> targets;
  for (const auto& url : urls) {
    KISO_ASSIGN_OR_RETURN(auto at, AtServer({}, url));
    if (std::none_of(targets.begin(), targets.end(),
                     [&](const Target& t) { return t.url == at.server; }))
      targets.push_back({at.server, at.host, at.port});
  }
  return targets;
}

// Each of several servers gets this long to connect and shake hands before
// the next is tried (a refused connection fails at once; a silent address not).
constexpr std::chrono::seconds kPerServerDial{5};

apiserver::Response Unavailable(const std::string& what) {
  apiserver::Response r;
  r.status = 503;
  r.body = api::ServiceUnavailable(what).ToJson();
  return r;
}

using Clock = std::chrono::steady_clock;

// A server that goes silent (its machine gone, its link cut: no reset comes)
// must not hold a request for the kernel's quarter of an hour: keepalive
// probes after 10 s of quiet, 5 s apart, and the connection given up once
// 20 s pass with sent data or a probe unacknowledged (TCP_USER_TIMEOUT, which
// then also ends the probing). The request then goes to the next server. A
// live server's kernel acknowledges both at once, however long its answer
// takes (client-go's HTTP/2 health check plays this part).
void GuardAgainstSilence(tcp::socket& socket) {
  const int fd = socket.native_handle();
  const int on = 1, idle = 10, interval = 5, user_timeout_ms = 20'000;
  (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
}

// Runs the asynchronous operation `start` begins on `c`'s own io_context
// until it completes or `deadline` passes (the socket is then closed, and
// the answer is timed_out).
template <class Start>
beast::error_code Await(Connection& c, Clock::time_point deadline, Start&& start) {
  beast::error_code result;
  bool done = false;
  std::forward<Start>(start)([&](beast::error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  c.io.restart();
  bool expired = false;
  // NOLINTNEXTLINE(bugprone-infinite-loop): the completion handler sets `done`.
  while (!done) {
    if (deadline == Clock::time_point::max()) {
      c.io.run_one();
    } else if (c.io.run_one_until(deadline) == 0 && !done) {
      expired = true;
      beast::error_code ignored;
      c.stream.next_layer().close(ignored);  // The operation completes, aborted.
      c.io.restart();
      while (!done) c.io.run_one();  // NOLINT(bugprone-infinite-loop): as above.
    }
  }
  return expired ? beast::error_code(asio::error::timed_out) : result;
}

// Waits until `fd` has something to read, `wake` (unless -1) is signalled or
// `deadline` passes (timed_out).
beast::error_code AwaitReadable(int fd, int wake, Clock::time_point deadline) {
  int wait_ms = -1;
  if (deadline != Clock::time_point::max()) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    wait_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
  }
  pollfd ready[2] = {{fd, POLLIN, 0}, {wake, POLLIN, 0}};
  int n = ::poll(ready, wake >= 0 ? 2 : 1, wait_ms);
  if (n == 0) return asio::error::timed_out;
  if (n < 0 && errno != EINTR) return beast::error_code(errno, boost::system::system_category());
  return {};
}

// Reads a whole answer into `parser` by `deadline` without the event loop:
// synchronous reads on the socket made non-blocking, and poll() with the time
// left whenever the socket has nothing yet. Through Await each TLS record
// (16 KB) cost several handlers and an epoll_wait: a LIST of 10,000 pods
// (26 MB) took 148 ms of this process's CPU, against the 32 ms the server
// spent sending it. (What the TLS engine may write while reading, an answer to
// a key update, is a few bytes into a send buffer the request has left empty.)
template <class Parser>
beast::error_code ReadNow(Connection& c, Clock::time_point deadline, Parser& parser) {
  tcp::socket& socket = c.stream.next_layer();
  beast::error_code ec;
  socket.non_blocking(true, ec);
  while (!ec && !parser.is_done()) {
    http::read_some(c.stream, c.buffer, parser, ec);
    if (ec != asio::error::would_block) continue;
    ec = AwaitReadable(socket.native_handle(), -1, deadline);
  }
  beast::error_code ignored;
  socket.non_blocking(false, ignored);
  return ec;
}

// A streamed answer's chunks, read as ReadNow reads (the socket made
// non-blocking, poll() while it has nothing) on the reader's thread, with an
// eventfd beside the socket that Cancel signals.
class HttpsBody : public StreamedBody {
 public:
  HttpsBody(std::unique_ptr<Connection> c,
            std::shared_ptr<http::response_parser<http::empty_body>> parser)
      : c_(std::move(c)),
        parser_(std::move(parser)),
        wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    beast::error_code ignored;
    c_->stream.next_layer().non_blocking(true, ignored);
    // Once, before the body is read (Beast's rule); the parser keeps a reference.
    on_chunk_ = [this](std::uint64_t, std::string_view data, beast::error_code&) {
      got_.append(data);
      return data.size();
    };
    parser_->on_chunk_body(on_chunk_);
  }
  ~HttpsBody() override {
    if (wake_ >= 0) close(wake_);
  }
  HttpsBody(const HttpsBody&) = delete;
  HttpsBody& operator=(const HttpsBody&) = delete;

  bool Read(std::string& out, Clock::time_point deadline) override {
    while (!ended_ && got_.empty()) {
      if (cancelled_) {
        ended_ = true;
        break;
      }
      beast::error_code ec;
      http::read_some(c_->stream, c_->buffer, *parser_, ec);
      if (!ec) {
        ended_ = parser_->is_done();
        continue;
      }
      if (ec != asio::error::would_block) {
        ended_ = true;  // Closed or failed: the stream is over.
        break;
      }
      ec = AwaitReadable(c_->stream.next_layer().native_handle(), wake_, deadline);
      if (ec == asio::error::timed_out) break;  // The deadline: nothing yet.
      if (ec) ended_ = true;
    }
    out += got_;
    got_.clear();
    return !ended_;
  }

  void Cancel() override {
    cancelled_ = true;
    const uint64_t one = 1;
    if (wake_ >= 0) (void)!write(wake_, &one, sizeof one);
  }

 private:
  std::unique_ptr<Connection> c_;
  std::shared_ptr<http::response_parser<http::empty_body>> parser_;
  std::function<std::size_t(std::uint64_t, std::string_view, beast::error_code&)> on_chunk_;
  std::string got_;  // Chunks' bytes read and not yet handed out.
  // Readable once cancelled. Without one (none to be had), a Read under way
  // sees Cancel only at its deadline.
  const int wake_;
  std::atomic<bool> cancelled_{false};  // Set from any thread.
  bool ended_ = false;                  // The reader's thread only.
};

std::string TargetOf(const apiserver::Request& req) {
  boost::urls::url u;
  u.set_path(req.path);
  for (const auto& [k, v] : req.query) u.params().append({k, v});
  return std::string(u.buffer());
}

}  // namespace

struct HttpsTransport::Impl {
  KubeConfig config;
  TransportOptions options;
  ssl::context tls{ssl::context::tls_client};
  std::mutex mu;
  std::vector<std::unique_ptr<Connection>> idle;
  std::vector<Target> servers;  // Guarded by mu; the kubeconfig's server first.
  size_t current = 0;           // Guarded by mu: the server that answered last.

  Clock::time_point Deadline() const {
    return options.timeout.count() > 0 ? Clock::now() + options.timeout : Clock::time_point::max();
  }

  std::string CurrentUrl() {
    std::lock_guard lock(mu);
    return servers.empty() ? config.server : servers[current % servers.size()].url;
  }

  // A kept connection (unless `fresh`), or a new one: to the server in use,
  // else to the next that answers.
  Result<std::unique_ptr<Connection>> Take(Clock::time_point deadline, bool fresh) {
    std::vector<Target> order;
    size_t first = 0;
    {
      std::lock_guard lock(mu);
      if (!fresh && !idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
      order = servers;
      first = current;
    }
    std::string errors;
    for (size_t i = 0; i < order.size(); ++i) {
      const size_t at = (first + i) % order.size();
      auto budget = order.size() > 1 ? std::min(deadline, Clock::now() + kPerServerDial) : deadline;
      auto c = Dial(order[at], budget);
      if (c.ok()) {
        std::lock_guard lock(mu);
        if (current != at && at < servers.size() && servers[at].url == order[at].url) {
          if (!errors.empty()) spdlog::info("API server {}: in use ({})", order[at].url, errors);
          current = at;
        }
        return c;
      }
      errors += (errors.empty() ? "" : "; ") + std::string(c.status().message());
    }
    return Status(Code::kUnavailable, errors);
  }

  Result<std::unique_ptr<Connection>> Dial(const Target& target, Clock::time_point deadline) {
    auto c = std::make_unique<Connection>(tls);
    c->url = target.url;
    c->host = target.host;
    beast::error_code ec;
    tcp::resolver resolver(c->io);
    auto endpoints = resolver.resolve(target.host, std::to_string(target.port), ec);
    auto& socket = c->stream.next_layer();
    if (!ec && !options.bind_address.empty()) {
      // From a chosen local address: bound before connecting to the first endpoint.
      auto remote = endpoints.begin()->endpoint();
      auto local = asio::ip::make_address(options.bind_address, ec);
      if (!ec) socket.open(remote.protocol(), ec);
      if (!ec) socket.bind(tcp::endpoint(local, 0), ec);
      if (!ec)
        ec = Await(*c, deadline, [&](auto done) { socket.async_connect(remote, std::move(done)); });
    } else if (!ec) {
      ec = Await(*c, deadline,
                 [&](auto done) { asio::async_connect(socket, endpoints, std::move(done)); });
    }
    if (!ec) socket.set_option(tcp::no_delay(true), ec);
    if (!ec) GuardAgainstSilence(socket);
    const std::string& name = options.server_name.empty() ? target.host : options.server_name;
    if (!ec && !config.insecure) c->stream.set_verify_callback(ssl::host_name_verification(name));
    if (!ec && !options.server_name.empty())
      SSL_set_tlsext_host_name(c->stream.native_handle(), options.server_name.c_str());
    if (!ec) {
      ec = Await(*c, deadline, [&](auto done) {
        c->stream.async_handshake(ssl::stream_base::client, std::move(done));
      });
    }
    if (ec) return MakeStatus(Code::kUnavailable, "{}: {}", target.url, ec.message());
    return c;
  }

  void Give(std::unique_ptr<Connection> c) {
    std::lock_guard lock(mu);
    if (idle.size() < 16) idle.push_back(std::move(c));
  }
};

HttpsTransport::HttpsTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsTransport::~HttpsTransport() = default;

Result<std::shared_ptr<HttpsTransport>> HttpsTransport::Create(const KubeConfig& config,
                                                               const TransportOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->options = options;
  // The kubeconfig's server, then the others its cluster lists.
  std::vector<std::string> urls{config.server};
  urls.insert(urls.end(), config.servers.begin(), config.servers.end());
  KISO_ASSIGN_OR_RETURN(impl->servers, TargetsOf(urls));
  if (config.insecure) {
    impl->tls.set_verify_mode(ssl::verify_none);
  } else {
    KISO_RETURN_IF_ERROR(apiserver::TrustServer(impl->tls, config.ca_pem));
  }
  KISO_RETURN_IF_ERROR(
      apiserver::UseClientCertificate(impl->tls, config.client_cert_pem, config.client_key_pem));
  return std::shared_ptr<HttpsTransport>(new HttpsTransport(std::move(impl)));
}

Status HttpsTransport::SetServers(const std::vector<std::string>& urls) {
  KISO_ASSIGN_OR_RETURN(auto targets, TargetsOf(urls));
  if (targets.empty()) return Status(Code::kInvalidArgument, "no API server given");
  std::lock_guard lock(impl_->mu);
  const std::string in_use =
      impl_->servers.empty() ? "" : impl_->servers[impl_->current % impl_->servers.size()].url;
  // Kept connections to servers no longer listed are closed.
  std::erase_if(impl_->idle, [&](const std::unique_ptr<Connection>& c) {
    return std::none_of(targets.begin(), targets.end(),
                        [&](const Target& t) { return t.url == c->url; });
  });
  impl_->servers = std::move(targets);
  impl_->current = 0;
  for (size_t i = 0; i < impl_->servers.size(); ++i) {
    if (impl_->servers[i].url == in_use) impl_->current = i;  // Kept while it is listed.
  }
  return Status::Ok();
}

std::string HttpsTransport::server() const { return impl_->CurrentUrl(); }

apiserver::Response HttpsTransport::RoundTrip(const apiserver::Request& request,
                                              const HeaderLines& extra) {
  std::shared_ptr<StreamedBody> body;
  apiserver::Response out = Exchange(request, extra, &body);
  if (body) {
    out.stream = [body](apiserver::StreamWriter& writer) {
      writer.OnCancel([body] { body->Cancel(); });
      std::string data;
      // Stopping() is looked at every 200 ms too, for writers that cannot call back.
      for (bool open = true; open && !writer.Stopping(); data.clear()) {
        open = body->Read(data, Clock::now() + std::chrono::milliseconds(200));
        if (!data.empty() && !writer.Write(data)) break;
      }
    };
  }
  return out;
}

std::shared_ptr<StreamedBody> HttpsTransport::Stream(const apiserver::Request& request,
                                                     apiserver::Response& head) {
  std::shared_ptr<StreamedBody> body;
  head = Exchange(request, {}, &body);
  return body;
}

apiserver::Response HttpsTransport::Exchange(const apiserver::Request& request,
                                             const HeaderLines& extra,
                                             std::shared_ptr<StreamedBody>* body) {
  http::request<http::string_body> req{http::string_to_verb(request.method), TargetOf(request), 11};
  for (const auto& [k, v] : request.headers) req.set(k, v);
  for (const auto& [k, v] : extra) req.insert(k, v);
  if (!impl_->config.token.empty())
    req.set(http::field::authorization, "Bearer " + impl_->config.token);
  req.body() = request.body;
  req.keep_alive(true);
  req.prepare_payload();
  bool watch = request.QueryBool("watch") || request.QueryBool("follow");
  auto timed_out = [&] {
    return Unavailable(fmt::format("{}: no answer within {} ms", impl_->CurrentUrl(),
                                   impl_->options.timeout.count()));
  };
  const auto began = Clock::now();
  struct SlowLog {  // A request that took long says so (a server that did not answer).
    const apiserver::Request& r;
    Clock::time_point began;
    ~SlowLog() {
      auto took = Clock::now() - began;
      if (took > std::chrono::seconds(5) && !r.QueryBool("watch") && !r.QueryBool("follow")) {
        spdlog::warn("API request {} {} took {} ms", r.method, r.path,
                     std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
      }
    }
  } slow_log{request, began};
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto deadline = impl_->Deadline();
    // The retry dials anew: the other kept connections are likely as old as
    // the one the server closed (after a quiet spell, all of them).
    auto conn = impl_->Take(deadline, attempt > 0);
    if (!conn.ok()) return Unavailable(conn.status().message());
    auto& c = **conn;
    req.set(http::field::host,
            impl_->options.server_name.empty() ? c.host : impl_->options.server_name);
    beast::error_code ec =
        Await(c, deadline, [&](auto done) { http::async_write(c.stream, req, std::move(done)); });
    if (ec == asio::error::timed_out) return timed_out();
    if (ec) continue;  // A pooled connection the server closed: retry on a fresh one.
    if (!watch) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(impl_->options.max_body_bytes);
      ec = ReadNow(c, deadline, parser);
      if (ec == asio::error::timed_out) return timed_out();
      if (ec == http::error::body_limit) {
        return Unavailable(fmt::format("{}: the answer is larger than {} bytes",
                                       impl_->CurrentUrl(), impl_->options.max_body_bytes));
      }
      if (ec) continue;
      auto res = parser.release();
      apiserver::Response out;
      out.status = static_cast<int>(res.result_int());
      out.content_type = std::string(res[http::field::content_type]);
      out.body = std::move(res.body());
      if (res.keep_alive()) impl_->Give(std::move(*conn));
      return out;
    }
    // A stream: read the header now, the body chunk by chunk in Response::stream.
    auto parser = std::make_shared<http::response_parser<http::empty_body>>();
    parser->body_limit(boost::none);
    ec = Await(c, deadline, [&](auto done) {
      http::async_read_header(c.stream, c.buffer, *parser, std::move(done));
    });
    if (ec == asio::error::timed_out) return timed_out();
    if (ec) continue;
    apiserver::Response out;
    out.status = static_cast<int>(parser->get().result_int());
    out.content_type = std::string(parser->get()[http::field::content_type]);
    if (out.status >= 300) {
      // An error answer to a stream request is a plain body (a Status).
      http::response_parser<http::string_body> body_parser(std::move(*parser));
      ec = Await(c, deadline, [&](auto done) {
        http::async_read(c.stream, c.buffer, body_parser, std::move(done));
      });
      out.body = body_parser.get().body();
      return out;
    }
    *body = std::make_shared<HttpsBody>(std::move(*conn), std::move(parser));
    return out;
  }
  return Unavailable(fmt::format("{}: the connection failed twice", impl_->CurrentUrl()));
}

}  // namespace kiso::client
