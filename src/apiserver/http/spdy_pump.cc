#include "apiserver/http/spdy_pump.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <deque>
#include <map>
#include <memory>

#include "apiserver/http/spdy.h"

namespace kiso::apiserver {

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

// Where the session's bytes travel: a WebSocket's binary messages, or the
// upgraded connection itself. Both are byte streams to SPDY.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual void Read(std::function<void(beast::error_code, std::string)> done) = 0;
  virtual void Write(const std::string& bytes, std::function<void(beast::error_code)> done) = 0;
  virtual void Close() = 0;
};

class WebSocketTransport : public Transport {
 public:
  WebSocketTransport(WebSocketStream& ws, asio::any_io_executor executor)
      : ws_(ws), executor_(std::move(executor)) {}
  void Read(std::function<void(beast::error_code, std::string)> done) override {
    ws_.async_read(buf_, asio::bind_executor(executor_, [this, done = std::move(done)](
                                                            beast::error_code ec, size_t) {
                     std::string bytes = beast::buffers_to_string(buf_.data());
                     buf_.consume(buf_.size());
                     done(ec, std::move(bytes));
                   }));
  }
  void Write(const std::string& bytes, std::function<void(beast::error_code)> done) override {
    ws_.async_write(asio::buffer(bytes),
                    asio::bind_executor(executor_, [done = std::move(done)](beast::error_code ec,
                                                                            size_t) { done(ec); }));
  }
  void Close() override {
    beast::error_code ec;
    ws_.next_layer().next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  }

 private:
  WebSocketStream& ws_;
  asio::any_io_executor executor_;
  beast::flat_buffer buf_;
};

class StreamTransport : public Transport {
 public:
  StreamTransport(SslStream& stream, beast::flat_buffer& early, asio::any_io_executor executor)
      : stream_(stream), executor_(std::move(executor)) {
    early_ = beast::buffers_to_string(early.data());
    early.consume(early.size());
  }
  void Read(std::function<void(beast::error_code, std::string)> done) override {
    if (!early_.empty()) {
      std::string bytes = std::move(early_);
      early_.clear();
      asio::post(executor_,
                 [done = std::move(done), bytes = std::move(bytes)] { done({}, bytes); });
      return;
    }
    stream_.async_read_some(asio::buffer(buf_),
                            asio::bind_executor(executor_, [this, done = std::move(done)](
                                                               beast::error_code ec, size_t n) {
                              done(ec, std::string(buf_.data(), n));
                            }));
  }
  void Write(const std::string& bytes, std::function<void(beast::error_code)> done) override {
    asio::async_write(
        stream_, asio::buffer(bytes),
        asio::bind_executor(executor_,
                            [done = std::move(done)](beast::error_code ec, size_t) { done(ec); }));
  }
  void Close() override {
    beast::error_code ec;
    stream_.next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  }

 private:
  SslStream& stream_;
  asio::any_io_executor executor_;
  std::string early_;
  std::array<char, 32768> buf_{};
};

// One SPDY session over a transport: frames in, one queue of frames out. The
// protocol on top (port-forward, remote command) sees streams opened, their
// data and resets, and the client's departure.
class Session {
 public:
  Session(Transport& transport, const asio::any_io_executor& executor)
      : executor_(executor), transport_(transport) {}
  virtual ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  virtual void Start() { ReadClient(); }

 protected:
  virtual void OnStream(const spdy::Frame& f) = 0;
  virtual void OnData(const spdy::Frame& f) = 0;
  virtual void OnReset(uint32_t stream) = 0;
  // The client left (or broke the protocol): end what the session holds.
  virtual void OnClientGone() = 0;

  void Send(std::string frame) {
    if (client_gone_) return;
    queue_.push_back(std::move(frame));
    if (queue_.size() == 1) WriteNext();
  }

  // Ends the session once what is queued is written (at once when nothing is).
  void CloseWhenWritten() {
    closing_ = true;
    if (queue_.empty()) End();
  }

  void End() {
    if (client_gone_) return;
    client_gone_ = true;
    queue_.clear();
    OnClientGone();
    transport_.Close();
  }

  spdy::Codec codec_;
  asio::any_io_executor executor_;
  uint32_t last_stream_ = 0;
  bool client_gone_ = false;

