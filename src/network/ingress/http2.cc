// HTTP/2 to clients (RFC 9113), framed by the shared http2::ServerSession
// (Debian's libnghttp2, as the API server's): on the HTTPS
// port when the client offers "h2" by ALPN, on the HTTP port when it starts
// with the HTTP/2 connection preface (h2c with prior knowledge). Each stream
// is one request, relayed to a backend over HTTP/1.1 exactly as an HTTP/1.1
// client's (IngressProxy::Impl::Ask: the same endpoint choice, retries and
// headers), and its answer streamed back as DATA frames under the client's
// flow control: at most kStreamBuffer of an answer waits in kiso per stream,
// the backend is read no faster than the client takes it.
//
// One connection = a reader (bytes in → ServerSession::Receive), a writer
// (ServerSession::Send → bytes out, woken by Kick()) and a coroutine
// per request, all on the connection's worker thread: nothing here is
// shared across threads. Bounded: 128 concurrent streams, 64 KiB of header
// fields per request (431), `max_body` of request bodies held per connection
// (413).
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "common/http2_session.h"
#include "network/ingress/proxy_impl.h"

namespace kiso::network::ingress {

namespace {

constexpr size_t kStreamBuffer = size_t{256} << 10;
constexpr uint32_t kMaxStreams = 128;
constexpr size_t kWriteBatch = size_t{64} << 10;

// A request's relay: the stream (its request, the answer on its way out) and
// what the relay waits on.
struct H2Stream {
  H2Stream(asio::io_context& ioc, std::shared_ptr<http2::Stream> st)
      : s(std::move(st)), drained(ioc) {}
  std::shared_ptr<http2::Stream> s;
  asio::steady_timer drained;             // The relay waits here while the answer's buffer is full.
  beast::tcp_stream* upstream = nullptr;  // Being read; cancelled when the stream closes.
};

struct H2Connection : std::enable_shared_from_this<H2Connection> {
  H2Connection(IngressProxy::Impl* i, Worker* wk, bool tls, std::string ip)
      : impl(i), worker(wk), tls_listener(tls), client_ip(std::move(ip)), kick(wk->ioc) {}

  void Kick() { kick.cancel(); }
  // The connection ended: every stream's relay stops.
  void Close() {
    closed = true;
    session->CloseAll();
    Kick();
  }

