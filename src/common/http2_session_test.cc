#include "common/http2_session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/h2_client.h"

namespace kiso::http2 {
namespace {

// A real HTTP/2 client (nghttp2's own client session) wired to a
// ServerSession in memory: what each sends is handed to the other. The
// client gives window back only when the test says (a reader that may stop).
class Pair {
 public:
  explicit Pair(Limits limits, uint32_t client_window = 65535)
      : client(client_window, /*manual_window=*/true) {
    server_ = ServerSession::Make(limits, [this](const std::shared_ptr<Stream>& s) {
      requests.push_back(s);
      if (on_request) on_request(s);
    });
  }

  int32_t Get(const std::string& path,
              const std::vector<std::pair<std::string, std::string>>& extra = {},
              const std::string* body = nullptr) {
    std::vector<std::pair<std::string, std::string>> headers{{":authority", "kiso"}};
    headers.insert(headers.end(), extra.begin(), extra.end());
    return client.Submit(body ? "POST" : "GET", path, body ? *body : "", headers);
  }

  // Moves bytes both ways until neither side has anything to say.
  void Exchange() {
    for (int round = 0; round < 1000; ++round) {
      std::string up;
      ASSERT_TRUE(client.Output(up));
      if (!up.empty()) server_alive = server_->Receive(up.data(), up.size()) && server_alive;
      std::string down;
      server_->Send(down, size_t{1} << 30);
      if (!down.empty()) {
        ASSERT_TRUE(client.Input(down));
      }
      if (up.empty() && down.empty()) return;
    }
    FAIL() << "the sessions kept talking";
  }

  testing::H2ClientSession::Stream& answer(int32_t id) { return client.stream(id); }
  ServerSession& server() { return *server_; }

  testing::H2ClientSession client;
  std::vector<std::shared_ptr<Stream>> requests;
  std::function<void(const std::shared_ptr<Stream>&)> on_request;
  bool server_alive = true;

 private:
  std::unique_ptr<ServerSession> server_;
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
  auto& a = p.answer(id);
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
  EXPECT_EQ(p.answer(slow).data.size(), 1024U);  // Its window, no more.
  EXPECT_FALSE(p.answer(slow).closed);
  EXPECT_EQ(p.requests[0]->Waiting(), 100000U - 1024U);  // Held by the server, unsent.
  EXPECT_TRUE(p.answer(fast).closed);
  EXPECT_EQ(p.answer(fast).data, std::string(10, 'z'));
  // The reader goes on: the rest comes, and the producer hears of it.
  while (!p.answer(slow).closed) {
    size_t before = p.answer(slow).data.size();
    p.client.Consume(slow, 1024);
    p.Exchange();
    ASSERT_GT(p.answer(slow).data.size(), before);
  }
  EXPECT_EQ(p.answer(slow).data.size(), 100000U);
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
  p.client.Cancel(first);
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
