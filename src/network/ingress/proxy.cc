#include "network/ingress/proxy.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "common/http2_session.h"
#include "network/ingress/proxy_impl.h"

namespace kiso::network::ingress {

namespace {

Context NewContext() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_alpn_select_cb(ctx, http2::SelectAlpn, nullptr);  // SNI keeps the client's h2.
  return Context(ctx, SSL_CTX_free);
}

// A context serving one Ingress TLS Secret (certificate chain and key, PEM).
Result<Context> ContextOf(const Certificate& c) {
  Context ctx = NewContext();
  if (!ctx) return MakeStatus(Code::kInternal, "TLS context for {}", c.secret);
  std::unique_ptr<BIO, decltype(&BIO_free)> certs(
      BIO_new_mem_buf(c.cert_pem.data(), static_cast<int>(c.cert_pem.size())), BIO_free);
  X509* leaf = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr);
  if (!leaf) {
    return MakeStatus(Code::kInvalidArgument, "secret {}: tls.crt holds no PEM certificate",
                      c.secret);
  }
  const int used = SSL_CTX_use_certificate(ctx.get(), leaf);
  X509_free(leaf);
  if (used != 1) return MakeStatus(Code::kInvalidArgument, "secret {}: tls.crt refused", c.secret);
  while (X509* extra = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
    SSL_CTX_add0_chain_cert(ctx.get(), extra);  // Owns it now.
  }
  ERR_clear_error();  // The end of the chain reads as an error.
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(c.key_pem.data(), static_cast<int>(c.key_pem.size())), BIO_free);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  if (!key) {
    return MakeStatus(Code::kInvalidArgument, "secret {}: tls.key holds no PEM private key",
                      c.secret);
  }
  const int key_used = SSL_CTX_use_PrivateKey(ctx.get(), key);
  EVP_PKEY_free(key);
  if (key_used != 1 || SSL_CTX_check_private_key(ctx.get()) != 1) {
    ERR_clear_error();
    return MakeStatus(Code::kInvalidArgument, "secret {}: tls.key does not match tls.crt",
                      c.secret);
  }
  return ctx;
}

// The certificate served to names no Ingress has one for: self-signed, made at start.
Status UseDefaultCertificate(SSL_CTX* ctx) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!key || !cert) return MakeStatus(Code::kInternal, "default ingress certificate: no memory");
  uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof(serial));
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial >> 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("KISO DEFAULT CERT"), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0 ||
      SSL_CTX_use_certificate(ctx, cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    return MakeStatus(Code::kInternal, "default ingress certificate: OpenSSL refused it");
  }
  return Status::Ok();
}

}  // namespace

void StripHopByHop(http::fields& f) {
  std::vector<std::string> named;
  for (auto token : http::token_list(f[http::field::connection]))
    named.emplace_back(token.data(), token.size());
  for (const auto& n : named) f.erase(n);
  for (auto field :
       {http::field::connection, http::field::keep_alive, http::field::proxy_connection,
        http::field::te, http::field::trailer, http::field::upgrade,
        http::field::proxy_authorization, http::field::proxy_authenticate}) {
    f.erase(field);
  }
}

