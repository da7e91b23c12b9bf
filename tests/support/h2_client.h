// HTTP/2 clients for tests and benchmarks, on nghttp2's own client session.
// H2ClientSession frames requests and reads answers in memory (bytes out
// from Output, bytes in to Input): the unit tests wire it to a server session
// directly. H2Client carries one over a TLS connection (ALPN h2, certificate
// not checked: the server is the test's own on 127.0.0.1), driven by the
// calling thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct nghttp2_session;
struct ssl_st;
struct ssl_ctx_st;

namespace kiso::testing {

class H2ClientSession {
 public:
  struct Stream {
    int status = 0;
    std::map<std::string, std::string> headers;
    std::string data;  // Unless on_data takes it.
    bool closed = false;
  };

  // `window`: what each stream may be sent unread. With `manual_window`, the
  // window comes back only through Consume (a reader that may stop).
  explicit H2ClientSession(uint32_t window = 1U << 20, bool manual_window = false);
  ~H2ClientSession();
  H2ClientSession(const H2ClientSession&) = delete;
  H2ClientSession& operator=(const H2ClientSession&) = delete;

  // A request on a new stream (`extra` headers after the pseudo-headers); its id.
  int32_t Submit(const std::string& method, const std::string& path, std::string body = "",
                 const std::vector<std::pair<std::string, std::string>>& extra = {});
  // Ends a stream (RST_STREAM CANCEL).
  void Cancel(int32_t id);
  // Gives back `n` bytes of window to stream `id` and to the connection.
  void Consume(int32_t id, size_t n);
  // Appends the frames to send to `out`; false if the session failed.
  bool Output(std::string& out);
  // Bytes from the server; false if they broke the protocol.
  bool Input(std::string_view data);

  Stream& stream(int32_t id) { return streams_[id]; }
  // When set, DATA goes here instead of Stream::data.
  std::function<void(int32_t id, std::string_view data)> on_data;

 private:
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Stream> streams_;
  std::map<int32_t, std::string> bodies_;  // What each request has left to send.
};

class H2Client : public H2ClientSession {
 public:
  H2Client(int port, std::string token);
  ~H2Client();
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  // Connected, and the server chose h2.
  bool ok() const { return ok_; }
  // A request with the token and the server's authority.
  int32_t Submit(const std::string& method, const std::string& path, std::string body = "");
  // Sends what is queued; false if the connection failed.
  bool Flush();
  // Reads and answers frames until `done()` holds (true), `timeout` passes or
  // the connection ends (false).
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  // Reads until `stop` (checked every 100 ms) or the connection ends.
  void Run(const std::atomic<bool>& stop);

 private:
  bool ReadOnce(int timeout_ms);

  std::string token_;
  std::string authority_;
  ssl_ctx_st* ctx_ = nullptr;
  ssl_st* ssl_ = nullptr;
  int fd_ = -1;
  bool ok_ = false;
};

}  // namespace kiso::testing
