// HTTP/2 to clients (RFC 9113), framed by Debian's libnghttp2: on the HTTPS
// port when the client offers "h2" by ALPN, on the HTTP port when it starts
// with the HTTP/2 connection preface (h2c with prior knowledge). Each stream
// is one request, relayed to a backend over HTTP/1.1 exactly as an HTTP/1.1
// client's (IngressProxy::Impl::Ask: the same endpoint choice, retries and
// headers), and its answer streamed back as DATA frames under the client's
// flow control: at most kStreamBuffer of an answer waits in kiso per stream,
// the backend is read no faster than the client takes it.
//
// One connection = a reader (bytes in → nghttp2_session_mem_recv), a writer
// (nghttp2_session_mem_send → bytes out, woken by Kick()) and a coroutine
// per request, all on the connection's worker thread: nothing here is
// shared across threads. Bounded: 128 concurrent streams, 64 KiB of header
// fields per request (431), `max_body` of request bodies held per connection
// (413).
#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cstring>

#include "network/ingress/proxy_impl.h"

namespace kiso::network::ingress {

namespace {

constexpr size_t kStreamBuffer = size_t{256} << 10;
constexpr uint32_t kMaxStreams = 128;
constexpr size_t kWriteBatch = size_t{64} << 10;

struct H2Stream {
  explicit H2Stream(asio::io_context& ioc, int32_t stream_id) : id(stream_id), drained(ioc) {}
  int32_t id;
  http::request<http::string_body> req;
  std::string method, path, authority;
  std::string cookies;  // HTTP/2 may split them into fields; HTTP/1.1 has one.
  size_t header_bytes = 0;
  bool headers_too_large = false;
  bool body_too_large = false;
  bool started = false;
  // The answer on its way out: bytes not framed yet, from `offset` on.
  std::string pending;
  size_t offset = 0;
  bool answer_done = false;               // All of the answer is in `pending`.
  bool closed = false;                    // Reset or ended: its coroutine stops.
  asio::steady_timer drained;             // The coroutine waits here while `pending` is full.
  beast::tcp_stream* upstream = nullptr;  // Being read; cancelled when the stream closes.
  size_t Waiting() const { return pending.size() - offset; }
};

struct H2Connection : std::enable_shared_from_this<H2Connection> {
  H2Connection(IngressProxy::Impl* i, Worker* wk, bool tls, std::string ip)
      : impl(i), worker(wk), tls_listener(tls), client_ip(std::move(ip)), kick(wk->ioc) {}
  ~H2Connection() { nghttp2_session_del(session); }
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  void Kick() { kick.cancel(); }
  // The connection ended: every stream's coroutine stops.
  void Close() {
    closed = true;
    for (auto& [id, s] : streams) Stop(*s);
    Kick();
  }
  static void Stop(H2Stream& s) {
    s.closed = true;
    s.drained.cancel();
    if (s.upstream) s.upstream->cancel();
  }