  std::unique_ptr<http2::ServerSession> session;
  IngressProxy::Impl* impl;
  Worker* worker;
  bool tls_listener;
  std::string client_ip;
  asio::steady_timer kick;  // The writer waits here for something to send.
  bool closed = false;
};

void Submit(H2Connection& c, http2::Stream& s, unsigned status, const http::fields& fields,
            bool body) {
  http2::Fields headers;
  for (const auto& f : fields) headers.emplace_back(f.name_string(), f.value());
  c.session->Respond(s, status, headers, body);
  c.Kick();
}

// A short answer of kiso's own (404, 503, 502…).
void SubmitText(H2Connection& c, http2::Stream& s, http::status status, std::string_view text) {
  http::fields f;
  f.set(http::field::content_type, "text/plain; charset=utf-8");
  f.set(http::field::content_length, std::to_string(text.size()));
  s.pending.assign(text);
  s.offset = 0;
  s.done = true;
  Submit(c, s, static_cast<unsigned>(status), f, true);
}

asio::awaitable<void> Respond(std::shared_ptr<H2Connection> c, std::shared_ptr<H2Stream> x) {
  IngressProxy::Impl& impl = *c->impl;
  http2::Stream* s = x->s.get();
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
  std::string_view host = s->authority;
  for (const auto& [name, value] : s->fields) {
    if (host.empty() && name == "host") host = value;
  }
  Routed to = Route(impl.RoutesOf(*c->worker), host, s->path);
  if (!to.backend) {
    SubmitText(*c, *s, to.refusal, to.text);
    co_return;
  }
  const http::verb method = http::string_to_verb(s->method);
  const bool head = method == http::verb::head;
  const std::string request_body = c->session->TakeBody(*s);
  std::string request;
  AppendUpstreamHead(request, {s->method, s->path, host, {}, c->client_ip, c->tls_listener},
                     PairFields{s->fields});
  EndUpstreamHead(request, method, request_body.size());
  std::optional<AnswerHead> answer_head;
  AnswerHead::Storage storage;
  Deadline deadline(*c->worker, nullptr);
  IngressProxy::Impl::Answer a = co_await impl.Ask(*c->worker, request, request_body, *to.backend,
                                                   head, answer_head, storage, deadline);
  if (s->closed) co_return;
  if (a.head_bytes == 0) {
    SubmitText(*c, *s, a.failure,
               a.failure == http::status::gateway_timeout ? "gateway timeout\n" : "bad gateway\n");
    co_return;
  }
  Upstream& up = *a.up;
  const auto answer = IngressProxy::Impl::BeastAnswer(a, head);
  auto& parser = *answer;
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
    if (upstream_keep) impl.Release(*c->worker, *a.target, std::move(a.up));
    co_return;
  }
  s->done = false;
  Submit(*c, *s, static_cast<unsigned>(status), fields, true);
  http::response_parser<http::buffer_body> body(std::move(parser));
  std::vector<char> chunk(kRelayChunk);
  bool clean = true;
  while (!body.is_done()) {
    if (s->Waiting() >= kStreamBuffer) {  // The client is slower: wait for room.
      x->drained.expires_at(asio::steady_timer::time_point::max());
      co_await x->drained.async_wait(kTuple);
      if (s->closed) co_return;
      continue;
    }
    body.get().body().data = chunk.data();
    body.get().body().size = chunk.size();
    up.stream.expires_after(impl.options.upstream_timeout);
    x->upstream = &up.stream;
    auto [ec, n] = co_await http::async_read(up.stream, up.buffer, body, kTuple);
    x->upstream = nullptr;
    if (s->closed) co_return;
    if (ec == http::error::need_buffer) ec = {};
    const bool ended = ec == http::error::end_of_stream && !framed;  // Close-delimited.
    if (ec && !ended) {
      clean = false;
      break;
    }
    s->pending.append(chunk.data(), chunk.size() - body.get().body().size);
    c->session->Resume(*s);
    c->Kick();
    if (ended) break;
  }
  if (!clean) {  // A cut answer must look cut: the stream is reset, not ended.
    c->session->Reset(*s);
    c->Kick();
    co_return;
  }
  s->done = true;
  c->session->Resume(*s);
  c->Kick();
  if (upstream_keep && body.is_done()) impl.Release(*c->worker, *a.target, std::move(a.up));
}

// A whole request: relayed on the connection's worker.
void OnRequest(const std::shared_ptr<H2Connection>& c, const std::shared_ptr<http2::Stream>& s) {
  auto x = std::make_shared<H2Stream>(c->worker->ioc, s);
  std::weak_ptr<H2Stream> weak = x;
  s->on_sent = [weak] {
    auto x = weak.lock();
    if (x && x->s->Waiting() < kStreamBuffer / 2)
      x->drained.cancel();  // Room: read the backend on.
  };
  s->on_close = [weak] {
    if (auto x = weak.lock()) {
      x->drained.cancel();
      if (x->upstream) x->upstream->cancel();
    }
  };
  c->impl->Spawn(*c->worker, Respond(c, std::move(x)));
}

}  // namespace

template <class Stream>
asio::awaitable<void> IngressProxy::Impl::ServeHttp2(Worker& w, Stream& stream, bool tls_listener,
                                                     std::string client_ip, std::string initial) {
  auto c = std::make_shared<H2Connection>(this, &w, tls_listener, client_ip);
  http2::Limits limits;
  limits.max_streams = kMaxStreams;
  limits.header_bytes = kHeaderLimit;
  limits.body_bytes = options.max_body;
  std::weak_ptr<H2Connection> weak = c;
  c->session = http2::ServerSession::Make(limits, [weak](const std::shared_ptr<http2::Stream>& s) {
    if (auto c = weak.lock()) OnRequest(c, s);
  });
  if (!c->session) co_return;

  auto reader = [](H2Connection& c, Stream& stream, std::string initial, std::chrono::seconds idle,
                   std::chrono::seconds busy) -> asio::awaitable<void> {
    std::vector<uint8_t> buf(kRelayChunk);
    if (!initial.empty() && !c.session->Receive(initial.data(), initial.size())) {
      c.Close();
      co_return;
    }
    c.Kick();
    while (!c.closed) {
      // An idle connection ends after the idle timeout; one with requests open waits longer.
      beast::get_lowest_layer(stream).expires_after(c.session->open_streams() == 0 ? idle : busy);
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), kTuple);
      if (ec || c.closed) break;
      if (!c.session->Receive(buf.data(), n)) break;  // GOAWAY is queued.
      c.Kick();
    }
    c.Close();
  };
  auto writer = [](H2Connection& c, Stream& stream,
                   std::chrono::seconds timeout) -> asio::awaitable<void> {
    std::string out;
    for (;;) {
      out.clear();
      bool ok = c.session->Send(out, kWriteBatch);
      if (!out.empty()) {
        beast::get_lowest_layer(stream).expires_after(timeout);
        auto [ec, m] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
        if (ec) break;
        continue;
      }
      if (!ok || c.closed || !c.session->Alive()) break;
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