namespace {

int OnServerName(SSL* ssl, int* /*alert*/, void* arg) {
  auto* impl = static_cast<IngressProxy::Impl*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;  // The default certificate.
  std::shared_ptr<const Snapshot> snap = impl->snapshot.load();
  if (!snap) return SSL_TLSEXT_ERR_OK;
  if (const Certificate* c = snap->routes->CertificateFor(name)) {
    size_t i = static_cast<size_t>(c - snap->routes->certificates().data());
    if (i < snap->contexts.size() && snap->contexts[i])
      SSL_set_SSL_CTX(ssl, snap->contexts[i].get());  // Counts its own reference.
  }
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

Routed Route(std::shared_ptr<const Snapshot> snapshot, std::string_view host,
             std::string_view path) {
  Routed to;
  to.snapshot = std::move(snapshot);
  const Backend* b = to.snapshot ? to.snapshot->routes->Match(host, path) : nullptr;
  if (!b) {
    to.refusal = http::status::not_found;  // Traefik's answer.
    to.text = "404 page not found\n";
  } else if (b->targets.empty()) {
    to.refusal = http::status::service_unavailable;
    to.text = "no available server\n";
  } else {
    to.backend = b;
  }
  return to;
}

void IngressProxy::Impl::Spawn(Worker& w, asio::awaitable<void> work) {
  asio::co_spawn(w.ioc, std::move(work), [](const std::exception_ptr& e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      spdlog::warn("ingress: a connection ended on an error: {}", x.what());
    }
  });
}

Status IngressProxy::Impl::Listen(int port, bool tls_listener) {
  if (port < 0) return Status::Ok();
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options.address, ec);
  if (ec) return MakeStatus(Code::kInvalidArgument, "ingress: bad address {}", options.address);
  auto acceptor = std::make_unique<tcp::acceptor>(workers.front()->ioc);
  tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
  if (acceptor->open(endpoint.protocol(), ec); !ec) {
    acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (acceptor->bind(endpoint, ec); !ec)
      acceptor->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return MakeStatus(Code::kUnavailable, "ingress: listen on {}:{} ({}): {}", options.address,
                      port, tls_listener ? "HTTPS" : "HTTP", ec.message());
  }
  (tls_listener ? https_acceptor : http_acceptor) = std::move(acceptor);
  return Status::Ok();
}

asio::awaitable<void> IngressProxy::Impl::Accept(tcp::acceptor& acceptor, bool tls_listener) {
  asio::steady_timer backoff(workers.front()->ioc);
  while (!stopped.load()) {
    Worker& w = *workers[next_worker++ % workers.size()];  // The connection's for its life.
    auto [ec, socket] = co_await acceptor.async_accept(w.ioc, kTuple);
    if (ec == asio::error::operation_aborted || stopped.load()) co_return;
    if (ec) {  // Out of descriptors, say: pause rather than spin.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(kTuple);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::string client_ip = socket.remote_endpoint(ignored).address().to_string();
    if (tls_listener) {
      Spawn(w, [](Impl* self, Worker* w, tcp::socket s, std::string ip) -> asio::awaitable<void> {
        beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(s)), self->tls);
        co_await self->Serve(*w, stream, true, std::move(ip));
      }(this, &w, std::move(socket), std::move(client_ip)));
    } else {
      Spawn(w, [](Impl* self, Worker* w, tcp::socket s, std::string ip) -> asio::awaitable<void> {
        beast::tcp_stream stream(std::move(s));
        co_await self->Serve(*w, stream, false, std::move(ip));
      }(this, &w, std::move(socket), std::move(client_ip)));
    }
  }
}

