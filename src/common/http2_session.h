// The server side of one HTTP/2 connection (RFC 9113), framed by Debian's
// libnghttp2 and free of I/O: bytes read from the client go to Receive(),
// bytes to write come from Send(). Each request surfaces once it is whole;
// its answer is a head (Respond) and a body appended to the stream's
// `pending` as it comes, sent under the client's flow control. Shared by the
// API server and the ingress proxy, each with its own I/O and dispatch.
//
// Bounded: concurrent streams, header-field bytes per request (the request
// is still surfaced, marked, to be answered 431), request-body bytes held per
// connection (marked, to be answered 413). Not thread-safe: one thread (the
// connection's) calls everything here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct nghttp2_session;
struct ssl_st;

namespace kiso::http2 {

struct Limits {
  uint32_t max_streams = 128;              // SETTINGS_MAX_CONCURRENT_STREAMS.
  uint32_t initial_window = 1U << 20;      // Per stream, what a client may send unread.
  size_t header_bytes = size_t{64} << 10;  // Per request (name + value + 32 each).
  size_t body_bytes = size_t{3} << 20;     // Request bodies held, all streams together.
};

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Stream {
  int32_t id = 0;
  // The request.
  std::string method, path, authority, scheme;
  Fields fields;  // Lower-case names, in order; cookies joined into one "cookie".
  std::string body;
  bool headers_too_large = false;  // Answer 431.
  bool body_too_large = false;     // Answer 413 (the body was read and dropped).
  // The answer's body not yet framed, from `offset` on; `done` once all of it is there.
  std::string pending;
  size_t offset = 0;
  bool done = false;
  bool closed = false;  // Ended or reset: nothing more goes out.
  // Called (on the connection's thread) when some of `pending` was framed:
  // a producer waiting for room may go on.
  std::function<void()> on_sent;
  // Called once when the stream closes (sent, reset by either side, or the connection ended).
  std::function<void()> on_close;

  size_t Waiting() const { return pending.size() - offset; }

  // Internal.
  size_t header_bytes_ = 0;
  bool surfaced_ = false;
};

class ServerSession {
 public:
  // Called once per request, when it is whole (or marked too large).
  using OnRequest = std::function<void(const std::shared_ptr<Stream>&)>;

  // Null if nghttp2 could not make a session. The SETTINGS frame is queued.
  static std::unique_ptr<ServerSession> Make(const Limits& limits, OnRequest on_request);
  ~ServerSession();
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // Bytes from the client. False: the connection must end once what Send
  // gives is written (a protocol error queues a GOAWAY).
  bool Receive(const void* data, size_t size);
  // Appends frames to `out` until it holds about `batch` bytes. False when
  // the session failed.
  bool Send(std::string& out, size_t batch);
  // False once the session will neither read nor write again (GOAWAY both ways).
  bool Alive() const;
  size_t open_streams() const { return streams_.size(); }

  // The request's body, handed over (and no longer counted as held).
  std::string TakeBody(Stream& s);
  // The answer's head; with `body`, its body then follows from `pending`
  // (add to it, then Resume). Without, the stream ends with the head.
  void Respond(Stream& s, unsigned status, const Fields& headers, bool body);
  // More of `pending` (or `done`) is there to send.
  void Resume(Stream& s);
  // Ends the stream abruptly (a cut answer must look cut).
  void Reset(Stream& s);
  // Stops taking new streams (GOAWAY); open ones finish.
  void Drain();
  // The connection is over: every open stream closes (on_close).
  void CloseAll();

  // Internal (nghttp2's callbacks).
  struct Callbacks;

 private:
  ServerSession(const Limits& limits, OnRequest on_request)
      : limits_(limits), on_request_(std::move(on_request)) {}
  void Close(int32_t id);

  Limits limits_;
  OnRequest on_request_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::shared_ptr<Stream>> streams_;
  size_t body_bytes_ = 0;
};

// ALPN for a TLS server offering h2 and http/1.1 (OpenSSL's
// SSL_CTX_set_alpn_select_cb signature); a client offering neither gets no
// protocol, and is served HTTP/1.1.
int SelectAlpn(ssl_st* ssl, const unsigned char** out, unsigned char* out_size,
               const unsigned char* in, unsigned int in_size, void* arg);

}  // namespace kiso::http2
