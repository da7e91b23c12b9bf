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

bool IsHopByHop(http::field id, std::string_view name, std::string_view connection) {
  switch (id) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::upgrade:
    case http::field::proxy_authorization:
    case http::field::proxy_authenticate:
      return true;
    default:
      break;
  }
  if (connection.empty()) return false;
  for (auto token : http::token_list(connection)) {
    if (beast::iequals(token, name)) return true;
  }
  return false;
}

void StripHopByHop(http::fields& f) {
  const std::string connection(f[http::field::connection]);
  for (auto it = f.begin(); it != f.end();) {
    if (IsHopByHop(it->name(), {it->name_string().data(), it->name_string().size()}, connection)) {
      it = f.erase(it);
    } else {
      ++it;
    }
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

asio::awaitable<void> IngressProxy::Impl::Sweep(Worker& w) {
  asio::steady_timer timer(w.ioc);
  while (!stopped.load()) {
    timer.expires_after(std::chrono::milliseconds(250));
    if (auto [ec] = co_await timer.async_wait(kTuple); ec) co_return;
    const auto now = std::chrono::steady_clock::now();
    for (Deadline* d : w.deadlines) d->Check(now);
  }
}

const std::shared_ptr<const Snapshot>& IngressProxy::Impl::RoutesOf(Worker& w) {
  const uint64_t version = snapshot_version.load(std::memory_order_acquire);
  if (!w.routes || w.routes_version != version) {
    w.routes = snapshot.load();
    w.routes_version = version;
  }
  return w.routes;
}

namespace {

bool Quiet(const boost::system::error_code& ec) {  // A connection's end, not the client's fault.
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == beast::error::timeout || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == asio::ssl::error::stream_truncated;
}

}  // namespace

template <class Stream>
asio::awaitable<void> IngressProxy::Impl::Serve(Worker& w, Stream& stream, bool tls_listener,
                                                std::string client_ip) {
  constexpr bool kPlain = std::is_same_v<Stream, beast::tcp_stream>;
  if constexpr (!kPlain) {
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
  if constexpr (kPlain) {
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
  ClientState c(w, &beast::get_lowest_layer(stream).socket());
  for (;;) {
    if constexpr (!kPlain) beast::get_lowest_layer(stream).expires_never();  // c.deadline's.
    RequestHead req(c.request);
    req.body_limit(options.max_body);
    c.deadline.Arm(options.idle_timeout);
    boost::system::error_code ec;
    size_t head_bytes = 0;
    while ((head_bytes = ParseBuffered(req, buffer, ec)) == 0 && !ec) {
      auto [rec, got] = co_await Io(stream).async_read_some(buffer.prepare(8192), kTuple);
      if (rec) {
        ec = ReadError(rec, buffer);
        break;
      }
      buffer.commit(got);
    }
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
      if (!Quiet(ec) && !c.deadline.expired()) {
        co_await Reply(stream, 11, http::status::bad_request, "bad request\n", false);
      }
      break;
    }
    // The head's spans hold until the buffer is read into again (the body, below).
    const char* base = static_cast<const char*>(buffer.data().data());
    const std::string_view host = req.Find(base, http::field::host);
    const std::string_view target = req.View(base, req.target);
    Exchange x;
    x.version = req.version;
    x.client_keep = req.keep_alive();
    x.head_method = req.verb == http::verb::head;
    if (x.version >= 11 && req.upgrade()) x.upgrade = req.Find(base, http::field::upgrade);
    const bool expect = beast::iequals(req.Find(base, http::field::expect), "100-continue");
    Routed to = Route(RoutesOf(w), host, target);
    c.out.clear();
    if (to.backend) {
      AppendUpstreamHead(
          c.out, {req.View(base, req.method), target, host, x.upgrade, client_ip, tls_listener},
          ParsedFields<true>{req, base});
    }
    buffer.consume(head_bytes);
    if (!req.is_done()) {  // A body: read whole (de-chunked), within max_body.
      if (expect && buffer.size() == 0) {
        constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        c.deadline.Arm(options.upstream_timeout);
        if (auto [wec, n] = co_await asio::async_write(Io(stream), asio::buffer(kContinue), kTuple);
            wec) {
          break;
        }
      }
      c.deadline.Arm(options.upstream_timeout);
      req.eager(true);  // Each put() parses as much of the body as the buffer holds.
      for (;;) {
        buffer.consume(req.put(buffer.data(), ec));
        if (req.is_done() || (ec && ec != http::error::need_more)) break;
        ec = {};
        auto [rec, got] = co_await Io(stream).async_read_some(buffer.prepare(kRelayChunk), kTuple);
        if (rec) {
          ec = rec;
          break;
        }
        buffer.commit(got);
      }
      if (ec == http::error::body_limit) {
        co_await Reply(stream, x.version, http::status::payload_too_large,
                       "request body too large\n", false);
        break;
      }
      if (ec) break;
    }
    bool keep = false;
    if (to.backend) {
      EndUpstreamHead(c.out, req.verb, c.request.body.size());
      x.request = c.out;
      x.body = c.request.body;
      keep = co_await Forward(w, stream, buffer, x, *to.backend, c);
    } else {
      keep = co_await Reply(stream, x.version, to.refusal, to.text, x.client_keep);
    }
    if (!keep) break;
  }
  boost::system::error_code ignored;
  Socket(stream).shutdown(tcp::socket::shutdown_send, ignored);
  Socket(stream).close(ignored);
}

std::unique_ptr<Upstream> IngressProxy::Impl::TakeIdle(Worker& w, const std::string& target) {
  auto it = w.idle.find(target);
  if (it == w.idle.end() || it->second.empty()) return nullptr;
  std::unique_ptr<Upstream> up = std::move(it->second.back());
  it->second.pop_back();
  return up;
}

asio::awaitable<std::unique_ptr<Upstream>> IngressProxy::Impl::Connect(Worker& w,
                                                                       const std::string& target) {
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
  auto it = w.idle.find(target);
  if (it == w.idle.end())
    it = w.idle.emplace(target, std::vector<std::unique_ptr<Upstream>>{}).first;
  if (it->second.size() < kIdlePerTarget) it->second.push_back(std::move(up));
}

asio::awaitable<IngressProxy::Impl::Answer> IngressProxy::Impl::Ask(
    Worker& w, std::string_view request, std::string_view body, const Backend& backend,
    bool head_method, std::optional<AnswerHead>& head, AnswerHead::Storage& storage,
    Deadline& deadline) {
  Answer a;
  const size_t n = backend.targets.size();
  const size_t first = backend.next.fetch_add(1, std::memory_order_relaxed);
  for (size_t attempt = 0; attempt < std::min<size_t>(n, 3) + 1; ++attempt) {
    const std::string& target = backend.targets[(first + attempt) % n];
    std::unique_ptr<Upstream> up = TakeIdle(w, target);
    const bool pooled = up != nullptr;
    if (!up) {
      up = co_await Connect(w, target);
    }
    if (!up) continue;  // Refused or timed out: the next endpoint.
    tcp::socket& s = up->stream.socket();
    deadline.Arm(options.upstream_timeout, &s);
    std::array<asio::const_buffer, 2> out{asio::buffer(request), asio::buffer(body)};
    auto [wec, written] = co_await asio::async_write(s, out, kTuple);
    boost::system::error_code rec;
    size_t head_bytes = 0;
    if (!wec) {
      do {  // Interim 1xx answers (other than 101) are not the response.
        up->buffer.consume(head_bytes);
        head.emplace(storage);
        head->body_limit(boost::none);  // Bounded by the caller: held whole only when small.
        head->skip(head_method);
        deadline.Arm(options.upstream_timeout, &s);
        while ((head_bytes = ParseBuffered(*head, up->buffer, rec)) == 0 && !rec) {
          auto [e, got] = co_await s.async_read_some(up->buffer.prepare(8192), kTuple);
          if (e) {
            rec = ReadError(e, up->buffer);
            break;
          }
          up->buffer.commit(got);
        }
      } while (!rec && head->status / 100 == 1 && head->status != 101);
    }
    deadline.Disarm();
    if (wec || rec) {
      if (deadline.expired()) {
        a.failure = http::status::gateway_timeout;
        co_return a;
      }
      if (pooled) {  // The backend closed an idle connection: once more on a fresh one.
        --attempt;
        w.idle.erase(target);
      }
      continue;
    }
    a.target = &target;
    a.up = std::move(up);
    a.head_bytes = head_bytes;
    co_return a;
  }
  a.failure = http::status::bad_gateway;
  co_return a;
}

std::unique_ptr<http::response_parser<http::empty_body>> IngressProxy::Impl::BeastAnswer(
    Answer& a, bool head_method) {
  auto parser = std::make_unique<http::response_parser<http::empty_body>>();
  parser->header_limit(kHeaderLimit);
  parser->body_limit(boost::none);
  parser->skip(head_method);
  parser->eager(false);
  boost::system::error_code ec;  // The head parsed once already: it parses again.
  parser->put(asio::const_buffer(a.up->buffer.data().data(), a.head_bytes), ec);
  a.up->buffer.consume(a.head_bytes);
  return parser;
}

namespace {

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

template <class Stream>
asio::awaitable<bool> IngressProxy::Impl::Forward(Worker& w, Stream& client,
                                                  beast::flat_buffer& client_buffer,
                                                  const Exchange& x, const Backend& backend,
                                                  ClientState& c) {
  const unsigned version = x.version;
  std::optional<AnswerHead> head;
  Answer a = co_await Ask(w, x.request, x.body, backend, x.head_method, head, c.answer, c.deadline);
  if (a.head_bytes == 0) {
    if (a.failure == http::status::gateway_timeout) {
      co_return co_await Reply(client, version, a.failure, "gateway timeout\n", false);
    }
    co_return co_await Reply(client, version, a.failure, "bad gateway\n", x.client_keep);
  }
  Upstream& up = *a.up;
  beast::flat_buffer& upbuf = up.buffer;
  const unsigned status = head->status;
  const auto length = head->content_length();
  const bool framed =
      head->chunked() || length.has_value() || x.head_method || status == 204 || status == 304;
  const bool upstream_keep = head->keep_alive() && framed;
  bool keep = x.client_keep;
  if (status != 101 && !head->chunked() && (head->is_done() || (length && *length <= kSmallBody))) {
    // Small (most answers): read whole, written back with its head in one call.
    const size_t whole = a.head_bytes + (head->is_done() ? 0 : static_cast<size_t>(*length));
    while (upbuf.size() < whole) {
      c.deadline.Arm(options.upstream_timeout, &up.stream.socket());
      auto [rec, got] =
          co_await up.stream.socket().async_read_some(upbuf.prepare(whole - upbuf.size()), kTuple);
      if (rec) {
        co_return co_await Reply(client, version, http::status::bad_gateway, "bad gateway\n",
                                 false);
      }
      upbuf.commit(got);
    }
    const char* base = static_cast<const char*>(upbuf.data().data());
    c.out.clear();
    AppendClientHead(c.out, version, status, head->View(base, head->reason),
                     ParsedFields<false>{*head, base}, keep);
    std::array<asio::const_buffer, 2> out{asio::buffer(c.out),
                                          asio::buffer(base + a.head_bytes, whole - a.head_bytes)};
    c.deadline.Arm(options.upstream_timeout);
    auto [wec, written] = co_await asio::async_write(Io(client), out, kTuple);
    c.deadline.Disarm();
    upbuf.consume(whole);
    if (wec) co_return false;
    if (upstream_keep) Release(w, *a.target, std::move(a.up));
    co_return keep;
  }
  c.deadline.Disarm();  // The rest is Beast's, with its streams' own timers.
  auto parser = BeastAnswer(a, x.head_method);
  if (status == 101) {
    if (x.upgrade.empty()) {  // Not asked for: not passed on.
      co_return co_await Reply(client, version, http::status::bad_gateway, "bad gateway\n", false);
    }
    // Switched: the answer as it is, then bytes both ways until either side ends.
    http::response<http::empty_body> res = parser->release();
    beast::get_lowest_layer(client).expires_after(options.upstream_timeout);
    if (auto [cec, n] = co_await http::async_write(client, res, kTuple); cec) co_return false;
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
  // Large, chunked or ended by the backend's close: streamed through a fixed buffer.
  http::response_parser<http::buffer_body> stream(std::move(*parser));
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
    auto [cec, n] = co_await http::async_write(client, sr, kTuple);
    if (cec == http::error::need_buffer) cec = {};
    if (cec) co_return false;
  } while (!sr.is_done());
  if (!clean) co_return false;  // The client got a cut answer: it must see the close.
  if (upstream_keep && stream.is_done()) Release(w, *a.target, std::move(a.up));
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
  for (auto& w : self->workers) self->Spawn(*w, self->Sweep(*w));
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
  impl_->snapshot_version.fetch_add(1, std::memory_order_release);
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
