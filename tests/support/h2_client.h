// An HTTP/2 client for tests and benchmarks: one TLS connection (ALPN h2,
// certificate not checked: the server is the test's own on 127.0.0.1),
// framed by nghttp2's client session, driven by the calling thread. Requests
// are streams; what each answers is collected, or handed to `on_data`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

struct nghttp2_session;
struct ssl_st;
struct ssl_ctx_st;

namespace kiso::testing {

class H2Client {
 public:
  struct Stream {
    int status = 0;
    std::string data;  // Unless on_data takes it.
    bool closed = false;
    uint32_t error = 0;  // The RST_STREAM code, when reset.
  };

  H2Client(int port, std::string token);
  ~H2Client();
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  // Connected, and the server chose h2.
  bool ok() const { return ok_; }
  // A request on a new stream; its id. Sent at the next Flush or Run.
  int32_t Submit(const std::string& method, const std::string& path, std::string body = "",
                 const std::string& content_type = "application/json");
  // Ends a stream (RST_STREAM CANCEL).
  void Cancel(int32_t id);
  // Sends what is queued; false if the connection failed.
  bool Flush();
  // Reads and answers frames until `done()` holds (true), `timeout` passes or
  // the connection ends (false).
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  // Reads until `stop` (checked every 100 ms) or the connection ends.
  void Run(const std::atomic<bool>& stop);

  Stream& stream(int32_t id) { return streams_[id]; }
  // When set, DATA goes here instead of Stream::data.
  std::function<void(int32_t id, std::string_view data)> on_data;

 private:
  bool ReadOnce(int timeout_ms);

  std::string token_;
  std::string authority_;
  ssl_ctx_st* ctx_ = nullptr;
  ssl_st* ssl_ = nullptr;
  int fd_ = -1;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Stream> streams_;
  std::map<int32_t, std::string> bodies_;  // What each request has left to send.
  bool ok_ = false;
};

}  // namespace kiso::testing
