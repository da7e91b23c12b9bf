#include "common/http2_session.h"

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace kiso::http2 {

namespace {

Stream* StreamOf(nghttp2_session* session, int32_t id) {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, id));
}

}  // namespace

struct ServerSession::Callbacks {
  static int BeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto* c = static_cast<ServerSession*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto s = std::make_shared<Stream>();
    s->id = frame->hd.stream_id;
    nghttp2_session_set_stream_user_data(session, s->id, s.get());
    c->streams_[s->id] = std::move(s);
    return 0;
  }

  static int Header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name_data,
                    size_t name_size, const uint8_t* value_data, size_t value_size,
                    uint8_t /*flags*/, void* user) {
    auto* c = static_cast<ServerSession*>(user);
    Stream* s = StreamOf(session, frame->hd.stream_id);
    if (s == nullptr || frame->hd.type != NGHTTP2_HEADERS) return 0;  // Trailers are dropped.
    s->header_bytes_ += name_size + value_size + 32;                  // RFC 9113's accounting.
    if (s->header_bytes_ > c->limits_.header_bytes) {
      s->headers_too_large = true;
      s->fields.clear();
      return 0;
    }
    if (s->headers_too_large) return 0;
    std::string_view name(reinterpret_cast<const char*>(name_data), name_size);
    std::string_view value(reinterpret_cast<const char*>(value_data), value_size);
    if (name == ":method") {
      s->method = value;
    } else if (name == ":path") {
      s->path = value;
    } else if (name == ":authority") {
      s->authority = value;
    } else if (name == ":scheme") {
      s->scheme = value;
    } else if (name == "cookie") {  // HTTP/2 may split them; HTTP/1.1 has one field.
      auto it = std::find_if(s->fields.begin(), s->fields.end(),
                             [](const auto& f) { return f.first == "cookie"; });
      if (it == s->fields.end()) {
        s->fields.emplace_back("cookie", value);
      } else {
        it->second.append("; ").append(value);
      }
    } else if (!name.starts_with(':')) {
      s->fields.emplace_back(name, value);  // nghttp2 has checked: lower case, no hop-by-hop.
    }
    return 0;
  }

  static int Data(nghttp2_session* session, uint8_t /*flags*/, int32_t id, const uint8_t* data,
                  size_t size, void* user) {
    auto* c = static_cast<ServerSession*>(user);
    Stream* s = StreamOf(session, id);
    if (s == nullptr || s->body_too_large) return 0;
    if (c->body_bytes_ + size > c->limits_.body_bytes) {
      s->body_too_large = true;  // Read and dropped; answered 413 at its end.
      c->body_bytes_ -= s->body.size();
      std::string().swap(s->body);
      return 0;
    }
    c->body_bytes_ += size;
    s->body.append(reinterpret_cast<const char*>(data), size);
    return 0;
  }

  static int Frame(nghttp2_session* /*session*/, const nghttp2_frame* frame, void* user) {
    auto* c = static_cast<ServerSession*>(user);
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0)
      return 0;
    auto it = c->streams_.find(frame->hd.stream_id);
    if (it == c->streams_.end() || it->second->surfaced_) return 0;
    it->second->surfaced_ = true;  // The request is whole.
    auto s = it->second;           // The callback may close it.
    c->on_request_(s);
    return 0;
  }

  static int StreamClose(nghttp2_session* /*session*/, int32_t id, uint32_t /*error*/, void* user) {
    static_cast<ServerSession*>(user)->Close(id);
    return 0;
  }

  static ssize_t Read(nghttp2_session* /*session*/, int32_t /*id*/, uint8_t* buf, size_t length,
                      uint32_t* flags, nghttp2_data_source* source, void* /*user*/) {
    auto* s = static_cast<Stream*>(source->ptr);
    const size_t n = std::min(length, s->Waiting());
    if (n == 0 && !s->done) return NGHTTP2_ERR_DEFERRED;  // Resumed when more comes.
    std::memcpy(buf, s->pending.data() + s->offset, n);
    s->offset += n;
    if (s->Waiting() == 0) {
      if (s->pending.capacity() > (size_t{64} << 10)) {
        std::string().swap(s->pending);  // A burst's buffer is not kept by an idle stream.
      } else {
        s->pending.clear();
      }
      s->offset = 0;
      if (s->done) *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (s->offset > (size_t{1} << 20) && s->offset > s->pending.size() / 2) {
      s->pending.erase(0, s->offset);  // Sent bytes do not pile up in front.
      s->offset = 0;
    }
    if (n > 0 && s->on_sent) s->on_sent();
    return static_cast<ssize_t>(n);
  }
};

