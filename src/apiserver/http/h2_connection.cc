// The API server's HTTP/2 (RFC 9113): one connection's frames read and
// written on its thread by a reader and a writer (chains of completion
// handlers) around http2::ServerSession; every request handled on the worker
// pool (a handler may block: the store, the fair gate), its answer handed back to the
// connection's thread to be framed. What each kind of answer costs:
//   - an object or a Status: its bytes, until the client has taken them;
//   - a watch (Response::events): no thread at all: the cache's wake-up posts
//     a pull to this thread, which frames what the client's flow control lets
//     through, at most kStreamBuffer waiting per stream; a watcher too slow
//     for the cache's window is ended by the cache (410), not buffered here;
//   - a stream written as it is read (Response::stream: logs that follow, in
//     process) or relayed from an agent's tunnel: a thread of its own (or the
//     tunnel's) that blocks while kStreamBuffer waits unsent.
// Upgrades (exec, attach, port-forward, tunnels) need HTTP/1.1, which every
// client asks for them (client-go dials those connections with ALPN
// http/1.1): asked over HTTP/2 they are refused with 400.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "api/errors.h"
#include "apiserver/http/http_connection.h"
#include "common/http2_session.h"
#include "common/recover.h"
#include "common/worker_pool.h"

namespace kiso::apiserver {

namespace asio = boost::asio;

namespace {

constexpr size_t kStreamBuffer = size_t{256} << 10;
constexpr size_t kWriteBatch = size_t{64} << 10;
constexpr size_t kReadChunk = size_t{16} << 10;
// What a stopping server gives a connection's answers under way.
constexpr auto kDrainTime = std::chrono::seconds(5);

class BlockingWriter;

// One request's answer on the connection's side (its thread only).
struct Exchange {
  std::shared_ptr<http2::Stream> stream;
  std::optional<FairGate::Ticket> seat;  // Held until the answer is out.
  std::shared_ptr<EventStream> events;
  std::unique_ptr<asio::steady_timer> timer;  // The events' next pull.
  PullTime pull_at;                           // When `timer` is set to pull next.
  bool waiting_for_room = false;
  std::shared_ptr<BlockingWriter> writer;
  size_t appended = 0;               // Bytes added to the stream's pending, all told.
  std::unique_ptr<BodyReader> body;  // A body of shared parts, read as room comes.
};

struct H2Connection : std::enable_shared_from_this<H2Connection> {
  H2Connection(asio::io_context& i, SslStream& s, const HttpHandler& h, const ConnectionOptions& o,
               WorkerPool& w, std::string r)
      : io(i),
        stream(s),
        handler(h),
        options(o),
        workers(w),
        remote(std::move(r)),
        kick(i),
        watchdog(i) {}

  asio::io_context& io;
  SslStream& stream;
  const HttpHandler& handler;
  const ConnectionOptions& options;
  WorkerPool& workers;
  std::string remote;
  std::unique_ptr<http2::ServerSession> session;
  asio::steady_timer kick;      // The writer waits here for something to send.
  asio::steady_timer watchdog;  // Ends a connection idle too long.
  std::chrono::steady_clock::time_point last_read = std::chrono::steady_clock::now();
  // When the watchdog last saw a stream open: the idle time counts from the
  // later of this and the last frame read, so that a connection whose client
  // only read a long stream (a watch) is not idle the moment that stream ends.
  std::chrono::steady_clock::time_point last_busy = std::chrono::steady_clock::now();
  std::vector<uint8_t> in = std::vector<uint8_t>(kReadChunk);  // What a read fills.
  std::string out;                                             // What a write sends.
  bool closed = false;
  // The server is stopping: nothing more is read, watches end, answers under
  // way go out (until drain_deadline at most), then a GOAWAY, then the end.
  bool draining = false;
  bool goaway_sent = false;
  std::chrono::steady_clock::time_point drain_deadline;
  std::vector<std::weak_ptr<Exchange>> watches;  // Ended by Drain.
  size_t prune_watches_at = 64;

