#include "client/https_transport.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/url.hpp>
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
  explicit Connection(ssl::context& tls) : stream(io, tls) {}
};

apiserver::Response Unavailable(const std::string& what) {
  apiserver::Response r;
  r.status = 503;
  r.body = api::ServiceUnavailable(what).ToJson();
  return r;
}

using Clock = std::chrono::steady_clock;

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

std::string Target(const apiserver::Request& req) {
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

  Clock::time_point Deadline() const {
    return options.timeout.count() > 0 ? Clock::now() + options.timeout : Clock::time_point::max();
  }

  // A kept connection (unless `fresh`), or a new one.
  Result<std::unique_ptr<Connection>> Take(Clock::time_point deadline, bool fresh) {
    if (!fresh) {
      std::lock_guard lock(mu);
      if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<Connection>(tls);
    beast::error_code ec;
    tcp::resolver resolver(c->io);
    auto endpoints = resolver.resolve(config.host, std::to_string(config.port), ec);
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
    const std::string& name = options.server_name.empty() ? config.host : options.server_name;
    if (!ec && !config.insecure) c->stream.set_verify_callback(ssl::host_name_verification(name));
    if (!ec && !options.server_name.empty())
      SSL_set_tlsext_host_name(c->stream.native_handle(), options.server_name.c_str());
    if (!ec) {
      ec = Await(*c, deadline, [&](auto done) {
        c->stream.async_handshake(ssl::stream_base::client, std::move(done));
      });
    }
    if (ec) return MakeStatus(Code::kUnavailable, "{}: {}", config.server, ec.message());
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
  if (config.insecure) {
    impl->tls.set_verify_mode(ssl::verify_none);
  } else {
    KISO_RETURN_IF_ERROR(apiserver::TrustServer(impl->tls, config.ca_pem));
  }
  KISO_RETURN_IF_ERROR(
      apiserver::UseClientCertificate(impl->tls, config.client_cert_pem, config.client_key_pem));
  return std::shared_ptr<HttpsTransport>(new HttpsTransport(std::move(impl)));
}

apiserver::Response HttpsTransport::RoundTrip(const apiserver::Request& request,
                                              const HeaderLines& extra) {
  http::request<http::string_body> req{http::string_to_verb(request.method), Target(request), 11};
  req.set(http::field::host,
          impl_->options.server_name.empty() ? impl_->config.host : impl_->options.server_name);
  for (const auto& [k, v] : request.headers) req.set(k, v);
  for (const auto& [k, v] : extra) req.insert(k, v);
  if (!impl_->config.token.empty())
    req.set(http::field::authorization, "Bearer " + impl_->config.token);
  req.body() = request.body;
  req.keep_alive(true);
  req.prepare_payload();
  bool watch = request.QueryBool("watch") || request.QueryBool("follow");
  auto timed_out = [&] {
    return Unavailable(fmt::format("{}: no answer within {} ms", impl_->config.server,
                                   impl_->options.timeout.count()));
  };
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto deadline = impl_->Deadline();
    // The retry dials anew: the other kept connections are likely as old as
    // the one the server closed (after a quiet spell, all of them).
    auto conn = impl_->Take(deadline, attempt > 0);
    if (!conn.ok()) return Unavailable(conn.status().message());
    auto& c = **conn;
    beast::error_code ec =
        Await(c, deadline, [&](auto done) { http::async_write(c.stream, req, std::move(done)); });
    if (ec == asio::error::timed_out) return timed_out();
    if (ec) continue;  // A pooled connection the server closed: retry on a fresh one.
    if (!watch) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(impl_->options.max_body_bytes);
      ec = Await(c, deadline,
                 [&](auto done) { http::async_read(c.stream, c.buffer, parser, std::move(done)); });
      if (ec == asio::error::timed_out) return timed_out();
      if (ec == http::error::body_limit) {
        return Unavailable(fmt::format("{}: the answer is larger than {} bytes",
                                       impl_->config.server, impl_->options.max_body_bytes));
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
    std::shared_ptr<Connection> shared(std::move(*conn));
    out.stream = [shared, parser](apiserver::StreamWriter& writer) {
      bool keep = true;
      auto on_chunk = [&](std::uint64_t, std::string_view data, beast::error_code&) {
        keep = keep && writer.Write(data);
        return data.size();
      };
      parser->on_chunk_body(on_chunk);
      while (keep && !parser->is_done()) {
        bool completed = false;
        beast::error_code read_ec;
        http::async_read_some(shared->stream, shared->buffer, *parser,
                              [&](beast::error_code e, std::size_t) {
                                read_ec = e;
                                completed = true;
                              });
        while (!completed) {
          shared->io.restart();
          shared->io.run_for(std::chrono::milliseconds(200));
          if (!completed && writer.Stopping()) {
            beast::error_code ignored;
            shared->stream.next_layer().cancel(ignored);
          }
        }
        if (read_ec) break;
      }
    };
    return out;
  }
  return Unavailable(fmt::format("{}: the connection failed twice", impl_->config.server));
}

}  // namespace kiso::client
