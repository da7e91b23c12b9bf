// The ingress proxy against real sockets on 127.0.0.1: backends answering
// HTTP, a client speaking HTTP/1.1 and TLS with SNI.
#include "network/ingress/proxy.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>
#include <sstream>
#include <thread>

namespace kiso::network::ingress {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// A backend: answers "<name> <target> <X-Forwarded-For> <X-Forwarded-Proto>" on
// kept-alive connections, or, with `close_delimited`, an HTTP/1.0 answer ended by closing.
class Backend {
 public:
  explicit Backend(std::string name, bool close_delimited = false, size_t body_size = 0)
      : name_(std::move(name)),
        close_delimited_(close_delimited),
        body_size_(body_size),
        acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] {
      for (;;) {
        boost::system::error_code ec;
        auto s = std::make_shared<tcp::socket>(ioc_);
        acceptor_.accept(*s, ec);
        if (ec || stop_) return;
        ++connections_;
        std::lock_guard lock(mu_);
        sockets_.push_back(s);
        serving_.emplace_back([this, s] { Serve(*s); });
      }
    });
  }
  ~Backend() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket poke(ioc_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
    // Connections still open (a proxy's idle ones) end here, before what they use goes.
    std::lock_guard lock(mu_);
    for (auto& s : sockets_) s->shutdown(tcp::socket::shutdown_both, ec);
    for (auto& t : serving_) t.join();
  }
  std::string target() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  int connections() const { return connections_.load(); }

 private:
  void Serve(tcp::socket& s) {
    Exchange(s);
    // The peer sees the end (the socket itself is closed with the Backend).
    ::shutdown(s.native_handle(), SHUT_RDWR);
  }
  void Exchange(tcp::socket& s) {
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(s, buf, req, ec);
      if (ec) return;
      if (beast::iequals(req[http::field::upgrade], "websocket")) {
        // Switches, then echoes upper-cased what comes, the bytes already read first.
        std::string head =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nX-Seen-Connection: " +
            std::string(req[http::field::connection]) + "\r\n\r\n";
        asio::write(s, asio::buffer(head), ec);
        std::string data = beast::buffers_to_string(buf.data());
        for (;;) {
          for (char& c : data) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          if (!data.empty()) asio::write(s, asio::buffer(data), ec);
          char more[4096];
          size_t n = s.read_some(asio::buffer(more), ec);
          if (ec) return;
          data.assign(more, n);
        }
      }
      if (req.target() == "/headers") {  // Every field as it came, then the body.
        std::string seen;
        for (const auto& f : req) {
          seen += std::string(f.name_string()) + ": " + std::string(f.value()) + "\n";
        }
        http::response<http::string_body> res{http::status::ok, 11};
        res.set("X-Backend-Private", "1");
        res.set(http::field::connection, "X-Backend-Private");
        res.set(http::field::keep_alive, "timeout=5");
        res.body() = seen + "body=" + req.body();
        res.prepare_payload();
        http::write(s, res, ec);
        if (ec) return;
        continue;
      }
      if (req.target() == "/folded") {  // An obs-folded field (RFC 9112 5.2).
        asio::write(s,
                    asio::buffer(std::string("HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\n"
                                             "Content-Length: 2\r\n\r\nok")),
                    ec);
        if (ec) return;
        continue;
      }
      std::string body = name_ + " " + std::string(req.target()) + " " +
                         std::string(req["X-Forwarded-For"]) + " " +
                         std::string(req["X-Forwarded-Proto"]);
      if (req.method() == http::verb::post) body += " posted " + std::to_string(req.body().size());
      if (body_size_ > body.size()) body.resize(body_size_, 'x');
      if (close_delimited_) {
        asio::write(s, asio::buffer("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body),
                    ec);
        return;
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.body() = body;
      res.prepare_payload();
      http::write(s, res, ec);
      if (ec) return;
    }
  }
  std::string name_;
  bool close_delimited_;
  size_t body_size_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;  // guarded by mu_
  std::vector<std::thread> serving_;                   // guarded by mu_
};

std::shared_ptr<ingress::Backend> To(std::vector<std::string> targets) {
  auto b = std::make_shared<ingress::Backend>();
  b->service = "default/svc:80";
  b->targets = std::move(targets);
  return b;
}

struct Answer {
  unsigned status = 0;
  std::string body;
  bool keep_alive = false;
};