template <class Stream>
asio::awaitable<void> IngressProxy::Impl::Serve(Worker& w, Stream& stream, bool tls_listener,
                                                std::string client_ip) {
  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
    beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    if (ec) co_return;
    const unsigned char* protocol = nullptr;
    unsigned size = 0;
    SSL_get0_alpn_selected(stream.native_handle(), &protocol, &size);
    if (std::string_view(reinterpret_cast<const char*>(protocol), size) == "h2") {
      co_await ServeHttp2(w, stream, tls_listener, std::move(client_ip), {});
      co_return;
    }
  }
  beast::flat_buffer buffer;
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    // HTTP/2 with prior knowledge (h2c) opens with its preface; HTTP/1.1 never does.
    constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n";
    for (;;) {
      std::string_view have(static_cast<const char*>(buffer.data().data()), buffer.size());
      if (have.size() >= kPreface.size() || !kPreface.starts_with(have)) break;
      beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kTuple);
      if (ec) co_return;
      buffer.commit(n);
    }
    std::string_view have(static_cast<const char*>(buffer.data().data()), buffer.size());
    if (have.starts_with(kPreface)) {
      co_await ServeHttp2(w, stream, tls_listener, std::move(client_ip), std::string(have));
      co_return;
    }
  }
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(options.max_body);
    beast::get_lowest_layer(stream).expires_after(options.idle_timeout);
    auto [ec, unused] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    if (ec == http::error::header_limit) {
      co_await Reply(stream, 11, http::status::request_header_fields_too_large,
                     "request header fields too large\n", false);
      break;
    }
    if (ec == http::error::body_limit) {  // A Content-Length beyond the limit.
      co_await Reply(stream, 11, http::status::payload_too_large, "request body too large\n",
                     false);
      break;
    }
    if (ec) {
      if (ec != http::error::end_of_stream && ec != asio::error::eof &&
          ec != beast::error::timeout && ec != asio::error::connection_reset &&
          ec != asio::error::operation_aborted) {
        co_await Reply(stream, 11, http::status::bad_request, "bad request\n", false);
      }
      break;
    }
    auto& head = parser.get();
    const unsigned version = head.version();
    if (beast::iequals(head[http::field::expect], "100-continue") && !parser.is_done()) {
      http::response<http::empty_body> go_on{http::status::continue_, version};
      if (auto [wec, w] = co_await http::async_write(stream, go_on, kTuple); wec) break;
    }
    if (!parser.is_done()) {
      beast::get_lowest_layer(stream).expires_after(options.upstream_timeout);
      auto [bec, b] = co_await http::async_read(stream, buffer, parser, kTuple);
      if (bec == http::error::body_limit) {
        co_await Reply(stream, version, http::status::payload_too_large, "request body too large\n",
                       false);
        break;
      }
      if (bec) break;
    }
    http::request<http::string_body> req = parser.release();
    Routed to = Route(snapshot.load(), req[http::field::host],
                      std::string_view(req.target().data(), req.target().size()));
    const bool keep =
        to.backend ? co_await Forward(w, stream, buffer, req, *to.backend, tls_listener, client_ip)
                   : co_await Reply(stream, version, to.refusal, to.text, req.keep_alive());
    if (!keep) break;
  }
  boost::system::error_code ignored;
  Socket(stream).shutdown(tcp::socket::shutdown_send, ignored);
  Socket(stream).close(ignored);
}

asio::awaitable<std::unique_ptr<Upstream>> IngressProxy::Impl::Connect(Worker& w,
                                                                       const std::string& target,
                                                                       bool* pooled) {
  if (auto it = w.idle.find(target); it != w.idle.end() && !it->second.empty()) {
    std::unique_ptr<Upstream> up = std::move(it->second.back());
    it->second.pop_back();
    *pooled = true;
    co_return up;
  }
  *pooled = false;
  size_t colon = target.rfind(':');
  boost::system::error_code ec;
  auto address = asio::ip::make_address(target.substr(0, colon), ec);
  if (ec || colon == std::string::npos) co_return nullptr;
  int port = std::atoi(target.c_str() + colon + 1);
  auto up = std::make_unique<Upstream>(w.ioc);
  up->stream.expires_after(options.connect_timeout);
  auto [cec] = co_await up->stream.async_connect(
      tcp::endpoint(address, static_cast<uint16_t>(port)), kTuple);
  if (cec) co_return nullptr;
  up->stream.socket().set_option(tcp::no_delay(true), ec);
  co_return up;
}

void IngressProxy::Impl::Release(Worker& w, const std::string& target,
                                 std::unique_ptr<Upstream> up) {
  if (stopped.load() || up->buffer.size() != 0) return;  // Bytes beyond the answer: no reuse.
  up->stream.expires_never();
  auto& list = w.idle[target];
  if (list.size() < kIdlePerTarget) list.push_back(std::move(up));
}