 private:
  void ReadClient() {
    transport_.Read([this](beast::error_code ec, const std::string& bytes) {
      if (ec) return End();
      std::vector<spdy::Frame> frames;
      Status s = codec_.Feed(bytes, frames);
      for (auto& f : frames) OnFrame(f);
      if (!s.ok()) {
        spdlog::debug("spdy: {}", s.ToString());
        Send(codec_.GoAway(last_stream_, spdy::kProtocolError));
        closing_ = true;
        return;
      }
      ReadClient();
    });
  }

  void OnFrame(const spdy::Frame& f) {
    switch (f.type) {
      case spdy::FrameType::kSynStream:
        last_stream_ = std::max(last_stream_, f.stream_id);
        return OnStream(f);
      case spdy::FrameType::kData:
        return OnData(f);
      case spdy::FrameType::kRstStream:
        return OnReset(f.stream_id);
      case spdy::FrameType::kPing:
        Send(codec_.Ping(f.value));
        return;
      case spdy::FrameType::kGoAway:
        // The client is done: end once what is queued is written (kubectl
        // waits for the connection to close).
        return CloseWhenWritten();
      default:
        return;  // SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do.
    }
  }

  void WriteNext() {
    transport_.Write(queue_.front(), [this](beast::error_code ec) {
      queue_.pop_front();
      if (ec) {
        End();
        return;
      }
      if (!queue_.empty()) {
        WriteNext();
      } else if (closing_) {
        End();
      }
    });
  }

  Transport& transport_;
  std::deque<std::string> queue_;
  bool closing_ = false;
};

// The portforward.k8s.io protocol over one SPDY session.
class PortForward : public Session {
 public:
  PortForward(Transport& transport, ChannelSession& session, const asio::any_io_executor& executor)
      : Session(transport, executor), session_(session) {}

 private:
  // The two streams kubectl opens for one local connection, and the pod's end.
  struct Pair {
    std::string request;
    uint32_t data = 0;
    uint32_t error = 0;
    uint16_t port = 0;
    std::unique_ptr<asio::posix::stream_descriptor> socket;
    std::array<char, 32768> buf{};
    std::string early;  // Data the client sent before the pod's end was there.
    bool client_done = false;
    bool ended = false;
  };
  static constexpr size_t kMaxPairs = 1024;

  void OnStream(const spdy::Frame& f) override {
    std::string_view type = f.Header("streamtype");
    std::string_view port_text = f.Header("port");
    std::string request(f.Header("requestid"));
    uint16_t port = 0;
    auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    bool port_ok = err == std::errc() && end == port_text.data() + port_text.size() && port > 0;
    if ((type != "data" && type != "error") || !port_ok ||
        (pairs_.size() >= kMaxPairs && !pairs_.contains(request))) {
      Send(codec_.RstStream(
          f.stream_id, type.empty() || !port_ok ? spdy::kProtocolError : spdy::kRefusedStream));
      return;
    }
    Send(codec_.SynReply(f.stream_id, {}, false));
    Pair& p = pairs_[request];
    p.request = request;
    p.port = port;
    (type == "data" ? p.data : p.error) = f.stream_id;
    streams_[f.stream_id] = request;
    if (p.data != 0 && p.error != 0 && !p.socket && !p.ended) Connect(p);
  }

  void OnReset(uint32_t stream) override {
    if (auto* p = PairOf(stream)) Finish(*p);
  }

  void Connect(Pair& p) {
    std::string why;
    int fd = session_.dial ? session_.dial(p.port, &why) : -1;
    if (fd < 0) {
      // The error, then FIN on both streams (Finish): one FIN each, as SPDY
      // allows no frame on a stream after its FIN.
      Send(codec_.Data(p.error, why.empty() ? "the port cannot be reached" : why, false));
      return Finish(p);
    }
    p.socket = std::make_unique<asio::posix::stream_descriptor>(executor_, fd);
    if (!p.early.empty()) {
      beast::error_code ec;
      asio::write(*p.socket, asio::buffer(p.early), ec);
      p.early.clear();
    }
    if (p.client_done) ::shutdown(fd, SHUT_WR);
    ReadPod(p);
  }

  void ReadPod(Pair& p) {
    p.socket->async_read_some(asio::buffer(p.buf), [this, &p](beast::error_code ec, size_t n) {
      if (ec || n == 0) {
        Finish(p);
        return Forget(p);  // Nothing of the pair's is pending any more.
      }
      Send(codec_.Data(p.data, std::string_view(p.buf.data(), n), false));
      ReadPod(p);
    });
  }