  // Requests handed to workers and not back yet: the connection (and the
  // io_context and stream it refers to) outlives them.
  std::mutex mu;
  std::condition_variable idle;
  int busy = 0;

  // Watches woken (from the cache's thread) and not pulled yet: one post to
  // this thread pulls all of them, however many one write woke.
  std::mutex wake_mu;
  std::vector<std::weak_ptr<Exchange>> woken;
  bool wake_posted = false;
  void Wake(std::weak_ptr<Exchange> x) {
    std::lock_guard lock(wake_mu);
    woken.push_back(std::move(x));
    if (wake_posted) return;
    wake_posted = true;
    asio::post(io, [this] { PumpWoken(); });
  }
  void PumpWoken() {
    std::vector<std::weak_ptr<Exchange>> batch;
    {
      std::lock_guard lock(wake_mu);
      batch.swap(woken);
      wake_posted = false;
    }
    for (auto& weak : batch) {
      if (auto x = weak.lock()) Pump(x);
    }
  }

  void Kick() { kick.cancel(); }
  void Drain() {
    draining = true;
    drain_deadline = std::chrono::steady_clock::now() + kDrainTime;
    for (auto& weak : watches) {
      if (auto x = weak.lock()) Finish(*x, true);  // What was pulled goes out first.
    }
    watches.clear();
    watchdog.cancel();  // It checks the deadline from now on.
    Kick();
  }
  void Close() {
    if (closed) return;
    closed = true;
    session->CloseAll();
    watchdog.cancel();
    Kick();
  }

  // What the stream's closing ends: the events, the writer, the seat.
  void Attach(const std::shared_ptr<Exchange>& x);
  void OnRequest(const std::shared_ptr<http2::Stream>& s);
  // The handler's answer, then the answer back to the connection's thread:
  // on a worker, or on that thread with a `seat` it was given at once.
  void Handle(const std::shared_ptr<http2::Stream>& s, Request req, bool long_running,
              bool mutating, std::optional<FairGate::Ticket> seat = std::nullopt);
  void Deliver(const std::shared_ptr<Exchange>& x, Response out);
  void Pump(const std::shared_ptr<Exchange>& x);
  // Moves more of x.body into the stream, up to kStreamBuffer waiting.
  void Fill(Exchange& x) {
    http2::Stream& s = *x.stream;
    if (s.closed || !x.body) return;
    while (s.Waiting() < kStreamBuffer && !x.body->Done()) {
      size_t room = kStreamBuffer - s.Waiting();
      size_t at = s.pending.size();
      s.pending.resize(at + room);
      s.pending.resize(at + x.body->Read(s.pending.data() + at, room));
    }
    if (x.body->Done()) {
      s.done = true;
      x.body.reset();
    }
    session->Resume(s);
    Kick();
  }
  void Append(Exchange& x, std::string_view data) {
    if (x.stream->closed || data.empty()) return;
    x.stream->pending.append(data);
    x.appended += data.size();
    session->Resume(*x.stream);
    Kick();
  }
  void Finish(Exchange& x, bool clean) {
    if (x.stream->closed) return;
    if (clean) {
      x.stream->done = true;
      session->Resume(*x.stream);
    } else {
      session->Reset(*x.stream);
    }
    Kick();
  }
  void Leave() {
    std::lock_guard lock(mu);
    if (--busy == 0) idle.notify_all();
  }
};

// A stream's writer on a blocking thread (a worker running Response::stream,
// or a tunnel's thread relaying an agent's answer): each write goes to the
// connection's thread, and a write waits while kStreamBuffer is unsent.
class BlockingWriter : public AnswerSink, public std::enable_shared_from_this<BlockingWriter> {
 public:
  // The connection waits for its writers as for its workers: a tunnel's
  // thread may write after the worker that started it is done.
  BlockingWriter(H2Connection* c, std::shared_ptr<Exchange> x) : c_(c), x_(std::move(x)) {
    std::lock_guard lock(c_->mu);
    ++c_->busy;
  }
  ~BlockingWriter() override { c_->Leave(); }
  BlockingWriter(const BlockingWriter&) = delete;
  BlockingWriter& operator=(const BlockingWriter&) = delete;