// Requests over one kept-alive connection.
class Client {
 public:
  explicit Client(uint16_t port) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  Answer Get(const std::string& host, const std::string& target, unsigned version = 11) {
    http::request<http::string_body> req{http::verb::get, target, version};
    req.set(http::field::host, host);
    http::write(socket_, req);
    http::response<http::string_body> res;
    http::read(socket_, buf_, res);
    return {res.result_int(), res.body(), res.keep_alive()};
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_{ioc_};
  beast::flat_buffer buf_;
};

struct Proxy {
  std::unique_ptr<IngressProxy> proxy;
  Proxy() {
    ProxyOptions o;
    o.address = "127.0.0.1";
    o.http_port = 0;
    o.https_port = 0;
    auto started = IngressProxy::Start(o);
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    proxy = std::move(*started);
  }
  void Routes(const std::function<void(RouteTable&)>& fill) {
    auto t = std::make_shared<RouteTable>();
    fill(*t);
    t->Seal();
    proxy->SetRoutes(t);
  }
};

TEST(IngressProxy, RoutesByHostAndPathAndKeepsTheConnection) {
  Backend a("a"), b("b");
  Proxy p;
  p.Routes([&](RouteTable& t) {
    t.Add({"a.test", "/", PathType::kPrefix, To({a.target()})});
    t.Add({"b.test", "/api", PathType::kPrefix, To({b.target()})});
  });
  Client c(p.proxy->http_port());
  Answer r = c.Get("a.test", "/x?y=1");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "a /x?y=1 127.0.0.1 http");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_EQ(c.Get("b.test:80", "/api/v1").body, "b /api/v1 127.0.0.1 http");
  Answer none = c.Get("b.test", "/web");  // No rule, no default backend: Traefik's 404.
  EXPECT_EQ(none.status, 404u);
  EXPECT_EQ(none.body, "404 page not found\n");
  EXPECT_EQ(c.Get("a.test", "/again").status, 200u);  // The same connection throughout.
  // Backends keep their connections too: one upstream connection served a's two requests.
  EXPECT_EQ(a.connections(), 1);
}

TEST(IngressProxy, RoundRobinSkipsARefusingEndpointAndAnEmptyBackendIs503) {
  Backend a("a"), b("b");
  std::string dead;
  {
    asio::io_context ioc;
    tcp::acceptor closed(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    dead = "127.0.0.1:" + std::to_string(closed.local_endpoint().port());
  }  // Nothing listens there now.
  Proxy p;
  p.Routes([&](RouteTable& t) {
    t.Add({"rr.test", "/", PathType::kPrefix, To({a.target(), dead, b.target()})});
    t.Add({"empty.test", "/", PathType::kPrefix, To({})});
  });
  Client c(p.proxy->http_port());
  std::map<char, int> seen;
  for (int i = 0; i < 30; ++i) {
    Answer r = c.Get("rr.test", "/");
    ASSERT_EQ(r.status, 200u);
    ++seen[r.body[0]];
  }
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen['a'] + seen['b'], 30);
  EXPECT_GE(seen['a'], 10);  // The dead endpoint's turns went to the next one.
  Answer empty = c.Get("empty.test", "/");
  EXPECT_EQ(empty.status, 503u);
  Proxy only_dead;
  only_dead.Routes([&](RouteTable& t) { t.Add({"", "/", PathType::kPrefix, To({dead})}); });
  EXPECT_EQ(Client(only_dead.proxy->http_port()).Get("x", "/").status, 502u);
}

TEST(IngressProxy, StreamsLargeAndCloseDelimitedAnswers) {
  Backend big("big", false, 5 << 20), old("old", true, 100000);
  Proxy p;
  p.Routes([&](RouteTable& t) {
    t.Add({"big.test", "/", PathType::kPrefix, To({big.target()})});
    t.Add({"old.test", "/", PathType::kPrefix, To({old.target()})});
  });
  Client c(p.proxy->http_port());
  Answer r = c.Get("big.test", "/");
  EXPECT_EQ(r.body.size(), size_t{5} << 20);
  Answer o = c.Get("old.test", "/");  // Re-framed as chunked for an HTTP/1.1 client.
  EXPECT_EQ(o.status, 200u);
  EXPECT_EQ(o.body.size(), 100000u);
  EXPECT_TRUE(o.keep_alive);
  EXPECT_EQ(c.Get("big.test", "/").body.size(), size_t{5} << 20);
}