  void OnData(const spdy::Frame& f) override {
    Pair* p = PairOf(f.stream_id);
    if (p == nullptr || f.stream_id != p->data || p->ended) return;
    if (p->socket) {
      beast::error_code ec;
      if (!f.data.empty()) asio::write(*p->socket, asio::buffer(f.data), ec);
      if (f.fin()) ::shutdown(p->socket->native_handle(), SHUT_WR);
    } else if (p->early.size() + f.data.size() <= spdy::kMaxFrameBytes) {
      p->early += f.data;
    }
    if (f.fin()) p->client_done = true;
  }

  // The connection ended (either side, or it never began): FIN on both streams.
  void Finish(Pair& p) {
    if (p.ended) return;
    p.ended = true;
    if (p.socket) {
      beast::error_code ec;
      p.socket->close(ec);
    }
    if (p.data != 0) Send(codec_.Data(p.data, "", true));
    if (p.error != 0) Send(codec_.Data(p.error, "", true));
    if (!p.socket) Forget(p);  // Else its read handler does, once it has run.
  }

  // Removes an ended pair (so a long session does not fill up with them).
  void Forget(Pair& p) {
    if (client_gone_) return;  // OnClientGone is walking the pairs.
    streams_.erase(p.data);
    streams_.erase(p.error);
    pairs_.erase(p.request);
  }

  Pair* PairOf(uint32_t stream) {
    auto s = streams_.find(stream);
    if (s == streams_.end()) return nullptr;
    auto p = pairs_.find(s->second);
    return p == pairs_.end() ? nullptr : &p->second;
  }

  // Every pod connection ends with the session.
  void OnClientGone() override {
    for (auto& [id, p] : pairs_) {
      beast::error_code ec;
      if (p.socket) p.socket->close(ec);
      p.ended = true;
    }
  }

  ChannelSession& session_;
  std::map<std::string, Pair> pairs_;        // By requestid.
  std::map<uint32_t, std::string> streams_;  // Stream → requestid.
};

// pods/exec and pods/attach over SPDY (remotecommand v4.channel.k8s.io, for
// clients without WebSockets): the client opens one stream per standard
// stream, named by the header streamtype (error, stdin, stdout, stderr, and
// resize for a terminal), each once. When all it asked for are there the
// outputs flow; when they have ended the status (a meta/v1 Status) goes to
// the error stream and every stream ends with FIN.
class RemoteCommand : public Session {
 public:
  RemoteCommand(Transport& transport, ChannelSession& session,
                const asio::any_io_executor& executor, const CommandStreams& expected)
      : Session(transport, executor), session_(session), expected_(expected), timer_(executor) {
    auto output = [&](int fd, std::string type) {
      auto& o = outputs_.emplace_back(std::make_unique<Output>(executor, std::move(type)));
      o->d.assign(fd);
    };
    if (session.stdout_fd >= 0) output(session.stdout_fd, "stdout");
    if (session.stderr_fd >= 0) output(session.stderr_fd, "stderr");
    if (session.stdin_fd >= 0) {
      stdin_ = std::make_unique<asio::posix::stream_descriptor>(executor);
      stdin_->assign(session.stdin_fd);
    }
    session.stdout_fd = session.stderr_fd = session.stdin_fd = -1;  // Ours now.
  }

