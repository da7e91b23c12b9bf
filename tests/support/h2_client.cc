#include "support/h2_client.h"

#include <fmt/format.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>

#include "support/tls_connect.h"

namespace kiso::testing {

H2ClientSession::H2ClientSession(uint32_t window, bool manual_window) {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(
      cb, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
             const uint8_t* v, size_t vl, uint8_t, void* user) {
        auto& s = static_cast<H2ClientSession*>(user)->streams_[f->hd.stream_id];
        std::string name(reinterpret_cast<const char*>(n), nl);
        std::string value(reinterpret_cast<const char*>(v), vl);
        if (name == ":status") s.status = std::stoi(value);
        s.headers[std::move(name)] = std::move(value);
        return 0;
      });
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
      cb, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t n, void* user) {
        auto* self = static_cast<H2ClientSession*>(user);
        std::string_view data(reinterpret_cast<const char*>(d), n);
        if (self->on_data) {
          self->on_data(id, data);
        } else {
          self->streams_[id].data.append(data);
        }
        return 0;
      });
  nghttp2_session_callbacks_set_on_stream_close_callback(
      cb, [](nghttp2_session*, int32_t id, uint32_t, void* user) {
        static_cast<H2ClientSession*>(user)->streams_[id].closed = true;
        return 0;
      });
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  if (manual_window) nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 1);
}

H2ClientSession::~H2ClientSession() { nghttp2_session_del(session_); }

int32_t H2ClientSession::Submit(const std::string& method, const std::string& path,
                                std::string body,
                                const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::pair<std::string, std::string>> h{
      {":method", method}, {":path", path}, {":scheme", "https"}};
  h.insert(h.end(), extra.begin(), extra.end());
  std::vector<nghttp2_nv> nv;
  nv.reserve(h.size());
  for (auto& [n, v] : h) {
    nv.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()),
                  n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider{};
  provider.read_callback = [](nghttp2_session*, int32_t id, uint8_t* buf, size_t len,
                              uint32_t* flags, nghttp2_data_source*, void* user) -> ssize_t {
    auto& rest = static_cast<H2ClientSession*>(user)->bodies_[id];
    size_t n = std::min(len, rest.size());
    std::copy_n(rest.data(), n, buf);
    rest.erase(0, n);
    if (rest.empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  };
  int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(),
                                      body.empty() ? nullptr : &provider, nullptr);
  if (id > 0) {
    streams_[id];
    if (!body.empty()) bodies_[id] = std::move(body);
  }
  return id;
}

void H2ClientSession::Cancel(int32_t id) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
}

void H2ClientSession::Consume(int32_t id, size_t n) { nghttp2_session_consume(session_, id, n); }

bool H2ClientSession::Output(std::string& out) {
  const uint8_t* data = nullptr;
  ssize_t n;
  while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  return n == 0;
}

bool H2ClientSession::Input(std::string_view data) {
  return nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data.data()),
                                  data.size()) >= 0;
}

H2Client::H2Client(int port, std::string token)
    : token_(std::move(token)), authority_(fmt::format("127.0.0.1:{}", port)) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  static const unsigned char kAlpn[] = "\x02h2";
  SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof kAlpn - 1);
  if (!ConnectTls(ctx_, port, &fd_, &ssl_)) return;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_size = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_size);
  if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_size) != "h2") return;
  ok_ = Flush();
}

H2Client::~H2Client() {
  if (ssl_) SSL_free(ssl_);
  if (fd_ >= 0) close(fd_);
  SSL_CTX_free(ctx_);
}

int32_t H2Client::Submit(const std::string& method, const std::string& path, std::string body) {
  std::vector<std::pair<std::string, std::string>> extra{{":authority", authority_},
                                                         {"authorization", "Bearer " + token_}};
  if (!body.empty()) extra.emplace_back("content-type", "application/json");
  return H2ClientSession::Submit(method, path, std::move(body), extra);
}

bool H2Client::Flush() {
  std::string out;
  if (!Output(out)) return false;
  return out.empty() ||
         SSL_write(ssl_, out.data(), static_cast<int>(out.size())) == static_cast<int>(out.size());
}

bool H2Client::ReadOnce(int timeout_ms) {
  if (SSL_pending(ssl_) == 0) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) == 0) return true;
  }
  char buf[65536];
  int n = SSL_read(ssl_, buf, sizeof buf);
  if (n <= 0 || !Input({buf, static_cast<size_t>(n)})) return false;
  return Flush();
}

bool H2Client::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!ok_ || !Flush()) return false;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline || !ReadOnce(50)) return false;
  }
  return true;
}

void H2Client::Run(const std::atomic<bool>& stop) {
  if (!ok_ || !Flush()) return;
  while (!stop.load() && ReadOnce(100)) {
  }
}

}  // namespace kiso::testing
