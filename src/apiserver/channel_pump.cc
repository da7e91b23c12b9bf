#include "apiserver/channel_pump.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/json.hpp>
#include <deque>
#include <memory>

namespace kiso::apiserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {

class Pump {
 public:
  Pump(WebSocketStream& ws, ChannelSession& session, bool v5)
      : ws_(ws),
        session_(session),
        v5_(v5),
        out_(ws.get_executor()),
        err_(ws.get_executor()),
        in_(ws.get_executor()) {
    if (session.stdout_fd >= 0) out_.assign(session.stdout_fd);
    if (session.stderr_fd >= 0) err_.assign(session.stderr_fd);
    if (session.stdin_fd >= 0) in_.assign(session.stdin_fd);
    session.stdout_fd = session.stderr_fd = session.stdin_fd = -1;  // Ours now.
  }

  void Start() {
    ReadClient();
    ReadOutput(out_, 1, out_buf_);
    ReadOutput(err_, 2, err_buf_);
    MaybeFinish();
  }

 private:
  void ReadClient() {
    ws_.async_read(client_buf_, [this](beast::error_code ec, size_t) {
      if (ec) {
        client_gone_ = true;
        if (!finished_ && session_.abort) session_.abort();
        CloseOutputs();
        return;
      }
      std::string msg = beast::buffers_to_string(client_buf_.data());
      client_buf_.consume(client_buf_.size());
      if (!msg.empty()) {
        auto channel = static_cast<unsigned char>(msg[0]);
        if (channel == 0 && in_.is_open()) {
          beast::error_code wec;
          asio::write(in_, asio::buffer(msg.data() + 1, msg.size() - 1), wec);
        } else if (channel == 255 && v5_ && msg.size() > 1 && msg[1] == 0) {
          beast::error_code cec;
          in_.close(cec);  // The client closed stdin.
        } else if (channel == 4 && session_.resize) {
          Resize(std::string_view(msg).substr(1));
        }
      }
      ReadClient();
    });
  }

  // {"Width":80,"Height":24}: a terminal's new size. Anything else is ignored.
  void Resize(std::string_view text) {
    boost::system::error_code ec;
    auto size = boost::json::parse(text, ec);
    if (ec || !size.is_object()) return;
    const auto* w = size.as_object().if_contains("Width");
    const auto* h = size.as_object().if_contains("Height");
    auto dim = [](const boost::json::value* v) -> uint16_t {
      if (!v || !v->is_number()) return 0;
      auto n = v->to_number<double>();
      return n >= 1 && n <= 65535 ? static_cast<uint16_t>(n) : 0;
    };
    session_.resize(dim(w), dim(h));
  }

  void ReadOutput(asio::posix::stream_descriptor& d, char channel, std::array<char, 32768>& buf) {
    if (!d.is_open()) return;
    d.async_read_some(asio::buffer(buf), [this, &d, channel, &buf](beast::error_code ec, size_t n) {
      if (ec || n == 0) {
        beast::error_code cec;
        d.close(cec);
        MaybeFinish();
        return;
      }
      std::string frame(1, channel);
      frame.append(buf.data(), n);
      Send(std::move(frame));
      ReadOutput(d, channel, buf);
    });
  }

  void Send(std::string frame) {
    queue_.push_back(std::move(frame));
    if (queue_.size() == 1) WriteNext();
  }

  void WriteNext() {
    if (queue_.empty() || client_gone_) return;
    ws_.async_write(asio::buffer(queue_.front()), [this](beast::error_code ec, size_t) {
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
    });
  }

  void MaybeFinish() {
    if (finished_ || out_.is_open() || err_.is_open() || client_gone_) return;
    finished_ = true;
    beast::error_code ec;
    in_.close(ec);
    std::string status =
        session_.finish ? session_.finish() : R"({"metadata":{},"status":"Success"})";
    closing_ = true;
    Send(std::string(1, '\3') + status);
  }

  void Close() {
    ws_.async_close(websocket::close_code::normal, [this](beast::error_code) {
      beast::error_code ec;
      ws_.next_layer().next_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    });
  }

  void CloseOutputs() {
    beast::error_code ec;
    out_.close(ec);
    err_.close(ec);
    in_.close(ec);
  }

  WebSocketStream& ws_;
  ChannelSession& session_;
  bool v5_;
  asio::posix::stream_descriptor out_, err_, in_;
  beast::flat_buffer client_buf_;
  std::array<char, 32768> out_buf_{};
  std::array<char, 32768> err_buf_{};
  std::deque<std::string> queue_;
  bool client_gone_ = false;
  bool finished_ = false;
  bool closing_ = false;
};

}  // namespace

void PumpChannels(asio::io_context& io, WebSocketStream& ws, ChannelSession& session, bool v5) {
  Pump pump(ws, session, v5);
  pump.Start();
  io.restart();
  io.run();
}

}  // namespace kiso::apiserver