  void Start() override {
    // A client that does not open its streams in time is gone (the kubelet's
    // streamCreationTimeout).
    timer_.expires_after(std::chrono::seconds(30));
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec && !started_) End();
    });
    Session::Start();
  }

 private:
  struct Output {
    Output(const asio::any_io_executor& executor, std::string t)
        : d(executor), type(std::move(t)) {}
    asio::posix::stream_descriptor d;
    std::string type;
    std::array<char, 32768> buf{};
  };

  void OnStream(const spdy::Frame& f) override {
    std::string type(f.Header("streamtype"));
    bool known = type == "error" || type == "stdin" || type == "stdout" || type == "stderr" ||
                 type == "resize";
    if (!known || streams_.contains(type) || finished_) {
      Send(codec_.RstStream(f.stream_id, spdy::kProtocolError));
      return;
    }
    Send(codec_.SynReply(f.stream_id, {}, false));
    streams_[type] = f.stream_id;
    types_[f.stream_id] = type;
    bool all = streams_.contains("error") && (!expected_.in || streams_.contains("stdin")) &&
               (!expected_.out || streams_.contains("stdout")) &&
               (!expected_.err || streams_.contains("stderr")) &&
               (!expected_.resize || streams_.contains("resize"));
    if (all && !started_) {
      started_ = true;
      timer_.cancel();
      for (auto& o : outputs_) ReadOutput(*o);
      MaybeFinish();
    }
  }

  void OnData(const spdy::Frame& f) override {
    auto it = types_.find(f.stream_id);
    if (it == types_.end()) return;
    if (it->second == "stdin" && stdin_ && stdin_->is_open()) {
      beast::error_code ec;
      if (!f.data.empty()) asio::write(*stdin_, asio::buffer(f.data), ec);
      if (f.fin()) stdin_->close(ec);  // The client's stdin ended.
    } else if (it->second == "resize" && session_.resize) {
      // {"Width":80,"Height":24} per line; a line longer than any size is dropped.
      resize_ += f.data;
      for (size_t nl = resize_.find('\n'); nl != std::string::npos; nl = resize_.find('\n')) {
        ResizeTerminal(session_, std::string_view(resize_).substr(0, nl));
        resize_.erase(0, nl + 1);
      }
      if (resize_.size() > 4096) resize_.clear();
    }
  }

  void OnReset(uint32_t stream) override {
    auto it = types_.find(stream);
    if (it != types_.end() && it->second == "stdin" && stdin_) {
      beast::error_code ec;
      stdin_->close(ec);
    }
  }

  void ReadOutput(Output& o) {
    o.d.async_read_some(asio::buffer(o.buf), [this, &o](beast::error_code ec, size_t n) {
      if (ec || n == 0) {
        beast::error_code cec;
        o.d.close(cec);
        return MaybeFinish();
      }
      // Output the client did not ask for is read and dropped.
      if (auto s = streams_.find(o.type); s != streams_.end())
        Send(codec_.Data(s->second, std::string_view(o.buf.data(), n), false));
      ReadOutput(o);
    });
  }

  // Once every output has ended: the status on the error stream, FIN on each stream, the end.
  void MaybeFinish() {
    if (finished_ || client_gone_) return;
    for (const auto& o : outputs_) {
      if (o->d.is_open()) return;
    }
    finished_ = true;
    if (stdin_) {
      beast::error_code ec;
      stdin_->close(ec);
    }
    std::string status =
        session_.finish ? session_.finish() : R"({"metadata":{},"status":"Success"})";
    Send(codec_.Data(streams_.at("error"), status, false));
    for (const auto& [type, id] : streams_) Send(codec_.Data(id, "", true));
    CloseWhenWritten();
  }

  void OnClientGone() override {
    timer_.cancel();
    if (!finished_ && session_.abort) session_.abort();
    beast::error_code ec;
    for (auto& o : outputs_) o->d.close(ec);
    if (stdin_) stdin_->close(ec);
  }

  ChannelSession& session_;
  CommandStreams expected_;
  asio::steady_timer timer_;
  std::vector<std::unique_ptr<Output>> outputs_;
  std::unique_ptr<asio::posix::stream_descriptor> stdin_;
  std::map<std::string, uint32_t> streams_;  // By type.
  std::map<uint32_t, std::string> types_;    // By stream.
  std::string resize_;
  bool started_ = false;
  bool finished_ = false;
};

void Run(asio::io_context& io, Session& session) {
  session.Start();
  io.restart();
  io.run();
}

}  // namespace

void PumpSpdy(asio::io_context& io, WebSocketStream& ws, ChannelSession& session) {
  WebSocketTransport transport(ws, io.get_executor());
  PortForward forward(transport, session, io.get_executor());
  Run(io, forward);
}

void PumpSpdy(asio::io_context& io, SslStream& stream, beast::flat_buffer& buffer,
              ChannelSession& session) {
  StreamTransport transport(stream, buffer, io.get_executor());
  PortForward forward(transport, session, io.get_executor());
  Run(io, forward);
}

void PumpSpdyCommand(asio::io_context& io, SslStream& stream, beast::flat_buffer& buffer,
                     ChannelSession& session, const CommandStreams& expected) {
  StreamTransport transport(stream, buffer, io.get_executor());
  RemoteCommand command(transport, session, io.get_executor(), expected);
  Run(io, command);
}

}  // namespace kiso::apiserver