  void Head(int status, std::vector<std::pair<std::string, std::string>> headers) override {
    asio::post(c_->io, [c = c_, x = x_, status, headers = std::move(headers)] {
      c->session->Respond(*x->stream, static_cast<unsigned>(status), headers, true);
      c->Kick();
    });
  }
  bool Write(std::string_view data) override {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return closed_ || posted_ - sent_ < kStreamBuffer; });
    if (closed_) return false;
    posted_ += data.size();
    lock.unlock();
    asio::post(c_->io, [c = c_, x = x_, bytes = std::string(data)] { c->Append(*x, bytes); });
    return true;
  }
  bool Stopping() const override {
    std::lock_guard lock(mu_);
    return closed_ || (c_->options.stopping && c_->options.stopping->load());
  }
  void OnCancel(const std::function<void()>& cancel) override {
    bool now = false;
    {
      std::lock_guard lock(mu_);
      cancel_ = cancel;
      now = closed_;
    }
    if (now) cancel();
  }
  void End(bool clean) override {
    asio::post(c_->io, [c = c_, x = x_, clean] { c->Finish(*x, clean); });
  }

  // From the connection's thread.
  void Sent(size_t sent) {
    std::lock_guard lock(mu_);
    sent_ = sent;
    room_.notify_all();
  }
  void Close() {
    std::function<void()> cancel;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      cancel = std::move(cancel_);
      room_.notify_all();
    }
    if (cancel) cancel();
  }

 private:
  H2Connection* c_;  // Alive while any writer is (it waits for them).
  std::shared_ptr<Exchange> x_;
  mutable std::mutex mu_;
  std::condition_variable room_;
  size_t posted_ = 0;
  size_t sent_ = 0;
  bool closed_ = false;
  std::function<void()> cancel_;
};

api::ApiError NeedsHttp1() {
  return api::BadRequest(
      "upgrades (exec, attach, port-forward, tunnels) need an HTTP/1.1 connection, not HTTP/2");
}

http2::Fields HeadersOf(const Response& out) {
  http2::Fields h;
  h.reserve(out.headers.size() + 2);
  h.emplace_back("content-type", out.content_type);
  for (const auto& [k, v] : out.headers) h.emplace_back(k, v);
  return h;
}

void H2Connection::OnRequest(const std::shared_ptr<http2::Stream>& s) {
  auto refuse = [&](const api::ApiError& e) {
    auto x = std::make_shared<Exchange>();
    x->stream = s;
    Deliver(x, StatusAnswer(e));
  };
  if (s->headers_too_large) {
    api::ApiError e;
    e.code = 431;
    e.reason = "RequestHeaderFieldsTooLarge";
    e.message = "the request's header fields are larger than the limit of 64 KiB";
    return refuse(e);
  }
  if (s->body_too_large) {
    return refuse(api::RequestEntityTooLarge(fmt::format(
        "the request body is larger than the limit of {} bytes", options.max_body_bytes)));
  }
  if (s->method == "CONNECT") return refuse(NeedsHttp1());
  Request req = RequestOf(*session, *s);
  req.remote = remote;
  req.peer = options.peer;
  const bool long_running = LongRunning(s->path);
  const bool mutating = req.method != "GET" && req.method != "HEAD" && req.method != "OPTIONS";
  if (options.on_request) options.on_request();
  if (options.gate && !long_running && options.quick && *options.quick && (*options.quick)(req)) {
    // Handled here, on the connection's thread, when a seat is free now.
    if (auto seat = options.gate->TryEnter(options.flow, /*mutating=*/false)) {
      return Handle(s, std::move(req), long_running, mutating, std::move(seat));
    }
  }
  {
    std::lock_guard lock(mu);
    ++busy;
  }
  WorkerPool& pool =
      options.gate && !long_running && options.gated_workers ? *options.gated_workers : workers;
  pool.Run([this, s, req = std::move(req), long_running, mutating]() mutable {
    Handle(s, std::move(req), long_running, mutating);
    Leave();  // The last use of the connection here: it may end at once.
  });
}

