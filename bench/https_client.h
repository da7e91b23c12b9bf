// A minimal HTTPS/1.1 client for benchmarks: one keep-alive TLS connection,
// bearer token, certificate checks off (the bench talks to its own server on
// 127.0.0.1). Streamed responses (watch) are read chunk by chunk.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace kiso::bench {

struct HttpResult {
  int status = 0;
  std::string body;
};

class HttpsClient {
 public:
  HttpsClient(int port, std::string token);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // Connects (again) if needed. status 0 means a transport error.
  HttpResult Request(std::string_view method, std::string_view target, std::string_view body = "",
                     std::string_view content_type = "application/json");
  // Sends a GET and calls `on_data` with each piece of the streamed body
  // until it returns false, the stream ends, or Close() is called.
  bool Stream(std::string_view target, const std::function<bool(std::string_view)>& on_data);
  // Shuts the socket down (from any thread): a blocked Stream returns.
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiso::bench