std::unique_ptr<ServerSession> ServerSession::Make(const Limits& limits, OnRequest on_request) {
  std::unique_ptr<ServerSession> c(new ServerSession(limits, std::move(on_request)));
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) return nullptr;
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, Callbacks::BeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, Callbacks::Header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, Callbacks::Data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Callbacks::Frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Callbacks::StreamClose);
  // Streams past max_streams are refused by nghttp2 itself (RST_STREAM).
  int made = nghttp2_session_server_new(&c->session_, callbacks, c.get());
  nghttp2_session_callbacks_del(callbacks);
  if (made != 0) return nullptr;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits.initial_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(limits.header_bytes)},
  };
  nghttp2_submit_settings(c->session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  return c;
}

ServerSession::~ServerSession() {
  CloseAll();
  nghttp2_session_del(session_);
}

bool ServerSession::Receive(const void* data, size_t size) {
  return nghttp2_session_mem_recv(session_, static_cast<const uint8_t*>(data), size) >= 0;
}

bool ServerSession::Send(std::string& out, size_t batch) {
  const uint8_t* data = nullptr;
  while (out.size() < batch) {
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return false;
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  return true;
}

bool ServerSession::Alive() const {
  return nghttp2_session_want_read(session_) != 0 || nghttp2_session_want_write(session_) != 0;
}

void ServerSession::Respond(Stream& s, unsigned status, const Fields& headers, bool body) {
  if (s.closed) return;
  std::string code = std::to_string(status);
  std::vector<nghttp2_nv> nv;
  nv.reserve(headers.size() + 1);
  auto add = [&nv](const std::string& name, const std::string& value) {
    // nghttp2 only reads these; its API takes them as non-const.
    nv.push_back({const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                  const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())), name.size(),
                  value.size(), NGHTTP2_NV_FLAG_NONE});
  };
  static const std::string kStatus = ":status";
  add(kStatus, code);
  std::vector<std::string> lower;  // Names as HTTP/2 wants them: lower case.
  lower.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    std::string n = name;
    for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (n == "transfer-encoding" || n == "connection" || n == "keep-alive" || n == "upgrade")
      continue;  // Framing and the connection are HTTP/2's own.
    lower.push_back(std::move(n));
    add(lower.back(), value);
  }
  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = Callbacks::Read;
  if (nghttp2_submit_response(session_, s.id, nv.data(), nv.size(), body ? &provider : nullptr) !=
      0) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
  }
}

std::string ServerSession::TakeBody(Stream& s) {
  body_bytes_ -= std::min(body_bytes_, s.body.size());
  return std::move(s.body);
}

void ServerSession::Resume(Stream& s) {
  if (!s.closed) nghttp2_session_resume_data(session_, s.id);
}

void ServerSession::Reset(Stream& s) {
  if (!s.closed)
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
}

void ServerSession::Drain() {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
}

void ServerSession::CloseAll() {
  while (!streams_.empty()) Close(streams_.begin()->first);
}

void ServerSession::Close(int32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  auto s = std::move(it->second);
  streams_.erase(it);
  body_bytes_ -= std::min(body_bytes_, s->body.size());
  s->closed = true;
  s->on_sent = nullptr;
  if (auto done = std::move(s->on_close)) done();
}

int SelectAlpn(ssl_st* /*ssl*/, const unsigned char** out, unsigned char* out_size,
               const unsigned char* in, unsigned int in_size, void* /*arg*/) {
  static const unsigned char kOurs[] = "\x02h2\x08http/1.1";
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_size, kOurs, sizeof kOurs - 1, in, in_size) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // Nothing in common: HTTP/1.1 without ALPN.
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace kiso::http2
