// The API server's HTTP/2 request path as bytes reach it: arbitrary input as
// a client's side of a connection, into http2::ServerSession (libnghttp2's
// framing and HPACK, kiso's header, body and stream limits), each whole
// request turned into the handlers' Request (path and query decoding). Every
// other request is answered at once, the rest streamed in pieces under the
// client's flow control and finished at the end. No input may crash, hang or
// grow the session past its limits.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "apiserver/http/http_connection.h"
#include "common/http2_session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiso::http2::Limits limits;
  limits.max_streams = 16;
  limits.body_bytes = 4096;
  limits.header_bytes = 2048;
  std::vector<std::shared_ptr<kiso::http2::Stream>> streamed;
  kiso::http2::ServerSession* raw = nullptr;
  auto session =
      kiso::http2::ServerSession::Make(limits, [&](const std::shared_ptr<kiso::http2::Stream>& s) {
        kiso::apiserver::Request req = kiso::apiserver::RequestOf(*raw, *s);
        if (req.body.size() > limits.body_bytes) std::abort();
        kiso::http2::Fields headers{{"content-type", "text/plain"}, {"x-path", req.path}};
        if (s->headers_too_large || s->body_too_large || (s->id & 2) == 0) {
          s->pending = req.path + req.body;
          s->done = true;
          raw->Respond(*s, s->headers_too_large ? 431 : 200, headers, true);
          return;
        }
        raw->Respond(*s, 200, headers, true);
        streamed.push_back(s);
      });
  if (!session) std::abort();
  raw = session.get();
  std::string out;
  size_t half = size / 2;
  bool alive = session->Receive(data, half);
  session->Send(out, 1 << 20);
  for (auto& s : streamed) {
    s->pending.append(std::string(100000, 'x'));
    session->Resume(*s);
  }
  out.clear();
  if (alive) alive = session->Receive(data + half, size - half);
  session->Send(out, 1 << 20);
  for (auto& s : streamed) {
    s->done = true;
    session->Resume(*s);
    // A stream never holds more than what was put in it.
    if (s->Waiting() > 100000) std::abort();
  }
  out.clear();
  session->Send(out, 1 << 20);
  (void)alive;
  return 0;
}