  nghttp2_session* session = nullptr;
  IngressProxy::Impl* impl;
  Worker* worker;
  bool tls_listener;
  std::string client_ip;
  asio::steady_timer kick;  // The writer waits here for something to send.
  std::map<int32_t, std::shared_ptr<H2Stream>> streams;  // Until nghttp2 closes them.
  size_t body_bytes = 0;                                 // Request bodies held, all streams.
  bool closed = false;
};

H2Stream* StreamOf(nghttp2_session* session, int32_t id) {
  return static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(session, id));
}

ssize_t ReadAnswer(nghttp2_session* /*session*/, int32_t /*id*/, uint8_t* buf, size_t length,
                   uint32_t* flags, nghttp2_data_source* source, void* /*user*/) {
  auto* s = static_cast<H2Stream*>(source->ptr);
  const size_t n = std::min(length, s->Waiting());
  if (n == 0 && !s->answer_done) return NGHTTP2_ERR_DEFERRED;  // Resumed when more comes.
  std::memcpy(buf, s->pending.data() + s->offset, n);
  s->offset += n;
  if (s->Waiting() == 0) {
    s->pending.clear();
    s->offset = 0;
    if (s->answer_done) *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  if (s->Waiting() < kStreamBuffer / 2) s->drained.cancel();  // Room: read the backend on.
  return static_cast<ssize_t>(n);
}

// Submits the answer's head; its body follows from `pending` (ReadAnswer).
void Submit(H2Connection& c, H2Stream& s, unsigned status, const http::fields& fields, bool body) {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back(":status", std::to_string(status));
  for (const auto& f : fields) {
    std::string name(f.name_string());
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (name == "transfer-encoding") continue;  // Framing is HTTP/2's own.
    headers.emplace_back(std::move(name), std::string(f.value()));
  }
  std::vector<nghttp2_nv> nv;
  nv.reserve(headers.size());
  for (auto& [name, value] : headers) {
    nv.push_back({reinterpret_cast<uint8_t*>(name.data()), reinterpret_cast<uint8_t*>(value.data()),
                  name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = ReadAnswer;
  if (nghttp2_submit_response(c.session, s.id, nv.data(), nv.size(), body ? &provider : nullptr) !=
      0) {
    nghttp2_submit_rst_stream(c.session, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
  }
  c.Kick();
}

// A short answer of kiso's own (404, 503, 502…).
void SubmitText(H2Connection& c, H2Stream& s, http::status status, std::string_view text) {
  http::fields f;
  f.set(http::field::content_type, "text/plain; charset=utf-8");
  f.set(http::field::content_length, std::to_string(text.size()));
  s.pending.assign(text);
  s.offset = 0;
  s.answer_done = true;
  Submit(c, s, static_cast<unsigned>(status), f, true);
}

asio::awaitable<void> Respond(std::shared_ptr<H2Connection> c, std::shared_ptr<H2Stream> s) {
  IngressProxy::Impl& impl = *c->impl;
  if (s->headers_too_large) {
    SubmitText(*c, *s, http::status::request_header_fields_too_large,
               "request header fields too large\n");
    co_return;
  }
  if (s->body_too_large) {
    SubmitText(*c, *s, http::status::payload_too_large, "request body too large\n");
    co_return;
  }
  if (s->method == "CONNECT") {  // No tunnels through the ingress.
    SubmitText(*c, *s, http::status::method_not_allowed, "method not allowed\n");
    co_return;
  }
  http::request<http::string_body>& req = s->req;
  req.version(11);
  req.method_string(s->method);
  req.target(s->path);
  if (!s->authority.empty()) req.set(http::field::host, s->authority);
  if (!s->cookies.empty()) req.set(http::field::cookie, s->cookies);
  Routed to = Route(impl.snapshot.load(), req[http::field::host], s->path);
  if (!to.backend) {
    SubmitText(*c, *s, to.refusal, to.text);
    co_return;
  }
  const bool head = req.method() == http::verb::head;
  IngressProxy::Impl::PrepareRequest(req, c->tls_listener, c->client_ip);
  IngressProxy::Impl::Answer a = co_await impl.Ask(*c->worker, req, *to.backend, head);
  if (s->closed) co_return;
  if (!a.parser) {
    SubmitText(*c, *s, a.failure,
               a.failure == http::status::gateway_timeout ? "gateway timeout\n" : "bad gateway\n");
    co_return;
  }
  Upstream& up = *a.up;
  auto& parser = *a.parser;
  const int status = parser.get().result_int();
  if (status == 101) {  // HTTP/2 has no upgrade; nothing asked for one.
    SubmitText(*c, *s, http::status::bad_gateway, "bad gateway\n");
    co_return;
  }
  const auto length = parser.content_length();
  const bool framed =
      parser.chunked() || length.has_value() || head || status == 204 || status == 304;
  const bool upstream_keep = parser.keep_alive() && framed;
  http::fields fields = parser.get().base();
  StripHopByHop(fields);
  if (parser.is_done()) {  // No body (HEAD, 204, 304, Content-Length: 0).
    Submit(*c, *s, static_cast<unsigned>(status), fields, false);
    if (upstream_keep) impl.Release(*c->worker, a.target, std::move(a.up));
    co_return;
  }
  s->answer_done = false;
  Submit(*c, *s, static_cast<unsigned>(status), fields, true);
  http::response_parser<http::buffer_body> body(std::move(parser));
  std::vector<char> chunk(kRelayChunk);
  bool clean = true;
  while (!body.is_done()) {
    if (s->Waiting() >= kStreamBuffer) {  // The client is slower: wait for room.
      s->drained.expires_at(asio::steady_timer::time_point::max());
      co_await s->drained.async_wait(kTuple);
      if (s->closed) co_return;
      continue;
    }
    body.get().body().data = chunk.data();
    body.get().body().size = chunk.size();
    up.stream.expires_after(impl.options.upstream_timeout);
    s->upstream = &up.stream;
    auto [ec, n] = co_await http::async_read(up.stream, up.buffer, body, kTuple);
    s->upstream = nullptr;
    if (s->closed) co_return;
    if (ec == http::error::need_buffer) ec = {};
    const bool ended = ec == http::error::end_of_stream && !framed;  // Close-delimited.
    if (ec && !ended) {
      clean = false;
      break;
    }
    s->pending.append(chunk.data(), chunk.size() - body.get().body().size);
    nghttp2_session_resume_data(c->session, s->id);
    c->Kick();
    if (ended) break;
  }
  if (!clean) {  // A cut answer must look cut: the stream is reset, not ended.
    nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    c->Kick();
    co_return;
  }
  s->answer_done = true;
  nghttp2_session_resume_data(c->session, s->id);
  c->Kick();
  if (upstream_keep && body.is_done()) impl.Release(*c->worker, a.target, std::move(a.up));
}

int OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<H2Connection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto s = std::make_shared<H2Stream>(c->worker->ioc, frame->hd.stream_id);
  nghttp2_session_set_stream_user_data(session, s->id, s.get());
  c->streams[s->id] = std::move(s);
  return 0;
}

int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name_data,
             size_t name_size, const uint8_t* value_data, size_t value_size, uint8_t /*flags*/,
             void* /*user*/) {
  H2Stream* s = StreamOf(session, frame->hd.stream_id);
  if (!s || frame->hd.type != NGHTTP2_HEADERS) return 0;  // Trailers are dropped.
  s->header_bytes += name_size + value_size + 32;         // RFC 9113's accounting.
  if (s->header_bytes > kHeaderLimit) {
    s->headers_too_large = true;
    return 0;
  }
  std::string_view name(reinterpret_cast<const char*>(name_data), name_size);
  std::string_view value(reinterpret_cast<const char*>(value_data), value_size);
  if (name == ":method") {
    s->method = value;
  } else if (name == ":path") {
    s->path = value;
  } else if (name == ":authority") {
    s->authority = value;
  } else if (name == "cookie") {
    if (!s->cookies.empty()) s->cookies += "; ";
    s->cookies += value;
  } else if (!name.starts_with(':')) {
    s->req.insert(name, value);
  }
  return 0;
}

int OnData(nghttp2_session* session, uint8_t /*flags*/, int32_t id, const uint8_t* data,
           size_t size, void* user) {
  auto* c = static_cast<H2Connection*>(user);
  H2Stream* s = StreamOf(session, id);
  if (!s || s->body_too_large) return 0;
  if (c->body_bytes + size > c->impl->options.max_body) {
    s->body_too_large = true;  // Read and dropped; answered 413 at its end.
    c->body_bytes -= s->req.body().size();
    s->req.body().clear();
    s->req.body().shrink_to_fit();
    return 0;
  }
  c->body_bytes += size;
  s->req.body().append(reinterpret_cast<const char*>(data), size);
  return 0;
}

int OnFrame(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<H2Connection*>(user);
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0)
    return 0;
  auto it = c->streams.find(frame->hd.stream_id);
  if (it == c->streams.end() || it->second->started) return 0;
  it->second->started = true;  // The request is whole.
  c->impl->Spawn(*c->worker, Respond(c->shared_from_this(), it->second));
  return 0;
}

int OnStreamClose(nghttp2_session* /*session*/, int32_t id, uint32_t /*error*/, void* user) {
  auto* c = static_cast<H2Connection*>(user);
  auto it = c->streams.find(id);
  if (it == c->streams.end()) return 0;
  c->body_bytes -= std::min(c->body_bytes, it->second->req.body().size());
  H2Connection::Stop(*it->second);
  c->streams.erase(it);
  return 0;
}

}  // namespace

int SelectAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_size,
               const unsigned char* in, unsigned int in_size, void* /*arg*/) {
  static const unsigned char kOurs[] = "\x02h2\x08http/1.1";
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_size, kOurs, sizeof kOurs - 1, in, in_size) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // No protocol in common: HTTP/1.1 without ALPN.
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

template <class Stream>
asio::awaitable<void> IngressProxy::Impl::ServeHttp2(Worker& w, Stream& stream, bool tls_listener,
                                                     std::string client_ip, std::string initial) {
  auto c = std::make_shared<H2Connection>(this, &w, tls_listener, client_ip);
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, OnData);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, OnFrame);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, OnStreamClose);
  int made = nghttp2_session_server_new(&c->session, callbacks, c.get());
  nghttp2_session_callbacks_del(callbacks);
  if (made != 0) co_return;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1U << 20},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(kHeaderLimit)},
  };
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, std::size(settings));

  auto reader = [](H2Connection& c, Stream& stream, std::string initial, std::chrono::seconds idle,
                   std::chrono::seconds busy) -> asio::awaitable<void> {
    std::vector<uint8_t> buf(kRelayChunk);
    if (!initial.empty() &&
        nghttp2_session_mem_recv(c.session, reinterpret_cast<const uint8_t*>(initial.data()),
                                 initial.size()) < 0) {
      c.Close();
      co_return;
    }
    c.Kick();
    while (!c.closed) {
      // An idle connection ends after the idle timeout; one with requests open waits longer.
      beast::get_lowest_layer(stream).expires_after(c.streams.empty() ? idle : busy);
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), kTuple);
      if (ec || c.closed) break;
      if (nghttp2_session_mem_recv(c.session, buf.data(), n) < 0) break;  // GOAWAY is queued.
      c.Kick();
    }
    c.Close();
  };
  auto writer = [](H2Connection& c, Stream& stream,
                   std::chrono::seconds timeout) -> asio::awaitable<void> {
    std::string out;
    for (;;) {
      out.clear();
      const uint8_t* data = nullptr;
      ssize_t n = 0;
      while (out.size() < kWriteBatch && (n = nghttp2_session_mem_send(c.session, &data)) > 0)
        out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      if (!out.empty()) {
        beast::get_lowest_layer(stream).expires_after(timeout);
        auto [ec, m] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
        if (ec) break;
        continue;
      }
      if (n < 0 || c.closed ||
          (!nghttp2_session_want_read(c.session) && !nghttp2_session_want_write(c.session)))
        break;
      c.kick.expires_at(asio::steady_timer::time_point::max());
      co_await c.kick.async_wait(kTuple);
    }
    c.Close();
    boost::system::error_code ignored;
    Socket(stream).shutdown(tcp::socket::shutdown_both, ignored);  // Ends the reader's read.
  };
  using asio::experimental::awaitable_operators::operator&&;
  co_await (reader(*c, stream, initial, options.idle_timeout, options.upstream_timeout) &&
            writer(*c, stream, options.upstream_timeout));
}

template asio::awaitable<void> IngressProxy::Impl::ServeHttp2(Worker&, beast::tcp_stream&, bool,
                                                              std::string, std::string);
template asio::awaitable<void> IngressProxy::Impl::ServeHttp2(Worker&,
                                                              beast::ssl_stream<beast::tcp_stream>&,
                                                              bool, std::string, std::string);

}  // namespace kiso::network::ingress