TEST(IngressProxy, PassesAnUpgradeThroughAndRelaysBothWays) {
  Backend ws("ws");
  Proxy p;
  p.Routes([&](RouteTable& t) { t.Add({"ws.test", "/", PathType::kPrefix, To({ws.target()})}); });
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), p.proxy->http_port()));
  // The first bytes of the new protocol come right behind the request.
  asio::write(s, asio::buffer(std::string("GET /chat HTTP/1.1\r\nHost: ws.test\r\n"
                                          "Connection: keep-alive, Upgrade\r\n"
                                          "Upgrade: websocket\r\n\r\nhello")));
  beast::flat_buffer buf;
  http::response_parser<http::empty_body> head;
  head.skip(true);
  http::read_header(s, buf, head);
  EXPECT_EQ(head.get().result_int(), 101);
  EXPECT_EQ(head.get()[http::field::upgrade], "websocket");
  EXPECT_EQ(head.get()["X-Seen-Connection"], "Upgrade");  // Hop by hop: asked for again.
  auto read_until = [&](size_t n) {
    while (buf.size() < n) {
      char more[4096];
      buf.commit(asio::buffer_copy(buf.prepare(sizeof more),
                                   asio::buffer(more, s.read_some(asio::buffer(more)))));
    }
    std::string got = beast::buffers_to_string(buf.data());
    buf.consume(buf.size());
    return got;
  };
  EXPECT_EQ(read_until(5), "HELLO");
  asio::write(s, asio::buffer(std::string("again")));
  EXPECT_EQ(read_until(5), "AGAIN");
  // The backend's end is the client's.
  s.shutdown(tcp::socket::shutdown_send);
  boost::system::error_code ec;
  char rest[16];
  s.read_some(asio::buffer(rest), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
}

// Everything the proxy sends back on one connection until it closes it, or
// until 10 s pass (a socket receive timeout: the test fails rather than hangs).
std::string ReadAll(tcp::socket& s) {
  timeval limit{10, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  std::string out;
  boost::system::error_code ec;
  char buf[4096];
  for (;;) {
    size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  return out;
}

TEST(IngressProxy, RefusesBadAndOversizedRequestsWithoutHarm) {
  Backend a("a");
  ProxyOptions o;
  o.address = "127.0.0.1";
  o.http_port = 0;
  o.https_port = -1;
  o.max_body = 1000;
  auto p = IngressProxy::Start(o);
  ASSERT_TRUE(p.ok());
  auto t = std::make_shared<RouteTable>();
  t->Add({"", "/", PathType::kPrefix, To({a.target()})});
  t->Seal();
  (*p)->SetRoutes(t);
  EXPECT_EQ((*p)->https_port(), 0);
  auto raw = [&](const std::string& bytes) {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), (*p)->http_port()));
    asio::write(s, asio::buffer(bytes));
    std::string out = ReadAll(s);
    return out.substr(0, out.find("\r\n"));
  };
  EXPECT_EQ(raw("GARBAGE\r\n\r\n"), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(
      raw("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x')),
      "HTTP/1.1 413 Payload Too Large");
  EXPECT_EQ(raw("GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(70000, 'x') + "\r\n\r\n"),
            "HTTP/1.1 431 Request Header Fields Too Large");
  Client c((*p)->http_port());
  EXPECT_EQ(c.Get("x", "/fine").status, 200u);
}

TEST(IngressProxy, ForwardsHeadersAsAProxyAndServesPipelinedRequests) {
  Backend a("a");
  Proxy p;
  p.Routes([&](RouteTable& t) { t.Add({"", "/", PathType::kPrefix, To({a.target()})}); });
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), p.proxy->http_port()));
  // Three requests in one write: hop-by-hop fields and spoofed forwarding
  // fields, a chunked body, then an obs-folded answer; the last closes.
  asio::write(s, asio::buffer(std::string(
                     "GET /headers HTTP/1.1\r\nX-Custom: kept\r\nHost: h.test\r\n"
                     "Connection: keep-alive, X-Private\r\nX-Private: secret\r\n"
                     "Keep-Alive: timeout=5\r\nTE: trailers\r\n"
                     "X-Forwarded-For: 10.9.9.9\r\nX-Real-Ip: 10.8.8.8\r\n"
                     "X-Forwarded-Proto: https\r\n\r\n"
                     "POST /headers HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n"
                     "\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                     "GET /folded HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n")));
  beast::flat_buffer buf;
  std::string all = ReadAll(s);
  auto next = [&, at = size_t{0}]() mutable {
    http::response_parser<http::string_body> r;
    boost::system::error_code ec;
    at += r.put(asio::buffer(all.data() + at, all.size() - at), ec);
    if (!ec && !r.is_done()) at += r.put(asio::buffer(all.data() + at, all.size() - at), ec);
    EXPECT_FALSE(ec) << ec.message();
    return r.release();
  };
  auto first = next();
  EXPECT_EQ(first.result_int(), 200);
  EXPECT_EQ(first.body(),
            "Host: h.test\nX-Custom: kept\nX-Forwarded-For: 10.9.9.9, 127.0.0.1\n"
            "X-Forwarded-Proto: http\nX-Forwarded-Host: h.test\nX-Real-Ip: 127.0.0.1\nbody=");
  EXPECT_EQ(first.count("X-Backend-Private"), 0u);  // Named by the backend's Connection.
  EXPECT_EQ(first.count(http::field::keep_alive), 0u);
  EXPECT_EQ(first.count(http::field::connection), 0u);
  auto second = next();
  EXPECT_EQ(second.body(),
            "Host: h.test\nX-Forwarded-For: 127.0.0.1\nX-Forwarded-Proto: http\n"
            "X-Forwarded-Host: h.test\nX-Real-Ip: 127.0.0.1\nContent-Length: 5\nbody=abcde");
  auto third = next();
  EXPECT_EQ(third.body(), "ok");
  EXPECT_EQ(third[http::field::connection], "close");
  EXPECT_EQ(third["X-Folded"], "a b");  // Unfolded by the parser, one line to the client.
  EXPECT_EQ(a.connections(), 1);        // One upstream connection for all three.
}

TEST(IngressProxy, IdleClientsAndSilentBackendsTimeOut) {
  // A backend that accepts and never answers.
  asio::io_context backend_ioc;
  tcp::acceptor silent(backend_ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  ProxyOptions o;
  o.address = "127.0.0.1";
  o.http_port = 0;
  o.https_port = -1;
  o.idle_timeout = std::chrono::seconds(1);
  o.upstream_timeout = std::chrono::seconds(1);
  auto p = IngressProxy::Start(o);
  ASSERT_TRUE(p.ok());
  auto t = std::make_shared<RouteTable>();
  t->Add({"", "/", PathType::kPrefix,
          To({"127.0.0.1:" + std::to_string(silent.local_endpoint().port())})});
  t->Seal();
  (*p)->SetRoutes(t);
  asio::io_context ioc;
  tcp::socket idle(ioc);  // Says nothing: closed after the idle timeout.
  idle.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), (*p)->http_port()));
  EXPECT_EQ(ReadAll(idle), "");
  tcp::socket asking(ioc);  // Waits on the silent backend: 504, then closed.
  asking.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), (*p)->http_port()));
  asio::write(asking, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string answer = ReadAll(asking);
  EXPECT_EQ(answer.substr(0, answer.find("\r\n")), "HTTP/1.1 504 Gateway Timeout");
}