void H2Connection::Handle(const std::shared_ptr<http2::Stream>& s, Request req, bool long_running,
                          bool mutating, std::optional<FairGate::Ticket> seat) {
  auto x = std::make_shared<Exchange>();
  x->stream = s;
  x->seat = std::move(seat);
  Response out;
  ThreadPriority priority;
  if (options.gate && !long_running && !x->seat) {
    x->seat = options.gate->Enter(options.flow, mutating);
    if (!x->seat) {
      // 429, as kube-apiserver's max-in-flight filter answers.
      asio::post(io, [this, x] { Deliver(x, StatusAnswer(api::TooManyRequests())); });
      return;
    }
    priority.Set(x->seat->crowded() && !mutating);
  }
  try {
    out = handler(req);
  } catch (...) {
    ReportRecovered(fmt::format("{} {}", remote, req.target), CurrentExceptionMessage());
    out = StatusAnswer(api::InternalError(std::string(CurrentExceptionMessage())));
  }
  priority.Set(false);
  if (out.relay || out.stream) {
    auto writer = std::make_shared<BlockingWriter>(this, x);
    asio::post(io, [this, x, writer] {
      x->writer = writer;
      Attach(x);
    });
    if (out.relay) return ForwardThrough(out.relay, req, writer);
    // A stream written as it is read (logs that follow) may last for hours:
    // a thread of its own, not one of the workers every request needs.
    writer->Head(out.status, HeadersOf(out));
    std::thread([writer = std::move(writer), stream = std::move(out.stream),
                 where = fmt::format("{} {}: a stream", remote, req.target)]() mutable {
      bool clean = true;
      try {
        stream(*writer);
      } catch (...) {
        ReportRecovered(where, CurrentExceptionMessage());
        clean = false;
      }
      writer->End(clean);
      stream = nullptr;
      writer.reset();  // Last: the connection may end once its writers have.
    }).detach();
    return;
  }
  asio::post(io, [this, x, out = std::move(out)]() mutable { Deliver(x, std::move(out)); });
}

void H2Connection::Attach(const std::shared_ptr<Exchange>& x) {
  if (x->stream->closed) {
    if (x->writer) x->writer->Close();
    x->writer.reset();
    return;
  }
  if (x->writer) {
    std::weak_ptr<Exchange> weak = x;
    x->stream->on_sent = [weak] {
      if (auto x = weak.lock(); x && x->writer) x->writer->Sent(x->appended - x->stream->Waiting());
    };
  }
  x->stream->on_close = [x] {
    if (x->events) x->events->Cancel();
    if (x->timer) x->timer->cancel();
    if (x->writer) x->writer->Close();
    x->writer.reset();  // It refers to the exchange.
    x->body.reset();
    x->seat.reset();
  };
}

// On the connection's thread: the answer's head, and its body or events.
void H2Connection::Deliver(const std::shared_ptr<Exchange>& x, Response out) {
  http2::Stream& s = *x->stream;
  if (s.closed) {
    if (out.events) out.events->Cancel();
    return;  // The client reset it, or left.
  }
  Attach(x);
  if (out.channels || out.accept_tunnel) out = StatusAnswer(NeedsHttp1());
  http2::Fields headers = HeadersOf(out);
  if (out.events) {
    x->events = std::move(out.events);
    x->timer = std::make_unique<asio::steady_timer>(io);
    session->Respond(s, static_cast<unsigned>(out.status), headers, true);
    std::weak_ptr<Exchange> weak = x;
    s.on_sent = [this, weak] {
      auto x = weak.lock();
      if (x && x->waiting_for_room && x->stream->Waiting() < kStreamBuffer / 2) {
        x->waiting_for_room = false;
        Pump(x);
      }
    };
    if (watches.size() >= prune_watches_at) {
      std::erase_if(watches, [](const auto& w) { return w.expired(); });
      prune_watches_at = std::max<size_t>(64, 2 * watches.size());
    }
    watches.push_back(weak);
    x->events->Start([this, weak] { Wake(weak); });
    Pump(x);
    Kick();
    return;
  }
  if (out.parts) {
    headers.emplace_back("content-length", std::to_string(out.BodySize()));
    x->body = std::make_unique<BodyReader>(out);
    std::weak_ptr<Exchange> weak = x;
    s.on_sent = [this, weak] {
      if (auto x = weak.lock(); x && x->body && x->stream->Waiting() < kStreamBuffer / 2) Fill(*x);
    };
    session->Respond(s, static_cast<unsigned>(out.status), headers, true);
    Fill(*x);
  } else if (out.body.empty()) {
    session->Respond(s, static_cast<unsigned>(out.status), headers, false);
  } else {
    headers.emplace_back("content-length", std::to_string(out.body.size()));
    s.pending = std::move(out.body);
    s.done = true;
    session->Respond(s, static_cast<unsigned>(out.status), headers, true);
  }
  Kick();
}

