#include "https_client.h"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

namespace kiso::bench {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpsClient::Impl {
  int port;
  std::string token;
  asio::io_context io;
  ssl::context tls{ssl::context::tls_client};
  std::optional<ssl::stream<tcp::socket>> stream;
  beast::flat_buffer buffer;
  std::atomic<int> fd{-1};  // For Close() from another thread.

  bool Connect() {
    if (stream) return true;
    stream.emplace(io, tls);
    beast::error_code ec;
    stream->next_layer().connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)), ec);
    if (!ec) stream->next_layer().set_option(tcp::no_delay(true), ec);
    if (!ec) stream->handshake(ssl::stream_base::client, ec);
    if (ec) {
      stream.reset();
      return false;
    }
    fd = stream->next_layer().native_handle();
    buffer.clear();
    return true;
  }

  http::request<http::string_body> Make(std::string_view method, std::string_view target,
                                        std::string_view body, std::string_view content_type) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + token);
    req.set(http::field::accept, "application/json");
    if (!body.empty()) {
      req.set(http::field::content_type, content_type);
      req.body() = std::string(body);
    }
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }
};

HttpsClient::HttpsClient(int port, std::string token) : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->token = std::move(token);
  impl_->tls.set_verify_mode(ssl::verify_none);
}

HttpsClient::~HttpsClient() = default;

HttpResult HttpsClient::Request(std::string_view method, std::string_view target,
                                std::string_view body, std::string_view content_type) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!impl_->Connect()) return {};
    auto req = impl_->Make(method, target, body, content_type);
    beast::error_code ec;
    http::write(*impl_->stream, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ULL << 30);
    if (!ec) http::read(*impl_->stream, impl_->buffer, parser, ec);
    if (ec) {
      impl_->stream.reset();  // Stale keep-alive connection: retry once on a new one.
      continue;
    }
    auto res = parser.release();
    if (!res.keep_alive()) impl_->stream.reset();
    return {static_cast<int>(res.result_int()), std::move(res.body())};
  }
  return {};
}

bool HttpsClient::Stream(std::string_view target,
                         const std::function<bool(std::string_view)>& on_data) {
  if (!impl_->Connect()) return false;
  auto req = impl_->Make("GET", target, "", "");
  beast::error_code ec;
  http::write(*impl_->stream, req, ec);
  if (ec) return false;
  http::response_parser<http::empty_body> parser;
  parser.body_limit(boost::none);
  bool keep_going = true;
  auto on_chunk = [&](std::uint64_t, std::string_view data, beast::error_code&) {
    keep_going = keep_going && on_data(data);
    return data.size();
  };
  parser.on_chunk_body(on_chunk);
  while (keep_going && !parser.is_done()) {
    http::read_some(*impl_->stream, impl_->buffer, parser, ec);
    if (ec) break;
  }
  impl_->stream.reset();
  return !ec;
}

void HttpsClient::Close() {
  int fd = impl_->fd.load();
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

}  // namespace kiso::bench