asio::awaitable<IngressProxy::Impl::Answer> IngressProxy::Impl::Ask(
    Worker& w, http::request<http::string_body>& req, const Backend& backend, bool head) {
  Answer a;
  const size_t n = backend.targets.size();
  const size_t first = backend.next.fetch_add(1, std::memory_order_relaxed);
  for (size_t attempt = 0; attempt < std::min<size_t>(n, 3) + 1; ++attempt) {
    const std::string& target = backend.targets[(first + attempt) % n];
    bool pooled = false;
    std::unique_ptr<Upstream> up = co_await Connect(w, target, &pooled);
    if (!up) continue;  // Refused or timed out: the next endpoint.
    up->stream.expires_after(options.upstream_timeout);
    boost::system::error_code wec = co_await WriteWhole(up->stream, req);
    auto parser = std::make_unique<http::response_parser<http::empty_body>>();
    boost::system::error_code rec;
    do {  // Interim 1xx answers (other than 101) are not the response.
      parser = std::make_unique<http::response_parser<http::empty_body>>();
      parser->header_limit(kHeaderLimit);
      parser->body_limit(boost::none);  // Bounded by the caller: held whole only when small.
      parser->skip(head);
      if (wec) break;
      up->stream.expires_after(options.upstream_timeout);
      std::tie(rec, std::ignore) =
          co_await http::async_read_header(up->stream, up->buffer, *parser, kTuple);
    } while (!rec && parser->get().result_int() / 100 == 1 &&
             parser->get().result() != http::status::switching_protocols);
    if (wec || rec) {
      if (pooled) {  // The backend closed an idle connection: once more on a fresh one.
        --attempt;
        w.idle.erase(target);
        continue;
      }
      if (wec == beast::error::timeout || rec == beast::error::timeout) {
        a.failure = http::status::gateway_timeout;
        co_return a;
      }
      continue;
    }
    a.target = target;
    a.up = std::move(up);
    a.parser = std::move(parser);
    co_return a;
  }
  a.failure = http::status::bad_gateway;
  co_return a;
}

namespace {

// The protocol a request asks to switch to (Connection: upgrade), or "".
std::string UpgradeOf(const http::fields& f) {
  for (auto token : http::token_list(f[http::field::connection])) {
    if (beast::iequals(token, "upgrade")) return std::string(f[http::field::upgrade]);
  }
  return {};
}

// Relays bytes one way until `from` ends or fails.
template <class From, class To>
asio::awaitable<void> Pipe(From& from, To& to) {
  std::vector<char> chunk(kRelayChunk);
  for (;;) {
    auto [rec, n] = co_await from.async_read_some(asio::buffer(chunk), kTuple);
    if (n > 0) {
      auto [wec, m] = co_await asio::async_write(to, asio::buffer(chunk.data(), n), kTuple);
      if (wec) co_return;
    }
    if (rec) co_return;
  }
}

}  // namespace

void IngressProxy::Impl::PrepareRequest(http::request<http::string_body>& req, bool tls_listener,
                                        const std::string& client_ip) {
  // The request as the backend sees it: no hop-by-hop headers, where it came from.
  StripHopByHop(req.base());
  req.erase(http::field::expect);
  std::string forwarded_for(req["X-Forwarded-For"]);
  req.set("X-Forwarded-For", forwarded_for.empty() ? client_ip : forwarded_for + ", " + client_ip);
  req.set("X-Forwarded-Proto", tls_listener ? "https" : "http");
  if (std::string host(req[http::field::host]); !host.empty()) req.set("X-Forwarded-Host", host);
  req.set("X-Real-Ip", client_ip);
  req.version(11);
  req.keep_alive(true);
  req.prepare_payload();
}

