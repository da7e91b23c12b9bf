#include "apiserver/admission/webhook_call.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

#include "api/object.h"
#include "apiserver/http/http_connection.h"

namespace kiso::apiserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

Result<WebhookReply> PostWebhook(const WebhookTarget& target, const std::string& body,
                                 std::chrono::milliseconds timeout) {
  asio::io_context io;
  ssl::context tls(ssl::context::tls_client);
  RestrictTlsVersions(tls);
  KISO_RETURN_IF_ERROR(TrustServer(tls, target.ca_pem));
  beast::ssl_stream<beast::tcp_stream> stream(io, tls);
  if (!SSL_set_tlsext_host_name(stream.native_handle(), target.server_name.c_str()))
    return MakeStatus(Code::kInvalidArgument, "bad server name {}", target.server_name);
  stream.set_verify_callback(ssl::host_name_verification(target.server_name));

  http::request<http::string_body> req{http::verb::post, target.path, 11};
  req.set(http::field::host, target.server_name);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "application/json, */*");
  req.body() = body;
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(api::kMaxDocumentBytes);

  // One deadline over every step; the first error (or the deadline) ends the chain.
  std::optional<beast::error_code> done;
  auto finish = [&](beast::error_code ec) {
    if (!done) done = ec;
  };
  beast::get_lowest_layer(stream).expires_after(timeout);
  tcp::resolver resolver(io);
  resolver.async_resolve(
      target.host, std::to_string(target.port),
      [&](beast::error_code ec, const tcp::resolver::results_type& results) {
        if (ec) return finish(ec);
        beast::get_lowest_layer(stream).async_connect(
            results, [&](beast::error_code ec, const tcp::endpoint&) {
              if (ec) return finish(ec);
              stream.async_handshake(ssl::stream_base::client, [&](beast::error_code ec) {
                if (ec) return finish(ec);
                http::async_write(stream, req, [&](beast::error_code ec, size_t) {
                  if (ec) return finish(ec);
                  http::async_read(stream, buffer, parser,
                                   [&](beast::error_code ec, size_t) { finish(ec); });
                });
              });
            });
      });
  // The resolver has no deadline of its own: the run does.
  io.run_for(timeout + std::chrono::milliseconds(100));
  if (!done) {
    io.stop();
    return MakeStatus(Code::kUnavailable, "context deadline exceeded");
  }
  if (*done == beast::error::timeout)
    return MakeStatus(Code::kUnavailable, "context deadline exceeded");
  if (*done) return MakeStatus(Code::kUnavailable, "{}", done->message());
  WebhookReply reply;
  reply.status = static_cast<int>(parser.get().result_int());
  reply.content_type = std::string(parser.get()[http::field::content_type]);
  reply.body = std::move(parser.get().body());
  beast::error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
  return reply;
}

}  // namespace kiso::apiserver
