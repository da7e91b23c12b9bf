#include "apiserver/health_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace kiso::apiserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HealthServer::Impl {
  store::Store* store = nullptr;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;

  http::response<http::string_body> Handle(const http::request<http::string_body>& req) {
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    if (req.method() != http::verb::get ||
        (target != "/healthz" && target != "/livez" && target != "/readyz")) {
      res.result(http::status::not_found);
      res.body() = "404 page not found\n";
    } else if (auto rev = store->CurrentRevision(); rev.ok()) {
      res.result(http::status::ok);
      res.body() = "ok";
    } else {
      res.result(http::status::service_unavailable);
      res.body() = "store: " + rev.status().ToString() + "\n";
    }
    res.prepare_payload();
    return res;
  }

  // One connection at a time, synchronously: /healthz is probed, not loaded.
  void Serve(tcp::socket socket) {
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    beast::flat_buffer buffer;
    while (true) {
      http::request<http::string_body> req;
      http::read(socket, buffer, req, ec);
      if (ec) break;
      auto res = Handle(req);
      http::write(socket, res, ec);
      if (ec || !res.keep_alive()) break;
    }
    socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // Closed: shutting down.
      Serve(std::move(socket));
      Accept();
    });
  }
};

HealthServer::HealthServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HealthServer>> HealthServer::Start(store::Store* store,
                                                          const std::string& address,
                                                          uint16_t port) {
  auto impl = std::make_unique<Impl>();
  impl->store = store;
  beast::error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  if (ec)
    return MakeStatus(Code::kInvalidArgument, "listen address {:?}: {}", address, ec.message());
  tcp::endpoint endpoint(ip, port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return MakeStatus(Code::kUnavailable, "listen on {}:{}: {}", address, port, ec.message());
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<HealthServer>(new HealthServer(std::move(impl)));
}

HealthServer::~HealthServer() {
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t HealthServer::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace kiso::apiserver