template <class Stream>
asio::awaitable<bool> IngressProxy::Impl::Forward(Worker& w, Stream& client,
                                                  beast::flat_buffer& client_buffer,
                                                  http::request<http::string_body>& req,
                                                  const Backend& backend, bool tls_listener,
                                                  const std::string& client_ip) {
  const unsigned version = req.version();
  const bool client_keep = req.keep_alive();
  const bool head = req.method() == http::verb::head;
  const std::string upgrade = version >= 11 ? UpgradeOf(req.base()) : std::string();
  PrepareRequest(req, tls_listener, client_ip);
  if (!upgrade.empty()) {  // A WebSocket, say: asked for again, hop by hop.
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, upgrade);
  }
  Answer a = co_await Ask(w, req, backend, head);
  if (!a.parser) {
    if (a.failure == http::status::gateway_timeout) {
      co_return co_await Reply(client, version, a.failure, "gateway timeout\n", false);
    }
    co_return co_await Reply(client, version, a.failure, "bad gateway\n", client_keep);
  }
  Upstream& up = *a.up;
  beast::flat_buffer& upbuf = up.buffer;
  auto& parser = *a.parser;
  const int status = parser.get().result_int();
  if (status == 101) {
    if (upgrade.empty()) {  // Not asked for: not passed on.
      co_return co_await Reply(client, version, http::status::bad_gateway, "bad gateway\n", false);
    }
    // Switched: the answer as it is, then bytes both ways until either side ends.
    http::response<http::empty_body> res = parser.release();
    beast::get_lowest_layer(client).expires_after(options.upstream_timeout);
    if (auto [cec, c] = co_await http::async_write(client, res, kTuple); cec) co_return false;
    beast::get_lowest_layer(client).expires_never();
    up.stream.expires_never();
    boost::system::error_code ignored;
    Socket(client).set_option(asio::socket_base::keep_alive(true), ignored);
    up.stream.socket().set_option(asio::socket_base::keep_alive(true), ignored);
    if (client_buffer.size() > 0) {
      auto [e, m] = co_await asio::async_write(up.stream, client_buffer.data(), kTuple);
      if (e) co_return false;
      client_buffer.consume(client_buffer.size());
    }
    if (upbuf.size() > 0) {
      auto [e, m] = co_await asio::async_write(client, upbuf.data(), kTuple);
      if (e) co_return false;
      upbuf.consume(upbuf.size());
    }
    using asio::experimental::awaitable_operators::operator||;
    co_await (Pipe(client, up.stream) || Pipe(up.stream, client));
    co_return false;
  }
  const auto length = parser.content_length();
  const bool framed =
      parser.chunked() || length.has_value() || head || status == 204 || status == 304;
  const bool upstream_keep = parser.keep_alive() && framed;
  bool keep = client_keep;
  if (!parser.chunked() && (parser.is_done() || (length && *length <= kSmallBody))) {
    // Small (most answers): read whole, written with its header in one call.
    http::response_parser<http::string_body> whole(std::move(parser));
    if (!whole.is_done() && upbuf.size() > 0) {
      // Usually the body came with the header: parsed here, without another async read.
      boost::system::error_code pec;
      upbuf.consume(whole.put(upbuf.data(), pec));
      if (pec && pec != http::error::need_more) {
        co_return co_await Reply(client, version, http::status::bad_gateway, "bad gateway\n",
                                 false);
      }
    }
    if (!whole.is_done()) {
      up.stream.expires_after(options.upstream_timeout);
      if (auto [bec, b] = co_await http::async_read(up.stream, upbuf, whole, kTuple); bec) {
        co_return co_await Reply(client, version, http::status::bad_gateway, "bad gateway\n",
                                 false);
      }
    }
    auto& res = whole.get();
    StripHopByHop(res.base());
    res.version(version);
    res.keep_alive(keep);
    beast::get_lowest_layer(client).expires_after(options.upstream_timeout);
    if (co_await WriteWhole(client, res)) co_return false;
    if (upstream_keep) Release(w, a.target, std::move(a.up));
    co_return keep;
  }
  // Large, chunked or ended by the backend's close: streamed through a fixed buffer.
  http::response_parser<http::buffer_body> stream(std::move(parser));
  auto& res = stream.get();
  StripHopByHop(res.base());
  if (!framed) {  // Ends when the backend closes: chunked for HTTP/1.1 clients.
    if (version >= 11) {
      res.chunked(true);
    } else {
      keep = false;
    }
  }
  res.version(version);
  res.keep_alive(keep);
  http::serializer<false, http::buffer_body> sr{res};
  beast::get_lowest_layer(client).expires_after(options.upstream_timeout);
  if (auto [hec, h] = co_await http::async_write_header(client, sr, kTuple); hec) co_return false;
  std::vector<char> chunk(kRelayChunk);
  bool clean = true;
  do {
    if (!stream.is_done()) {
      res.body().data = chunk.data();
      res.body().size = chunk.size();
      up.stream.expires_after(options.upstream_timeout);
      auto [bec, b] = co_await http::async_read(up.stream, upbuf, stream, kTuple);
      if (bec == http::error::need_buffer) bec = {};
      const bool closed = bec == http::error::end_of_stream && !framed;  // Its end.
      if (bec && !closed) {
        clean = false;
        break;
      }
      res.body().size = chunk.size() - res.body().size;
      res.body().data = chunk.data();
      res.body().more = !stream.is_done() && !closed;
    } else {
      res.body().data = nullptr;
      res.body().size = 0;
      res.body().more = false;
    }
    beast::get_lowest_layer(client).expires_after(options.upstream_timeout);
    auto [cec, c] = co_await http::async_write(client, sr, kTuple);
    if (cec == http::error::need_buffer) cec = {};
    if (cec) co_return false;
  } while (!sr.is_done());
  if (!clean) co_return false;  // The client got a cut answer: it must see the close.
  if (upstream_keep && stream.is_done()) Release(w, a.target, std::move(a.up));
  co_return keep;
}