// A self-signed certificate for `name` (PEM certificate, PEM key).
std::pair<std::string, std::string> SelfSigned(const std::string& name) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  X509_sign(cert, key, EVP_sha256());
  auto pem = [](auto write) {
    BIO* b = BIO_new(BIO_s_mem());
    write(b);
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(b);
    return out;
  };
  std::string c = pem([&](BIO* b) { PEM_write_bio_X509(b, cert); });
  std::string k =
      pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
  X509_free(cert);
  EVP_PKEY_free(key);
  return {c, k};
}

// One HTTPS request with SNI `name`: the served certificate's CN and the answer's body.
std::pair<std::string, std::string> GetTls(uint16_t port, const std::string& name) {
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> s(ioc, ctx);
  SSL_set_tlsext_host_name(s.native_handle(), name.c_str());
  beast::get_lowest_layer(s).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  s.handshake(asio::ssl::stream_base::client);
  X509* peer = SSL_get1_peer_certificate(s.native_handle());
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
  X509_free(peer);
  http::request<http::string_body> req{http::verb::get, "/", 11};
  req.set(http::field::host, name);
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return {cn, res.body()};
}

TEST(IngressProxy, HttpsPicksTheIngressCertificateBySni) {
  Backend a("a");
  Proxy p;
  const auto pem = SelfSigned("secure.test");  // A pair: clang lambdas take no bindings.
  const std::string& cert = pem.first;
  const std::string& key = pem.second;
  p.Routes([&](RouteTable& t) {
    t.Add({"secure.test", "/", PathType::kPrefix, To({a.target()})});
    t.Add({"plain.test", "/", PathType::kPrefix, To({a.target()})});
    t.AddCertificate({{"secure.test"}, "ns/tls", cert, key});
    t.AddCertificate({{"broken.test"}, "ns/broken", "not a certificate", key});
  });
  auto [cn, body] = GetTls(p.proxy->https_port(), "secure.test");
  EXPECT_EQ(cn, "secure.test");
  EXPECT_EQ(body, "a / 127.0.0.1 https");
  EXPECT_EQ(GetTls(p.proxy->https_port(), "plain.test").first, "KISO DEFAULT CERT");
  EXPECT_EQ(GetTls(p.proxy->https_port(), "broken.test").first, "KISO DEFAULT CERT");
}