void H2Connection::Pump(const std::shared_ptr<Exchange>& x) {
  http2::Stream& s = *x->stream;
  if (draining) return Finish(*x, true);  // A watch that starts as the server stops.
  while (!s.closed && !s.done) {
    if (s.Waiting() >= kStreamBuffer) {
      x->waiting_for_room = true;  // on_sent pumps again.
      return;
    }
    EventStream::Pulled p = x->events->Pull(kStreamBuffer - s.Waiting());
    Append(*x, p.data);
    if (p.done) return Finish(*x, true);
    if (p.next == std::chrono::steady_clock::time_point::min()) continue;
    if (x->pull_at.Moves(p.next)) {
      x->timer->expires_at(p.next);
      std::weak_ptr<Exchange> weak = x;
      x->timer->async_wait([this, weak](boost::system::error_code ec) {
        if (ec) return;  // Cancelled: re-armed, or the stream closed.
        if (auto x = weak.lock()) {
          x->pull_at.Clear();
          Pump(x);
        }
      });
    }
    return;
  }
}

// The connection's three loops, as chains of completion handlers on its
// thread: each step starts the next.

// Reads frames until the client leaves, breaks the protocol or the server
// stops (then the answers under way still go out, as over HTTP/1.1).
void ReadFrames(const std::shared_ptr<H2Connection>& c) {
  c->stream.async_read_some(asio::buffer(c->in),
                            asio::bind_executor(c->io, [c](boost::system::error_code ec, size_t n) {
                              if (!ec && !c->closed) {
                                c->last_read = std::chrono::steady_clock::now();
                                bool ok = c->session->Receive(c->in.data(), n);
                                c->Kick();
                                if (ok) return ReadFrames(c);  // Else a GOAWAY is queued.
                              }
                              if (!c->closed && c->options.stopping && c->options.stopping->load())
                                return c->Drain();
                              c->Close();
                            }));
}

// Puts the socket under `stream` in `executor`'s reactor: no operation may be
// pending on it. The same descriptor, so its TLS session and deadline stay.
void MoveSocket(SslStream& stream, const asio::any_io_executor& executor) {
  auto& socket = stream.next_layer();
  if (!socket.is_open()) {
    socket = asio::ip::tcp::socket(executor);
    return;
  }
  boost::system::error_code ec;
  const auto protocol = socket.local_endpoint(ec).protocol();
  const int fd = ec ? -1 : socket.release(ec);
  asio::ip::tcp::socket moved(executor);
  if (fd >= 0 && !ec) moved.assign(protocol, fd, ec);
  if (ec) {
    spdlog::warn("an HTTP/2 connection's socket could not move: {}", ec.message());
    if (fd >= 0 && !moved.is_open()) ::close(fd);
    socket.close(ec);  // Released or not, the connection ends.
  }
  socket = std::move(moved);
}