IngressProxy::IngressProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

IngressProxy::~IngressProxy() { Stop(); }

Result<std::unique_ptr<IngressProxy>> IngressProxy::Start(ProxyOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  for (int i = 0; i < std::max(1, impl->options.threads); ++i)
    impl->workers.push_back(std::make_unique<Worker>());
  SSL_CTX* ctx = impl->tls.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  KISO_RETURN_IF_ERROR(UseDefaultCertificate(ctx));
  SSL_CTX_set_alpn_select_cb(ctx, http2::SelectAlpn, nullptr);
  SSL_CTX_set_tlsext_servername_callback(ctx, OnServerName);
  SSL_CTX_set_tlsext_servername_arg(ctx, impl.get());
  KISO_RETURN_IF_ERROR(impl->Listen(impl->options.http_port, false));
  KISO_RETURN_IF_ERROR(impl->Listen(impl->options.https_port, true));
  auto empty = std::make_shared<RouteTable>();
  empty->Seal();
  impl->snapshot.store(std::make_shared<const Snapshot>(Snapshot{std::move(empty), {}}));
  Impl* self = impl.get();
  Worker& first = *self->workers.front();
  if (self->http_acceptor) self->Spawn(first, self->Accept(*self->http_acceptor, false));
  if (self->https_acceptor) self->Spawn(first, self->Accept(*self->https_acceptor, true));
  for (auto& w : self->workers) {
    w->thread = std::thread([self, w = w.get()] {
      auto work = asio::make_work_guard(w->ioc);  // Runs until Stop, connections or not.
      while (!self->stopped.load()) {
        try {
          w->ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("ingress: {}", e.what());
        }
      }
    });
  }
  return std::unique_ptr<IngressProxy>(new IngressProxy(std::move(impl)));
}

void IngressProxy::SetRoutes(std::shared_ptr<const RouteTable> routes) {
  std::lock_guard lock(impl_->set_mu);
  auto next = std::make_shared<Snapshot>();
  std::map<std::string, Context> kept;
  for (const auto& c : routes->certificates()) {
    std::string key = c.cert_pem + '\0' + c.key_pem;
    Context ctx;
    if (auto it = impl_->contexts.find(key); it != impl_->contexts.end()) {
      ctx = it->second;
    } else if (auto made = ContextOf(c); made.ok()) {
      ctx = *made;
    } else {
      spdlog::warn("ingress: {}", made.status().message());
    }
    if (ctx) kept[key] = ctx;
    next->contexts.push_back(std::move(ctx));
  }
  impl_->contexts = std::move(kept);
  next->routes = std::move(routes);
  impl_->snapshot.store(std::move(next));
}

uint16_t IngressProxy::http_port() const {
  boost::system::error_code ec;
  return impl_->http_acceptor ? impl_->http_acceptor->local_endpoint(ec).port() : 0;
}

uint16_t IngressProxy::https_port() const {
  boost::system::error_code ec;
  return impl_->https_acceptor ? impl_->https_acceptor->local_endpoint(ec).port() : 0;
}

void IngressProxy::Stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  for (auto& w : impl_->workers) w->ioc.stop();
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) w->thread.join();
    w->idle.clear();
  }
}

}  // namespace kiso::network::ingress