// curl (a real HTTP/2 client, built on the same nghttp2): its output.
std::string Curl(const std::string& args) {
  std::string out;
  FILE* f = popen(("curl -s --no-progress-meter --max-time 20 " + args).c_str(), "r");
  if (!f) return out;
  char chunk[4096];
  size_t n = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) out.append(chunk, n);
  pclose(f);
  return out;
}

TEST(IngressProxy, SpeaksHttp2ByAlpnOnHttpsAndWithPriorKnowledgeOnHttp) {
  Backend a("a"), big("big", false, 5 << 20), old("old", true, 300000);
  Proxy p;
  const auto pem = SelfSigned("secure.test");
  p.Routes([&](RouteTable& t) {
    t.Add({"a.test", "/", PathType::kPrefix, To({a.target()})});
    t.Add({"secure.test", "/", PathType::kPrefix, To({a.target()})});
    t.Add({"big.test", "/", PathType::kPrefix, To({big.target()})});
    t.Add({"old.test", "/", PathType::kPrefix, To({old.target()})});
    t.AddCertificate({{"secure.test"}, "ns/tls", pem.first, pem.second});
  });
  const std::string http = std::to_string(p.proxy->http_port());
  const std::string https = std::to_string(p.proxy->https_port());
  const std::string h2c = "--http2-prior-knowledge -w ' %{http_version} %{http_code}' ";
  EXPECT_EQ(Curl(h2c + "-H 'Host: a.test' http://127.0.0.1:" + http + "/x?y=1"),
            "a /x?y=1 127.0.0.1 http 2 200");
  EXPECT_EQ(Curl(h2c + "-H 'Host: a.test' -d 0123456789 http://127.0.0.1:" + http + "/form"),
            "a /form 127.0.0.1 http posted 10 2 200");
  EXPECT_EQ(Curl(h2c + "-H 'Host: none.test' http://127.0.0.1:" + http + "/"),
            "404 page not found\n 2 404");
  // HTTPS: h2 chosen by ALPN, with the certificate SNI chose.
  EXPECT_EQ(Curl("--http2 -k -w ' %{http_version} %{http_code}' --resolve secure.test:" + https +
                 ":127.0.0.1 https://secure.test:" + https + "/"),
            "a / 127.0.0.1 https 2 200");
  // Large answers under flow control, one framed, one ended by the backend's close.
  const std::string sizes = "-o /dev/null -w '%{http_version} %{size_download}' ";
  EXPECT_EQ(Curl("--http2-prior-knowledge " + sizes +
                 "-H 'Host: big.test' http://127.0.0.1:" + http + "/"),
            "2 5242880");
  EXPECT_EQ(Curl("--http2-prior-knowledge " + sizes +
                 "-H 'Host: old.test' http://127.0.0.1:" + http + "/"),
            "2 300000");
  // Twenty requests at once are streams of one connection (over TLS: curl 7.88's --parallel
  // fails all but the first with prior knowledge, against nginx as well).
  std::string many = "--http2 -k --parallel --resolve secure.test:" + https +
                     ":127.0.0.1 -w '%{http_version} %{http_code} %{num_connects}\\n'";
  for (int i = 0; i < 20; ++i)
    many += " -o /dev/null https://secure.test:" + https + "/" + std::to_string(i);
  std::string out = Curl(many);
  int lines = 0, connects = 0;
  std::istringstream in(out);
  for (std::string version, code, n; in >> version >> code >> n; ++lines) {
    EXPECT_EQ(version, "2");
    EXPECT_EQ(code, "200");
    connects += std::stoi(n);
  }
  EXPECT_EQ(lines, 20) << out;
  EXPECT_EQ(connects, 1) << out;
  // HTTP/1.1 on both ports is unchanged.
  EXPECT_EQ(Client(p.proxy->http_port()).Get("a.test", "/").body, "a / 127.0.0.1 http");
  EXPECT_EQ(GetTls(p.proxy->https_port(), "secure.test").second, "a / 127.0.0.1 https");
}

}  // namespace
}  // namespace kiso::network::ingress
