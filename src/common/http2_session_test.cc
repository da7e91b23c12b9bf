#include "common/http2_session.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiso::http2 {
namespace {

// A real HTTP/2 client (nghttp2's own client session) wired to a
// ServerSession in memory: what each sends is handed to the other.
class Pair {
 public:
  struct Answer {
    std::map<std::string, std::string> headers;
    std::string data;
    bool closed = false;
    uint32_t error = 0;
  };

  explicit Pair(Limits limits, uint32_t client_window = 65535) {
    server_ = ServerSession::Make(limits, [this](const std::shared_ptr<Stream>& s) {
      requests.push_back(s);
      if (on_request) on_request(s);
    });
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
               const uint8_t* v, size_t vl, uint8_t, void* user) {
          static_cast<Pair*>(user)
              ->answers[f->hd.stream_id]
              .headers[std::string(reinterpret_cast<const char*>(n), nl)] =
              std::string(reinterpret_cast<const char*>(v), vl);
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t n, void* user) {
          static_cast<Pair*>(user)->answers[id].data.append(reinterpret_cast<const char*>(d), n);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, [](nghttp2_session*, int32_t id, uint32_t error, void* user) {
          auto& a = static_cast<Pair*>(user)->answers[id];
          a.closed = true;
          a.error = error;
          return 0;
        });
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // The test gives window back itself (or not: a reader that stops).
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session_client_new2(&client_, cb, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, client_window}};
    nghttp2_submit_settings(client_, NGHTTP2_FLAG_NONE, settings, 1);
  }
  ~Pair() { nghttp2_session_del(client_); }

  int32_t Get(const std::string& path,
              const std::vector<std::pair<std::string, std::string>>& extra = {},
              const std::string* body = nullptr) {
    std::vector<std::pair<std::string, std::string>> h{{":method", body ? "POST" : "GET"},
                                                       {":path", path},
                                                       {":scheme", "https"},
                                                       {":authority", "kiso"}};
    for (auto& e : extra) h.push_back(e);
    std::vector<nghttp2_nv> nv;
    nv.reserve(h.size());
    for (auto& [n, v] : h) {
      nv.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()),
                    n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_data_provider provider{};
    if (body) {
      bodies_.push_back(std::make_unique<std::string>(*body));
      provider.source.ptr = bodies_.back().get();
      provider.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t len,
                                  uint32_t* flags, nghttp2_data_source* src, void*) -> ssize_t {
        auto* rest = static_cast<std::string*>(src->ptr);
        size_t n = std::min(len, rest->size());
        std::copy_n(rest->data(), n, buf);
        rest->erase(0, n);
        if (rest->empty()) *flags |= NGHTTP2_DATA_FLAG_EOF;
        return static_cast<ssize_t>(n);
      };
    }
    return nghttp2_submit_request(client_, nullptr, nv.data(), nv.size(),
                                  body ? &provider : nullptr, nullptr);
  }

  // Moves bytes both ways until neither side has anything to say.
  void Exchange() {
    for (int round = 0; round < 1000; ++round) {
      const uint8_t* data = nullptr;
      std::string up;
      ssize_t n;
      while ((n = nghttp2_session_mem_send(client_, &data)) > 0)
        up.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      if (!up.empty()) server_alive = server_->Receive(up.data(), up.size()) && server_alive;
      std::string down;
      server_->Send(down, size_t{1} << 30);
      if (!down.empty()) {
        nghttp2_session_mem_recv(client_, reinterpret_cast<const uint8_t*>(down.data()),
                                 down.size());
      }
      if (up.empty() && down.empty()) return;
    }
    FAIL() << "the sessions kept talking";
  }

  // The client has read `n` bytes of stream `id` (and of the connection).
  void Consume(int32_t id, size_t n) { nghttp2_session_consume(client_, id, n); }
  void Reset(int32_t id) {
    nghttp2_submit_rst_stream(client_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  }

  ServerSession& server() { return *server_; }
  std::vector<std::shared_ptr<Stream>> requests;
  std::function<void(const std::shared_ptr<Stream>&)> on_request;
  std::map<int32_t, Answer> answers;
  bool server_alive = true;

 private:
  std::unique_ptr<ServerSession> server_;
  nghttp2_session* client_ = nullptr;
  std::vector<std::unique_ptr<std::string>> bodies_;  // What each request has left to send.
};

