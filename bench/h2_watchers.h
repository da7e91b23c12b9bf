// Watches over HTTP/2 for the benchmarks: one TLS connection (ALPN h2) with
// many watch streams on it, framed by nghttp2's client session, read by one
// thread. Each DATA piece goes to `on_data` with its stream's index.
#pragma once

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiso::bench {

class H2Watchers {
 public:
  using OnData = std::function<void(int index, std::string_view data)>;

  // Connects and opens `paths.size()` streams (each a GET of paths[i]).
  // `ok()` is false if the connection or ALPN failed.
  H2Watchers(int port, const std::string& token, const std::vector<std::string>& paths,
             OnData on_data)
      : on_data_(std::move(on_data)) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    static const unsigned char kAlpn[] = "\x02h2";
    SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof kAlpn - 1);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) return;
    const unsigned char* alpn = nullptr;
    unsigned int alpn_size = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_size);
    if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_size) != "h2") return;
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session* s, uint8_t, int32_t id, const uint8_t* d, size_t n, void* user) {
          auto* self = static_cast<H2Watchers*>(user);
          auto* index = static_cast<int*>(nghttp2_session_get_stream_user_data(s, id));
          if (index) self->on_data_(*index, {reinterpret_cast<const char*>(d), n});
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, [](nghttp2_session*, int32_t, uint32_t, void* user) {
          static_cast<H2Watchers*>(user)->closed_streams_++;
          return 0;
        });
    nghttp2_session_client_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1U << 20}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 1);
    indexes_.resize(paths.size());
    std::string authority = fmt::format("127.0.0.1:{}", port);
    std::string auth = "Bearer " + token;
    for (size_t i = 0; i < paths.size(); ++i) {
      indexes_[i] = static_cast<int>(i);
      auto nv = [](const std::string& n, const std::string& v) {
        return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                          reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(),
                          v.size(), NGHTTP2_NV_FLAG_NONE};
      };
      static const std::string kMethod = ":method", kGet = "GET", kPath = ":path",
                               kScheme = ":scheme", kHttps = "https", kAuthority = ":authority",
                               kAuthorization = "authorization";
      nghttp2_nv headers[] = {nv(kMethod, kGet), nv(kPath, paths[i]), nv(kScheme, kHttps),
                              nv(kAuthority, authority), nv(kAuthorization, auth)};
      nghttp2_submit_request(session_, nullptr, headers, std::size(headers), nullptr, &indexes_[i]);
    }
    ok_ = Flush();
  }
  ~H2Watchers() {
    if (session_) nghttp2_session_del(session_);
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) close(fd_);
    SSL_CTX_free(ctx_);
  }
  H2Watchers(const H2Watchers&) = delete;
  H2Watchers& operator=(const H2Watchers&) = delete;

  bool ok() const { return ok_; }
  int closed_streams() const { return closed_streams_; }

  // Reads and hands over data until `stop` (checked every 100 ms) or the connection ends.
  void Run(const std::atomic<bool>& stop) {
    char buf[65536];
    while (ok_ && !stop.load()) {
      if (SSL_pending(ssl_) == 0) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 100) == 0) continue;
      }
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) break;
      if (nghttp2_session_mem_recv(session_, reinterpret_cast<uint8_t*>(buf),
                                   static_cast<size_t>(n)) < 0) {
        break;
      }
      if (!Flush()) break;
    }
  }

 private:
  bool Flush() {
    const uint8_t* data = nullptr;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
      if (SSL_write(ssl_, data, static_cast<int>(n)) != n) return false;
    }
    return n == 0;
  }

  OnData on_data_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  nghttp2_session* session_ = nullptr;
  std::vector<int> indexes_;
  int closed_streams_ = 0;
  bool ok_ = false;
};

}  // namespace kiso::bench
