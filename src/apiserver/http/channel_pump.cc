#include "apiserver/http/channel_pump.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/json.hpp>
#include <deque>
#include <map>
#include <memory>
#include <vector>

namespace kiso::apiserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {

// Pumps a session's descriptors over the WebSocket: each output (a descriptor
// read until it ends) to its channel, each channel the client writes to into
// its input. exec and attach: stdout 1, stderr 2 and stdin 0, then the status
// on channel 3; port-forward: one socket per port on channel 2i both ways.
class Pump {
 public:
  // `executor`: where every completion runs (the calling thread's io_context),
  // whichever io_context the connection's socket belongs to.
  Pump(WebSocketStream& ws, ChannelSession& session, bool v5, const asio::any_io_executor& executor)
      : ws_(ws), session_(session), v5_(v5), executor_(executor) {
    auto output = [&](int fd, char channel) {
      auto& o = outputs_.emplace_back(std::make_unique<Output>(executor, channel));
      o->d.assign(fd);
    };
    auto input = [&](int fd, char channel) {
      auto& d = inputs_[channel];
      d = std::make_unique<asio::posix::stream_descriptor>(executor);
      d->assign(fd);
    };
    if (session.stdout_fd >= 0) output(session.stdout_fd, 1);
    if (session.stderr_fd >= 0) output(session.stderr_fd, 2);
    if (session.stdin_fd >= 0) input(session.stdin_fd, 0);
    session.stdout_fd = session.stderr_fd = session.stdin_fd = -1;  // Ours now.
    for (size_t i = 0; i < session.ports.size(); ++i) {
      auto& port = session.ports[i];
      auto data = static_cast<char>(2 * i);
      // The first frame of both of a port's channels names the port.
      std::string number{static_cast<char>(port.number & 0xff),
                         static_cast<char>(port.number >> 8)};
      greeting_.push_back(data + number);
      greeting_.push_back(static_cast<char>(data + 1) + number);
      if (port.fd >= 0) {
        int writer = fcntl(port.fd, F_DUPFD_CLOEXEC, 0);
        output(port.fd, data);
        if (writer >= 0) input(writer, data);
        port.fd = -1;
      } else {
        greeting_.push_back(static_cast<char>(data + 1) + port.error);
      }
    }
  }

  void Start() {
    for (auto& frame : greeting_) Send(std::move(frame));
    ReadClient();
    for (auto& o : outputs_) ReadOutput(*o);
    MaybeFinish();
  }

 private:
  struct Output {
    Output(const asio::any_io_executor& executor, char c) : d(executor), channel(c) {}
    asio::posix::stream_descriptor d;
    char channel;
    std::array<char, 32768> buf{};
  };

  void ReadClient() {
    ws_.async_read(
        client_buf_, asio::bind_executor(executor_, [this](beast::error_code ec, size_t) {
          if (ec) {
            client_gone_ = true;
            if (!finished_ && session_.abort) session_.abort();
            CloseAll();
            return;
          }
          std::string msg = beast::buffers_to_string(client_buf_.data());
          client_buf_.consume(client_buf_.size());
          if (!msg.empty()) {
            auto channel = static_cast<unsigned char>(msg[0]);
            auto in = inputs_.find(static_cast<char>(channel));
            if (in != inputs_.end() && in->second->is_open()) {
              beast::error_code wec;
              asio::write(*in->second, asio::buffer(msg.data() + 1, msg.size() - 1), wec);
            } else if (channel == 255 && v5_ && msg.size() > 1 && msg[1] == 0) {
              CloseInput(0);  // The client closed stdin.
            } else if (channel == 4 && session_.resize) {
              ResizeTerminal(session_, std::string_view(msg).substr(1));
            }
          }
          ReadClient();
        }));
  }

  void ReadOutput(Output& o) {
    if (!o.d.is_open()) return;
    o.d.async_read_some(asio::buffer(o.buf), [this, &o](beast::error_code ec, size_t n) {
      if (ec || n == 0) {
        beast::error_code cec;
        o.d.close(cec);
        if (!session_.ports.empty()) CloseInput(o.channel);  // The port's connection ended.
        MaybeFinish();
        return;
      }
      std::string frame(1, o.channel);
      frame.append(o.buf.data(), n);
      Send(std::move(frame));
      ReadOutput(o);
    });
  }

  void Send(std::string frame) {
    queue_.push_back(std::move(frame));
    if (queue_.size() == 1) WriteNext();
  }

  void WriteNext() {
    if (queue_.empty() || client_gone_) return;
    ws_.async_write(asio::buffer(queue_.front()),
                    asio::bind_executor(executor_, [this](beast::error_code ec, size_t) {
                      queue_.pop_front();
                      if (ec) {
                        client_gone_ = true;
                        return;
                      }
                      if (!queue_.empty()) {
                        WriteNext();
                      } else if (closing_) {
                        Close();
                      }
                    }));
  }

  // Once every output has ended: the status (exec, attach), then the close.
  void MaybeFinish() {
    if (finished_ || client_gone_) return;
    for (const auto& o : outputs_) {
      if (o->d.is_open()) return;
    }
    finished_ = true;
    for (auto& [channel, d] : inputs_) CloseInput(channel);
    closing_ = true;
    if (session_.ports.empty()) {
      std::string status =
          session_.finish ? session_.finish() : R"({"metadata":{},"status":"Success"})";
      Send(std::string(1, '\3') + status);
    } else if (queue_.empty()) {
      Close();
    }
  }

  void Close() {
    ws_.async_close(
        websocket::close_code::normal, asio::bind_executor(executor_, [this](beast::error_code) {
          beast::error_code ec;
          ws_.next_layer().next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        }));
  }

  void CloseInput(char channel) {
    auto it = inputs_.find(channel);
    beast::error_code ec;
    if (it != inputs_.end()) it->second->close(ec);
  }

  void CloseAll() {
    beast::error_code ec;
    for (auto& o : outputs_) o->d.close(ec);
    for (auto& [channel, d] : inputs_) d->close(ec);
  }

  WebSocketStream& ws_;
  ChannelSession& session_;
  bool v5_;
  asio::any_io_executor executor_;
  std::vector<std::unique_ptr<Output>> outputs_;
  std::map<char, std::unique_ptr<asio::posix::stream_descriptor>> inputs_;
  std::vector<std::string> greeting_;
  beast::flat_buffer client_buf_;
  std::deque<std::string> queue_;
  bool client_gone_ = false;
  bool finished_ = false;
  bool closing_ = false;
};

}  // namespace

void ResizeTerminal(ChannelSession& session, std::string_view size_json) {
  boost::system::error_code ec;
  auto size = boost::json::parse(size_json, ec);
  if (ec || !size.is_object() || !session.resize) return;
  auto dim = [&](std::string_view key) -> uint16_t {
    const auto* v = size.as_object().if_contains(key);
    if (!v || !v->is_number()) return 0;
    auto n = v->to_number<double>();
    return n >= 1 && n <= 65535 ? static_cast<uint16_t>(n) : 0;
  };
  session.resize(dim("Width"), dim("Height"));
}

void PumpChannels(asio::io_context& io, WebSocketStream& ws, ChannelSession& session, bool v5) {
  Pump pump(ws, session, v5, io.get_executor());
  pump.Start();
  io.restart();
  io.run();
}

}  // namespace kiso::apiserver