TEST(Http2Session, ARequestSurfacesWholeAndItsAnswerReachesTheClient) {
  Pair p(Limits{});
  p.on_request = [&](const std::shared_ptr<Stream>& s) {
    s->pending = "hello " + s->path;
    s->done = true;
    p.server().Respond(*s, 200, {{"Content-Type", "text/plain"}, {"Connection", "close"}}, true);
  };
  std::string body = R"({"a":1})";
  int32_t id = p.Get("/api?x=1", {{"cookie", "a=1"}, {"x-one", "1"}, {"cookie", "b=2"}}, &body);
  p.Exchange();
  ASSERT_EQ(p.requests.size(), 1U);
  const Stream& s = *p.requests[0];
  EXPECT_EQ(s.method, "POST");
  EXPECT_EQ(s.path, "/api?x=1");
  EXPECT_EQ(s.authority, "kiso");
  EXPECT_EQ(s.body, body);
  EXPECT_EQ(s.fields, (Fields{{"cookie", "a=1; b=2"}, {"x-one", "1"}}));
  auto& a = p.answers[id];
  EXPECT_TRUE(a.closed);
  EXPECT_EQ(a.headers[":status"], "200");
  EXPECT_EQ(a.headers["content-type"], "text/plain");  // Lower case, as HTTP/2 wants.
  EXPECT_FALSE(a.headers.contains("connection"));      // HTTP/2 has no such field.
  EXPECT_EQ(a.data, "hello /api?x=1");
  EXPECT_EQ(p.server().open_streams(), 0U);
}

TEST(Http2Session, RequestsPastTheLimitsAreMarkedNotHeld) {
  Limits limits;
  limits.body_bytes = 1000;
  limits.header_bytes = 500;
  Pair p(limits);
  std::string big(5000, 'x');
  p.Get("/big", {}, &big);
  p.Get("/fat", {{"x-fat", std::string(600, 'y')}});
  std::string small = "ok";
  p.Get("/small", {}, &small);
  p.Exchange();
  ASSERT_EQ(p.requests.size(), 3U);
  std::map<std::string, std::shared_ptr<Stream>> by_path;
  for (const auto& s : p.requests) by_path[s->path] = s;
  EXPECT_TRUE(by_path["/big"]->body_too_large);
  EXPECT_TRUE(by_path["/big"]->body.empty());
  EXPECT_TRUE(by_path["/fat"]->headers_too_large);
  EXPECT_TRUE(by_path["/fat"]->fields.empty());
  EXPECT_FALSE(by_path["/small"]->body_too_large);
  EXPECT_EQ(by_path["/small"]->body, "ok");
  EXPECT_TRUE(p.server_alive);
}

TEST(Http2Session, AReaderThatStopsStallsOnlyItsOwnStream) {
  Pair p(Limits{}, /*client_window=*/1024);
  p.on_request = [&](const std::shared_ptr<Stream>& s) {
    s->pending = std::string(s->path == "/slow" ? 100000 : 10, 'z');
    s->done = true;
    p.server().Respond(*s, 200, {}, true);
  };
  int sent_calls = 0;
  int32_t slow = p.Get("/slow");
  p.Exchange();
  ASSERT_EQ(p.requests.size(), 1U);
  p.requests[0]->on_sent = [&] { ++sent_calls; };
  int32_t fast = p.Get("/fast");
  p.Exchange();
  EXPECT_EQ(p.answers[slow].data.size(), 1024U);  // Its window, no more.
  EXPECT_FALSE(p.answers[slow].closed);
  EXPECT_EQ(p.requests[0]->Waiting(), 100000U - 1024U);  // Held by the server, unsent.
  EXPECT_TRUE(p.answers[fast].closed);
  EXPECT_EQ(p.answers[fast].data, std::string(10, 'z'));
  // The reader goes on: the rest comes, and the producer hears of it.
  while (!p.answers[slow].closed) {
    size_t before = p.answers[slow].data.size();
    p.Consume(slow, 1024);
    p.Exchange();
    ASSERT_GT(p.answers[slow].data.size(), before);
  }
  EXPECT_EQ(p.answers[slow].data.size(), 100000U);
  EXPECT_GT(sent_calls, 0);
}

TEST(Http2Session, AResetOrTheEndOfTheConnectionClosesStreamsOnce) {
  Pair p(Limits{});
  int closes = 0;
  p.on_request = [&](const std::shared_ptr<Stream>& s) {
    s->on_close = [&] { ++closes; };
    p.server().Respond(*s, 200, {}, true);  // A body that never ends (a watch).
  };
  int32_t first = p.Get("/watch-1");
  p.Get("/watch-2");
  p.Exchange();
  ASSERT_EQ(p.requests.size(), 2U);
  p.Reset(first);
  p.Exchange();
  EXPECT_EQ(closes, 1);
  EXPECT_TRUE(p.requests[0]->closed);
  p.server().CloseAll();
  EXPECT_EQ(closes, 2);
  EXPECT_TRUE(p.requests[1]->closed);
  p.server().CloseAll();
  EXPECT_EQ(closes, 2);
}

}  // namespace
}  // namespace kiso::http2
