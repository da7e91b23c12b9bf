#include "apiserver/http/tunnel_dialer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "apiserver/http/http_connection.h"

namespace kiso::apiserver {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct TunnelDialer::Impl : std::enable_shared_from_this<Impl> {
  TunnelOptions options;
  Handler handler;
  ssl::context tls{ssl::context::tls_client};
  std::atomic<bool> stopping{false};

  mutable std::mutex mu;
  std::condition_variable cv;
  int idle = 0;     // Connected, waiting for a request.
  int dialing = 0;  // Connecting (or backing off after a failure).
  int threads = 0;  // Live tunnel threads.
  std::set<int> fds;
  std::thread manager;

  // Keeps options.idle tunnels idle or on their way.
  void Manage() {
    std::unique_lock lock(mu);
    while (!stopping) {
      if (idle + dialing < options.idle) {
        ++dialing;
        ++threads;
        std::thread([self = shared_from_this()] { self->RunTunnel(); }).detach();
        continue;
      }
      cv.wait(lock);
    }
  }

  // Dials one tunnel and serves what comes down it; after a failure, waits
  // (1 s doubling to 30 s across consecutive failures) before giving up its slot.
  void RunTunnel() {
    asio::io_context io(1);
    SslStream stream(io, tls);
    beast::flat_buffer buffer;
    Status dialed = Dial(io, stream, buffer);
    int fd = stream.next_layer().native_handle();
    bool claimed = false;
    if (dialed.ok()) {
      {
        std::lock_guard lock(mu);
        --dialing;
        ++idle;
        failures = 0;
      }
      ConnectionOptions connection;
      connection.stopping = &stopping;
      connection.on_request = [this, &claimed] {
        std::lock_guard lock(mu);
        if (!claimed) --idle;
        claimed = true;
        cv.notify_all();  // Dial a replacement.
      };
      ServeConnection(io, stream, buffer, "api-server", handler, connection);
      beast::error_code ignored;
      stream.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    } else {
      std::unique_lock lock(mu);
      int n = failures++;
      if (n == 0 || n % 10 == 0)
        spdlog::warn("agent tunnel to {}:{}: {}", options.host, options.port, dialed.ToString());
      auto delay = std::chrono::seconds(std::min(30, 1 << std::min(n, 5)));
      cv.wait_for(lock, delay, [this] { return stopping.load(); });
    }
    std::lock_guard lock(mu);
    fds.erase(fd);
    if (dialed.ok() && !claimed) --idle;
    if (!dialed.ok()) --dialing;
    --threads;
    cv.notify_all();
  }

  Status Dial(asio::io_context& io, SslStream& stream, beast::flat_buffer& buffer) {
    beast::error_code ec;
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(options.host, std::to_string(options.port), ec);
    if (!ec) asio::connect(stream.next_layer(), endpoints, ec);
    if (ec) return MakeStatus(Code::kUnavailable, "connect: {}", ec.message());
    {
      std::lock_guard lock(mu);
      if (stopping) return MakeStatus(Code::kCancelled, "stopping");
      fds.insert(stream.next_layer().native_handle());
    }
    stream.next_layer().set_option(tcp::no_delay(true), ec);
    SSL_set_tlsext_host_name(stream.native_handle(), options.host.c_str());
    stream.set_verify_callback(ssl::host_name_verification(options.host));
    stream.handshake(ssl::stream_base::client, ec);
    if (ec) return MakeStatus(Code::kUnavailable, "TLS: {}", ec.message());
    http::request<http::empty_body> req{http::verb::get,
                                        fmt::format("/kiso/v1/nodes/{}/tunnel", options.node), 11};
    req.set(http::field::host, options.host);
    if (!options.token.empty()) req.set(http::field::authorization, "Bearer " + options.token);
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, kTunnelProtocol);
    req.set(http::field::user_agent, "kiso-agent");
    http::write(stream, req, ec);
    http::response_parser<http::string_body> parser;
    if (!ec) http::read(stream, buffer, parser, ec);
    if (ec) return MakeStatus(Code::kUnavailable, "tunnel request: {}", ec.message());
    const auto& res = parser.get();
    if (res.result() != http::status::switching_protocols) {
      return MakeStatus(Code::kUnavailable, "the server refused a tunnel: {} {}", res.result_int(),
                        res.body());
    }
    return Status::Ok();
  }

  int failures = 0;  // Consecutive failed dials.
};

TunnelDialer::TunnelDialer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<TunnelDialer>> TunnelDialer::Start(const TunnelOptions& options,
                                                          Handler handler) {
  auto impl = std::make_shared<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
  RestrictTlsVersions(impl->tls);
  KISO_RETURN_IF_ERROR(TrustServer(impl->tls, options.ca_pem));
  KISO_RETURN_IF_ERROR(
      UseClientCertificate(impl->tls, options.client_cert_pem, options.client_key_pem));
  impl->manager = std::thread([raw = impl.get()] { raw->Manage(); });
  return std::unique_ptr<TunnelDialer>(new TunnelDialer(std::move(impl)));
}

void TunnelDialer::Stop() {
  std::lock_guard lock(impl_->mu);
  if (impl_->stopping.exchange(true)) return;
  for (int fd : impl_->fds) ::shutdown(fd, SHUT_RDWR);
  impl_->cv.notify_all();
}

TunnelDialer::~TunnelDialer() {
  Stop();
  if (impl_->manager.joinable()) impl_->manager.join();
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [this] { return impl_->threads == 0; });
}

int TunnelDialer::idle() const {
  std::lock_guard lock(impl_->mu);
  return impl_->idle;
}

}  // namespace kiso::apiserver