void EndWriting(const std::shared_ptr<H2Connection>& c) {
  c->Close();
  boost::system::error_code ignored;
  c->stream.next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

// Writes what the session has to send, then waits for a Kick.
void WriteFrames(const std::shared_ptr<H2Connection>& c) {
  c->out.clear();
  bool ok = c->session->Send(c->out, kWriteBatch);
  if (!c->out.empty()) {
    asio::async_write(c->stream, asio::buffer(c->out),
                      asio::bind_executor(c->io, [c](boost::system::error_code ec, size_t) {
                        if (ec) return EndWriting(c);
                        WriteFrames(c);
                      }));
    return;
  }
  if (c->draining && c->session->open_streams() == 0 && !c->goaway_sent) {
    // Every answer is out: GOAWAY last (strict clients read nothing after it).
    c->goaway_sent = true;
    c->session->Drain();
    return WriteFrames(c);
  }
  if (!ok || c->closed || !c->session->Alive() ||
      (c->draining && c->session->open_streams() == 0)) {
    return EndWriting(c);
  }
  c->kick.expires_at(asio::steady_timer::time_point::max());
  c->kick.async_wait([c](boost::system::error_code) { WriteFrames(c); });
}

// Ends the connection once it has had no open stream and no frame for the
// idle timeout (a client that connects and sends nothing, or leaves a
// connection open it no longer uses), or a drain has run out of time.
void WatchIdle(const std::shared_ptr<H2Connection>& c) {
  if (c->closed) return;
  auto period = std::max(std::chrono::milliseconds(50), c->options.idle_timeout / 4);
  c->watchdog.expires_after(c->draining ? std::chrono::milliseconds(100) : period);
  c->watchdog.async_wait([c](boost::system::error_code) {
    if (c->closed) return;
    auto now = std::chrono::steady_clock::now();
    const bool open = c->session->open_streams() != 0;
    if (open) c->last_busy = now;
    if ((c->draining && now >= c->drain_deadline) ||
        (!open && now - std::max(c->last_read, c->last_busy) >= c->options.idle_timeout)) {
      return EndWriting(c);
    }
    WatchIdle(c);
  });
}

}  // namespace

Request RequestOf(http2::ServerSession& session, http2::Stream& s) {
  Request req;
  req.method = s.method;
  SetTarget(req, s.path);
  for (auto& [name, value] : s.fields) {
    auto [it, added] = req.headers.emplace(name, value);
    if (!added) it->second.append(", ").append(value);  // As HTTP/1.1 lists them.
  }
  if (!s.authority.empty()) req.headers.emplace("host", s.authority);
  req.body = session.TakeBody(s);
  return req;
}

void ServeHttp2(asio::io_context& io, SslStream& stream, const std::string& remote,
                const HttpHandler& handler, const ConnectionOptions& options, WorkerPool& workers) {
  auto c = std::make_shared<H2Connection>(io, stream, handler, options, workers, remote);
  http2::Limits limits;
  limits.max_streams = options.max_streams;
  limits.body_bytes = options.max_body_bytes;
  H2Connection* raw = c.get();
  c->session = http2::ServerSession::Make(
      limits, [raw](const std::shared_ptr<http2::Stream>& s) { raw->OnRequest(s); });
  if (!c->session) return;
  // The socket came from the server's I/O threads: while HTTP/2 runs, its
  // reads and writes wait in this thread's reactor. Left in theirs, every
  // 16 KB record written went through one of their threads and back (a LIST
  // of 25 MiB: 12,000 futex calls where HTTP/1.1 made 350). Completions stay
  // bound to `io` (the TLS stream's two internal timers, used when a read and
  // a write wait on each other, remain on the server's threads).
  const asio::any_io_executor home = stream.next_layer().get_executor();
  MoveSocket(stream, io.get_executor());
  ReadFrames(c);
  WriteFrames(c);
  WatchIdle(c);
  io.restart();
  io.run();
  // Every stream is closed. Wait for the workers and writers still busy with
  // this connection's requests, running what they post meanwhile (a writer
  // attached after the close is told so, and ends), so that nothing refers to
  // `io` once this returns.
  while (true) {
    io.restart();
    io.poll();
    std::unique_lock lock(c->mu);
    if (c->idle.wait_for(lock, std::chrono::milliseconds(20), [&] { return c->busy == 0; })) break;
  }
  io.restart();
  io.poll();
  c->session.reset();
  MoveSocket(stream, home);  // `io` ends with this thread; the connection's close is theirs.
}

}  // namespace kiso::apiserver
