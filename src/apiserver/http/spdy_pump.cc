#include "apiserver/http/spdy_pump.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
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
  explicit WebSocketTransport(WebSocketStream& ws) : ws_(ws) {}
  void Read(std::function<void(beast::error_code, std::string)> done) override {
    ws_.async_read(buf_, [this, done = std::move(done)](beast::error_code ec, size_t) {
      std::string bytes = beast::buffers_to_string(buf_.data());
      buf_.consume(buf_.size());
      done(ec, std::move(bytes));
    });
  }
  void Write(const std::string& bytes, std::function<void(beast::error_code)> done) override {
    ws_.async_write(asio::buffer(bytes),
                    [done = std::move(done)](beast::error_code ec, size_t) { done(ec); });
  }
  void Close() override {
    beast::error_code ec;
    ws_.next_layer().next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  }

 private:
  WebSocketStream& ws_;
  beast::flat_buffer buf_;
};

class StreamTransport : public Transport {
 public:
  StreamTransport(SslStream& stream, beast::flat_buffer& early) : stream_(stream) {
    early_ = beast::buffers_to_string(early.data());
    early.consume(early.size());
  }
  void Read(std::function<void(beast::error_code, std::string)> done) override {
    if (!early_.empty()) {
      std::string bytes = std::move(early_);
      early_.clear();
      asio::post(stream_.get_executor(),
                 [done = std::move(done), bytes = std::move(bytes)] { done({}, bytes); });
      return;
    }
    stream_.async_read_some(asio::buffer(buf_),
                            [this, done = std::move(done)](beast::error_code ec, size_t n) {
                              done(ec, std::string(buf_.data(), n));
                            });
  }
  void Write(const std::string& bytes, std::function<void(beast::error_code)> done) override {
    asio::async_write(stream_, asio::buffer(bytes),
                      [done = std::move(done)](beast::error_code ec, size_t) { done(ec); });
  }
  void Close() override {
    beast::error_code ec;
    stream_.next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  }

 private:
  SslStream& stream_;
  std::string early_;
  std::array<char, 32768> buf_{};
};

// The portforward.k8s.io protocol over one SPDY session.
class PortForward {
 public:
  PortForward(Transport& transport, ChannelSession& session, const asio::any_io_executor& executor)
      : transport_(transport), session_(session), executor_(executor) {}

  void Start() { ReadClient(); }

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

  void ReadClient() {
    transport_.Read([this](beast::error_code ec, const std::string& bytes) {
      if (ec) return End();
      std::vector<spdy::Frame> frames;
      Status s = codec_.Feed(bytes, frames);
      for (auto& f : frames) OnFrame(f);
      if (!s.ok()) {
        spdlog::debug("port-forward: {}", s.ToString());
        Send(codec_.GoAway(last_stream_, spdy::kProtocolError));
        closing_ = true;
        return;
      }
      ReadClient();
    });
  }

  void OnFrame(spdy::Frame& f) {
    switch (f.type) {
      case spdy::FrameType::kSynStream:
        return OnStream(f);
      case spdy::FrameType::kData:
        return OnData(f);
      case spdy::FrameType::kRstStream:
        if (auto* p = PairOf(f.stream_id)) Finish(*p);
        return;
      case spdy::FrameType::kPing:
        Send(codec_.Ping(f.value));
        return;
      case spdy::FrameType::kGoAway:
        // The client is done: end once what is queued is written (at once
        // when nothing is; kubectl waits for the connection to close).
        closing_ = true;
        if (queue_.empty()) End();
        return;
      default:
        return;  // SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do.
    }
  }

  void OnStream(const spdy::Frame& f) {
    last_stream_ = std::max(last_stream_, f.stream_id);
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

  void OnData(const spdy::Frame& f) {
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
    if (client_gone_) return;  // End() is walking the pairs.
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

  void Send(std::string frame) {
    if (client_gone_) return;
    queue_.push_back(std::move(frame));
    if (queue_.size() == 1) WriteNext();
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

  // The client left (or broke the protocol): every pod connection ends.
  void End() {
    if (client_gone_) return;
    client_gone_ = true;
    queue_.clear();
    for (auto& [id, p] : pairs_) {
      beast::error_code ec;
      if (p.socket) p.socket->close(ec);
      p.ended = true;
    }
    transport_.Close();
  }

  Transport& transport_;
  ChannelSession& session_;
  asio::any_io_executor executor_;
  spdy::Codec codec_;
  std::map<std::string, Pair> pairs_;        // By requestid.
  std::map<uint32_t, std::string> streams_;  // Stream → requestid.
  std::deque<std::string> queue_;
  uint32_t last_stream_ = 0;
  bool client_gone_ = false;
  bool closing_ = false;
};

void Run(asio::io_context& io, Transport& transport, ChannelSession& session,
         const asio::any_io_executor& executor) {
  PortForward forward(transport, session, executor);
  forward.Start();
  io.restart();
  io.run();
}

}  // namespace

void PumpSpdy(asio::io_context& io, WebSocketStream& ws, ChannelSession& session) {
  WebSocketTransport transport(ws);
  Run(io, transport, session, ws.get_executor());
}

void PumpSpdy(asio::io_context& io, SslStream& stream, beast::flat_buffer& buffer,
              ChannelSession& session) {
  StreamTransport transport(stream, buffer);
  Run(io, transport, session, stream.get_executor());
}

}  // namespace kiso::apiserver
