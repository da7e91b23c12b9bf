#include "apiserver/http_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "api/errors.h"
#include "apiserver/channel_pump.h"

namespace kiso::apiserver {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
namespace websocket = beast::websocket;

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

std::vector<std::string> Request::QueryAll(std::string_view name) const {
  std::vector<std::string> out;
  auto [begin, end] = query.equal_range(name);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

namespace {

using SslStream = ssl::stream<tcp::socket>;

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

Request Convert(const http::request<http::string_body>& in, const std::string& remote) {
  Request req;
  req.method = std::string(in.method_string());
  req.remote = remote;
  std::string_view target(in.target().data(), in.target().size());
  auto parsed = boost::urls::parse_origin_form(target);
  if (parsed) {
    req.path = parsed->path();
    boost::urls::encoding_opts opts;
    opts.space_as_plus = true;
    for (auto param : parsed->params(opts)) req.query.emplace(param.key, param.value);
  } else {
    req.path = std::string(target.substr(0, target.find('?')));
  }
  for (const auto& field : in) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers.emplace(std::move(name), std::string(field.value()));
  }
  req.body = in.body();
  return req;
}

}  // namespace

struct HttpsServer::Impl {
  HttpsServerOptions options;
  Handler handler;
  asio::io_context io{1};
  ssl::context tls{ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable idle;
  std::set<int> open_fds;  // Sockets of live connections, shut down on Stop.
  int active = 0;

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
      std::lock_guard lock(mu);
      if (stopping) break;
      open_fds.insert(socket.native_handle());
      ++active;
      std::thread([this, s = std::move(socket)]() mutable { Serve(std::move(s)); }).detach();
    }
  }

  void Serve(tcp::socket accepted) {
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
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) ServeRequests(conn_io, stream, remote);
      {
        std::lock_guard lock(mu);
        open_fds.erase(fd);
      }
      stream.shutdown(ec);
      stream.next_layer().close(ec);
    }
    std::lock_guard lock(mu);
    if (--active == 0) idle.notify_all();
  }

  void ServeRequests(asio::io_context& conn_io, SslStream& stream, const std::string& remote) {
    beast::flat_buffer buffer;
    while (!stopping) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options.max_body_bytes);
      parser.header_limit(64 * 1024);
      beast::error_code ec;
      http::read(stream, buffer, parser, ec);
      if (ec == http::error::body_limit) {
        auto err = api::RequestEntityTooLarge(fmt::format(
            "the request body is larger than the limit of {} bytes", options.max_body_bytes));
        http::response<http::string_body> res{http::status::payload_too_large, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = err.ToJson();
        res.keep_alive(false);
        res.prepare_payload();
        http::write(stream, res, ec);
        return;
      }
      if (ec) return;
      const auto& in = parser.get();
      Response out = handler(Convert(in, remote));
      bool keep_alive = in.keep_alive() && !stopping;
      if (out.channels && websocket::is_upgrade(in)) {
        WebSocketStream ws(stream);
        std::string protocol = out.websocket_protocol;
        ws.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& r) {
          r.set(http::field::sec_websocket_protocol, protocol);
        }));
        ws.binary(true);
        ws.accept(in, ec);
        if (ec) return;
        PumpChannels(conn_io, ws, *out.channels, protocol == "v5.channel.k8s.io");
        return;  // The connection ends with the session.
      }
      if (out.stream) {
        http::response<http::empty_body> res{static_cast<http::status>(out.status), in.version()};
        res.set(http::field::content_type, out.content_type);
        for (const auto& [k, v] : out.headers) res.set(k, v);
        res.chunked(true);
        res.keep_alive(keep_alive);
        http::response_serializer<http::empty_body> sr{res};
        http::write_header(stream, sr, ec);
        if (ec) return;
        ChunkWriter writer(stream, stopping);
        out.stream(writer);
        writer.Finish();
      } else {
        http::response<http::string_body> res{static_cast<http::status>(out.status), in.version()};
        res.set(http::field::content_type, out.content_type);
        for (const auto& [k, v] : out.headers) res.set(k, v);
        res.body() = std::move(out.body);
        res.keep_alive(keep_alive);
        res.prepare_payload();
        http::write(stream, res, ec);
        if (ec) return;
      }
      if (!keep_alive) return;
    }
  }
};

HttpsServer::HttpsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpsServer>> HttpsServer::Start(const HttpsServerOptions& options,
                                                        Handler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
  beast::error_code ec;
  impl->tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  impl->tls.use_certificate_chain(asio::buffer(options.cert_pem), ec);
  if (!ec) impl->tls.use_private_key(asio::buffer(options.key_pem), ssl::context::pem, ec);
  if (ec) return MakeStatus(Code::kInvalidArgument, "TLS certificate or key: {}", ec.message());
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
  Impl* raw = impl.get();
  impl->accept_thread = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<HttpsServer>(new HttpsServer(std::move(impl)));
}

void HttpsServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  // shutdown(2) wakes a thread blocked in accept(2) or read(2) on Linux.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  std::lock_guard lock(impl_->mu);
  for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RD);
}

HttpsServer::~HttpsServer() {
  Stop();
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  std::unique_lock lock(impl_->mu);
  impl_->idle.wait(lock, [this] { return impl_->active == 0; });
  lock.unlock();
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

uint16_t HttpsServer::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace kiso::apiserver
