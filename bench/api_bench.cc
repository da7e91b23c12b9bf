// api_bench: the API server's figures, measured against the real `kiso server`
// binary over HTTPS on 127.0.0.1. One line per figure: `api <figure>=<value> <unit>`.
//   start→/readyz, idle RSS, PSS and private memory; with 10,000 pods stored:
//   LIST all (p50 and max of 30, the server's CPU time meanwhile; again once
//   the server has settled after the creates), GET one
//   p99, create p99 at 1,000 creates/s, RSS; a reader's GET p99 under a flood from another client;
//   custom resource against ConfigMap create p99; RBAC-checked against admin create p99; protobuf
//   against JSON create throughput; TokenReviews per second; `kubectl get pods -A` over HTTP/2
//   against HTTP/1.1; 1,000 watchers over HTTP/1.1 and 10,000 over HTTP/2 (10 connections): p99
//   from write to delivery, the server's CPU per event delivered, its RSS and threads they add.
// Any failed request, missing watch event or unready server fails the run
// (exit 1) after the figures measured so far: no figure drops its failures.
// There is no peer API server on this machine (no kube-apiserver or K3s), so
// the figures stand against the issue's goals rather than a same-run peer.
#include <fcntl.h>
#include <fmt/format.h>
#include <malloc.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/beast/http.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "api/object.h"
#include "api/protobuf.h"
#include "bench_util.h"
#include "client/https_transport.h"
#include "support/h2_client.h"
#include "support/proc.h"
#include "support/temp_dir.h"
#include "support/tls_connect.h"

namespace kiso::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Requests to the server under test through the client library's HTTPS
// transport (keep-alive pool, one connection per concurrent request or stream).
// Certificate checks are off: the benchmark talks to its own server on 127.0.0.1.
class Http {
 public:
  // `from`: the local address to connect from (another client: 127.0.0.2).
  Http(int port, const std::string& token, const std::string& from = "") {
    client::KubeConfig config;
    config.server = fmt::format("https://127.0.0.1:{}", port);
    config.host = "127.0.0.1";
    config.port = port;
    config.insecure = true;
    config.token = token;
    client::TransportOptions options;
    options.bind_address = from;
    transport_ = *client::HttpsTransport::Create(config, options);
  }

  apiserver::Response Request(std::string method, std::string path, std::string body = "",
                              std::string content_type = "application/json") {
    apiserver::Request req;
    req.method = std::move(method);
    if (size_t q = path.find('?'); q != std::string::npos) {  // "?k=v&k2=v2"
      std::string_view query = std::string_view(path).substr(q + 1);
      while (!query.empty()) {
        std::string_view pair = query.substr(0, query.find('&'));
        size_t eq = pair.find('=');
        req.query.emplace(std::string(pair.substr(0, eq)),
                          eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1)));
        query.remove_prefix(std::min(query.size(), pair.size() + 1));
      }
      path.resize(q);
    }
    req.path = std::move(path);
    req.headers.emplace("accept", "application/json");
    req.headers.emplace("content-type", std::move(content_type));
    req.body = std::move(body);
    return transport_->RoundTrip(req);
  }

 private:
  std::shared_ptr<client::HttpsTransport> transport_;
};

void Print(const std::string& figure, double value, const std::string& unit) {
  PrintFigure("api", figure, value, unit);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Pod(int i) {
  return fmt::format(
      R"({{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"pod-{}","labels":{{"app":"bench","shard":"s{}"}}}},)"
      R"("spec":{{"containers":[{{"name":"app","image":"registry.local/app:1.0","ports":[{{"containerPort":8080}}],)"
      R"("resources":{{"requests":{{"cpu":"100m","memory":"64Mi"}}}}}}]}}}})",
      i, i % 10);
}

// Keeps the calling thread to the last of the cores it may use.
void PinToLastCore() {
  cpu_set_t cores;
  if (sched_getaffinity(0, sizeof cores, &cores) != 0) return;
  for (int c = CPU_SETSIZE - 1; c >= 0; --c) {
    if (CPU_ISSET(c, &cores)) {
      CPU_ZERO(&cores);
      CPU_SET(c, &cores);
      sched_setaffinity(0, sizeof cores, &cores);
      return;
    }
  }
}

// One client floods the server — many connections from another address
// (127.0.0.2), each sending LISTs of 100 pods back to back — while another
// client (127.0.0.1, one connection) GETs single pods. Its latency under the
// flood is set against its quiet figure, both from 2,000 samples. False when
// a request of the reading client failed (it must never be turned away).
bool Fairness(int port, const std::string& token, int pods) {
  constexpr int kSamples = 2000;
  constexpr int kFloodConnections = 64;
  Http reader(port, token);
  auto read = [&](std::vector<double>* out) {
    for (int i = 0; i < kSamples; ++i) {
      auto t0 = Clock::now();
      auto res = reader.Request(
          "GET", fmt::format("/api/v1/namespaces/default/pods/pod-{}", (i * 7919) % pods));
      out->push_back(Ms(Clock::now() - t0));
      if (res.status != 200) {
        fmt::print(stderr, "fairness: the reader's GET answered {}: {}\n", res.status, res.body);
        return false;
      }
    }
    return true;
  };
  std::vector<double> quiet, flooded;
  if (!read(&quiet)) return false;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> ok{0}, throttled{0}, other{0};
  std::vector<std::thread> flood;
  flood.reserve(kFloodConnections);
  for (int c = 0; c < kFloodConnections; ++c) {
    flood.emplace_back([&] {
      // The flooding client would run on a machine of its own; here it shares
      // the cores with the server and the reader, so it yields to them (nice
      // 10) and keeps to the last core (where the server also runs the
      // flood's crowded requests), so that the figure measures the server's
      // fairness, not the rig's own client taking the reader's core.
      setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
      PinToLastCore();
      Http client(port, token, "127.0.0.2");
      while (!stop) {
        auto res = client.Request("GET", "/api/v1/namespaces/default/pods?limit=100");
        (res.status == 200 ? ok : res.status == 429 ? throttled : other).fetch_add(1);
        if (res.status != 200 && res.status != 429 && other.load() == 1)
          fmt::print(stderr, "fairness: a flood request answered {}: {}\n", res.status, res.body);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // The flood at full strength.
  auto begin = Clock::now();
  int64_t ok_before = ok.load();
  bool served = read(&flooded);
  double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  int64_t flood_ok = ok.load() - ok_before;
  stop = true;
  for (auto& t : flood) t.join();
  // In µs: the quiet p99 is a few tenths of a millisecond, and the ratio
  // below is read against it.
  Print("fairness_quiet_get_p50", Percentile(quiet, 0.5) * 1000, "us");
  Print("fairness_quiet_get_p99", Percentile(quiet, 0.99) * 1000, "us");
  Print("fairness_flooded_get_p50", Percentile(flooded, 0.5) * 1000, "us");
  Print("fairness_flooded_get_p99", Percentile(flooded, 0.99) * 1000, "us");
  Print("fairness_p99_flooded_over_quiet", Percentile(flooded, 0.99) / Percentile(quiet, 0.99),
        "x");
  Print("fairness_flood_lists_served", static_cast<double>(flood_ok) / seconds, "lists/s");
  Print("fairness_flood_throttled_429", static_cast<double>(throttled.load()), "requests");
  if (other.load() > 0)
    fmt::print(stderr, "fairness: {} flood requests failed otherwise\n", other.load());
  return served;
}

// Polls GET `path` until it answers 200 (a CRD served, a binding applied),
// for at most `seconds`; false, saying what did not happen, after that.
bool WaitUntilOk(Http& client, const std::string& path, int seconds, std::string_view what) {
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  while (client.Request("GET", path).status != 200) {
    if (Clock::now() > deadline) {
      fmt::print(stderr, "{} within {} s\n", what, seconds);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Requests paced open-loop at 1,000/s over `connections` connections: request
// i is due at i ms and `send(i, client)` sends it, as the user of tokens[i %
// tokens.size()] (each connection holds a client per token). Each latency
// counts from when its request was due (a server that falls behind pays for
// it). False when any request failed (send returned false).
bool Paced(int port, const std::vector<std::string>& tokens, int count, int connections,
           const std::function<bool(int, Http&)>& send, std::vector<double>* latencies,
           double* seconds) {
  latencies->assign(static_cast<size_t>(count), 0);
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  auto begin = Clock::now();
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(connections));
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&] {
      std::vector<std::unique_ptr<Http>> clients;
      clients.reserve(tokens.size());
      for (const auto& token : tokens) clients.push_back(std::make_unique<Http>(port, token));
      while (true) {
        int i = next.fetch_add(1);
        if (i >= count) return;
        auto due = begin + std::chrono::microseconds(1000LL * i);
        std::this_thread::sleep_until(due);
        auto sent = Clock::now();
        bool ok = send(i, *clients[static_cast<size_t>(i) % clients.size()]);
        (*latencies)[static_cast<size_t>(i)] = Ms(Clock::now() - std::min(sent, due));
        if (!ok) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  *seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  if (failures > 0) fmt::print(stderr, "{} of {} requests failed\n", failures.load(), count);
  return failures == 0;
}

// Custom resources against a built-in kind: creates of a CronTab (a CRD with a
// schema that validates, defaults and prunes) interleaved with creates of a
// ConfigMap of the same size, paced at 1,000/s in all, 1,200 of each. False
// when anything failed.
bool CustomResources(int port, const std::string& token) {
  Http admin(port, token);
  auto crd = admin.Request(
      "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
      R"({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",)"
      R"("metadata":{"name":"crontabs.stable.example.com"},"spec":{"group":"stable.example.com",)"
      R"("scope":"Namespaced","names":{"plural":"crontabs","kind":"CronTab"},"versions":[{"name":"v1",)"
      R"("served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{)"
      R"("spec":{"type":"object","required":["cronSpec"],"properties":{"cronSpec":{"type":"string",)"
      R"("pattern":"^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},"image":{"type":"string"},)"
      R"("replicas":{"type":"integer","minimum":1,"maximum":10,"default":1}}}}}}}]}})");
  if (crd.status != 201) {
    fmt::print(stderr, "the CRD answered {}: {}\n", crd.status, crd.body);
    return false;
  }
  if (!WaitUntilOk(admin, "/apis/stable.example.com/v1/namespaces/default/crontabs", 30,
                   "the CRD was not served")) {
    return false;
  }
  constexpr int kEach = 1200;
  std::vector<double> all;
  double seconds = 0;
  bool ok = Paced(
      port, {token}, 2 * kEach, 8,
      [](int i, Http& client) {
        int n = i / 2;
        auto res =
            i % 2 == 0
                ? client.Request(
                      "POST", "/apis/stable.example.com/v1/namespaces/default/crontabs",
                      fmt::format(
                          R"({{"apiVersion":"stable.example.com/v1","kind":"CronTab",)"
                          R"("metadata":{{"name":"ct-{}"}},"spec":{{"cronSpec":"* * * * */5",)"
                          R"("image":"registry.local/app:1.0"}}}})",
                          n))
                : client.Request(
                      "POST", "/api/v1/namespaces/default/configmaps",
                      fmt::format(
                          R"({{"apiVersion":"v1","kind":"ConfigMap",)"
                          R"("metadata":{{"name":"cm-{}"}},"data":{{"cronSpec":"* * * * */5",)"
                          R"("image":"registry.local/app:1.0"}}}})",
                          n));
        if (res.status != 201)
          fmt::print(stderr, "a create answered {}: {}\n", res.status, res.body);
        return res.status == 201;
      },
      &all, &seconds);
  if (!ok) return false;
  std::vector<double> custom, builtin;
  for (size_t i = 0; i < all.size(); ++i) (i % 2 == 0 ? custom : builtin).push_back(all[i]);
  Print("custom_resource_create_p99", Percentile(custom, 0.99), "ms");
  Print("configmap_create_p99", Percentile(builtin, 0.99), "ms");
  Print("custom_over_builtin_create_p99", Percentile(custom, 0.99) / Percentile(builtin, 0.99),
        "x");
  return true;
}

// Closed loop: `connections` clients send `count` requests in all as fast as
// they are answered; requests per second, or 0 when any failed.
double Throughput(int port, const std::string& token, int count, int connections,
                  const std::function<bool(int, Http&)>& send) {
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  auto begin = Clock::now();
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(connections));
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&] {
      Http client(port, token);
      for (int i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
        if (!send(i, client)) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  if (failures > 0) fmt::print(stderr, "{} of {} requests failed\n", failures.load(), count);
  return failures > 0 ? 0 : count / seconds;
}

std::string ConfigMap(std::string_view ns, std::string_view name) {
  return fmt::format(
      R"({{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{}","namespace":"{}",)"
      R"("labels":{{"app":"bench"}}}},"data":{{"key":"value","other":"a longer value of text"}}}})",
      name, ns);
}

// Who may do what, and how requests are encoded:
//   - creates paced at 1,000/s, interleaved: the admin (system:masters, which
//     RBAC does not consult) and a ServiceAccount that may create only
//     through a RoleBinding to `edit` (every request walks the bindings);
//   - pod creates as JSON and as protobuf (kubectl's encoding), closed loop;
//   - TokenReviews of a ServiceAccount token per second: each verifies the
//     JWT's signature, issuer, audience and expiry and looks up the account.
// False when anything failed.
bool AuthAndEncodings(int port, const std::string& token) {
  Http admin(port, token);
  auto ok = [](const apiserver::Response& r, int want, std::string_view what) {
    if (r.status == want) return true;
    fmt::print(stderr, "{} answered {}: {}\n", what, r.status, r.body);
    return false;
  };
  if (!ok(admin.Request("POST", "/api/v1/namespaces", R"({"metadata":{"name":"rbac-bench"}})"), 201,
          "the namespace") ||
      !ok(admin.Request("POST", "/api/v1/namespaces/rbac-bench/serviceaccounts",
                        R"({"metadata":{"name":"writer"}})"),
          201, "the service account") ||
      !ok(admin.Request(
              "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/rbac-bench/rolebindings",
              R"({"metadata":{"name":"writer-edits"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io",)"
              R"("kind":"ClusterRole","name":"edit"},"subjects":[{"kind":"ServiceAccount",)"
              R"("name":"writer","namespace":"rbac-bench"}]})"),
          201, "the role binding"))
    return false;
  auto issued = admin.Request("POST", "/api/v1/namespaces/rbac-bench/serviceaccounts/writer/token",
                              R"({"spec":{"expirationSeconds":3600}})");
  if (!ok(issued, 201, "the TokenRequest")) return false;
  std::string sa_token;
  if (size_t at = issued.body.find("\"token\":\""); at != std::string::npos) {
    size_t from = at + 9;
    sa_token = issued.body.substr(from, issued.body.find('"', from) - from);
  }
  // The account's first request waits for the binding to reach the cache.
  Http writer(port, sa_token);
  if (!WaitUntilOk(writer, "/api/v1/namespaces/rbac-bench/configmaps", 10,
                   "the service account was not allowed")) {
    return false;
  }

  constexpr int kEach = 1200;
  std::vector<double> all;
  double seconds = 0;
  if (!Paced(
          port, {token, sa_token}, 2 * kEach, 8,
          [](int i, Http& client) {
            auto res = client.Request("POST", "/api/v1/namespaces/rbac-bench/configmaps",
                                      ConfigMap("rbac-bench", fmt::format("cm-{}", i)));
            if (res.status != 201)
              fmt::print(stderr, "a create answered {}: {}\n", res.status, res.body);
            return res.status == 201;
          },
          &all, &seconds))
    return false;
  std::vector<double> as_admin, as_account;
  for (size_t i = 0; i < all.size(); ++i) (i % 2 == 0 ? as_admin : as_account).push_back(all[i]);
  Print("rbac_admin_create_p99", Percentile(as_admin, 0.99), "ms");
  Print("rbac_serviceaccount_create_p99", Percentile(as_account, 0.99), "ms");
  Print("rbac_over_admin_create_p99", Percentile(as_account, 0.99) / Percentile(as_admin, 0.99),
        "x");

  // JSON against protobuf: the same pods, each encoding in its own namespace.
  constexpr int kPods = 3000;
  std::vector<std::string> json_bodies, proto_bodies;
  for (int i = 0; i < kPods; ++i) {
    json_bodies.push_back(Pod(i));
    auto encoded = api::EncodeProtobuf(*api::ParseJson(Pod(i)));
    if (!encoded.ok()) {
      fmt::print(stderr, "protobuf encoding failed: {}\n", encoded.error().message);
      return false;
    }
    proto_bodies.push_back(std::move(*encoded));
  }
  for (const char* ns : {"json-bench", "proto-bench"}) {
    if (!ok(admin.Request("POST", "/api/v1/namespaces",
                          fmt::format(R"({{"metadata":{{"name":"{}"}}}})", ns)),
            201, "a namespace"))
      return false;
  }
  double json_rate = Throughput(port, token, kPods, 8, [&](int i, Http& client) {
    return client
               .Request("POST", "/api/v1/namespaces/json-bench/pods",
                        json_bodies[static_cast<size_t>(i)])
               .status == 201;
  });
  double proto_rate = Throughput(port, token, kPods, 8, [&](int i, Http& client) {
    return client
               .Request("POST", "/api/v1/namespaces/proto-bench/pods",
                        proto_bodies[static_cast<size_t>(i)], "application/vnd.kubernetes.protobuf")
               .status == 201;
  });
  if (json_rate == 0 || proto_rate == 0) return false;
  Print("json_create_throughput", json_rate, "creates/s");
  Print("protobuf_create_throughput", proto_rate, "creates/s");
  Print("protobuf_over_json_throughput", proto_rate / json_rate, "x");

  // TokenReviews: the validations a client's requests cost the server.
  std::string review = fmt::format(
      R"({{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{}"}}}})",
      sa_token);
  double reviews = Throughput(port, token, 6000, 8, [&](int, Http& client) {
    auto res = client.Request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", review);
    return res.status == 201 && res.body.find("\"authenticated\":true") != std::string::npos;
  });
  if (reviews == 0) return false;
  Print("token_reviews", reviews, "validations/s");
  return true;
}

// Hands a watcher's data (watcher index, bytes) to the fan-out's accounting.
using FanOutSink = std::function<void(int, std::string_view)>;

// HTTP/1.1 watches of `target`, each on a TLS connection of its own, all
// read by one thread through one epoll set. A fleet's watchers are processes
// on other machines; a thread per watcher here (as this benchmark had) put a
// thousand of the benchmark's own threads on the server's two cores.
class H1Watchers {
 public:
  // Connects and sends every request; watcher `first + i` is connection i.
  H1Watchers(int port, const std::string& token, const std::string& target, int first, int count)
      : first_(first) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    std::string request = fmt::format(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n"
        "Accept: application/json\r\n\r\n",
        target, port, token);
    for (int i = 0; i < count; ++i) {
      auto conn = std::make_unique<Conn>();
      if (!testing::ConnectTls(ctx_, port, &conn->fd, &conn->ssl) ||
          SSL_write(conn->ssl, request.data(), static_cast<int>(request.size())) !=
              static_cast<int>(request.size())) {
        return;
      }
      fcntl(conn->fd, F_SETFL, fcntl(conn->fd, F_GETFL) | O_NONBLOCK);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = static_cast<uint64_t>(i);
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, conn->fd, &ev) != 0) return;
      conns_.push_back(std::move(conn));
    }
    ok_ = true;
  }
  ~H1Watchers() {
    conns_.clear();
    close(epoll_);
    SSL_CTX_free(ctx_);
  }
  H1Watchers(const H1Watchers&) = delete;
  H1Watchers& operator=(const H1Watchers&) = delete;

  bool ok() const { return ok_; }

  // Hands each watcher's decoded body to `sink` until `stop` (checked every
  // 100 ms) or a connection fails.
  void Run(const FanOutSink& sink, const std::atomic<bool>& stop) {
    for (size_t i = 0; i < conns_.size(); ++i) {
      Conn& c = *conns_[i];
      c.on_chunk = [&sink, watcher = first_ + static_cast<int>(i)](
                       std::uint64_t, std::string_view data, boost::beast::error_code&) {
        sink(watcher, data);
        return data.size();
      };
      c.parser.on_chunk_body(c.on_chunk);  // The parser keeps a reference.
    }
    std::vector<epoll_event> events(64);
    while (ok_ && !stop.load()) {
      int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 100);
      for (int e = 0; e < n; ++e) {
        size_t i = events[static_cast<size_t>(e)].data.u64;
        if (!Read(*conns_[i])) {
          fmt::print(stderr, "HTTP/1.1 watcher {} failed\n", first_ + static_cast<int>(i));
          ok_ = false;
        }
      }
    }
  }

 private:
  struct Conn {
    Conn() {
      parser.body_limit(boost::none);  // A watch does not end.
      parser.eager(true);              // One put parses past the head into the body.
    }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
    ~Conn() {
      if (ssl != nullptr) SSL_free(ssl);
      if (fd >= 0) close(fd);
    }
    int fd = -1;
    SSL* ssl = nullptr;
    std::string in;  // Bytes read and not yet parsed.
    // The answer's head, then its chunks to the callback Run sets.
    boost::beast::http::response_parser<boost::beast::http::empty_body> parser;
    std::function<size_t(std::uint64_t, std::string_view, boost::beast::error_code&)> on_chunk;
  };

  // Reads and parses what the connection has; false if the stream ended,
  // broke HTTP/1.1 or was not answered 200.
  static bool Read(Conn& c) {
    namespace http = boost::beast::http;
    char buf[16384];
    while (true) {
      int n = SSL_read(c.ssl, buf, sizeof buf);
      if (n <= 0) {
        int err = SSL_get_error(c.ssl, n);
        return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
      }
      c.in.append(buf, static_cast<size_t>(n));
      while (!c.in.empty()) {
        boost::beast::error_code ec;
        size_t used = c.parser.put(boost::asio::buffer(c.in), ec);
        c.in.erase(0, used);
        if (ec == http::error::need_more) break;
        if (ec || c.parser.is_done()) return false;
        if (c.parser.is_header_done() && c.parser.get().result_int() != 200) return false;
        if (used == 0) break;
      }
    }
  }

  int first_;
  SSL_CTX* ctx_ = nullptr;
  int epoll_ = -1;
  std::vector<std::unique_ptr<Conn>> conns_;
  bool ok_ = false;
};

// Fan-out: `watchers` watches of the ConfigMap "probe", started by `start`
// (threads that call the sink until `stop`); 20 writes, each carrying its send
// time, then what reached every watcher how fast, and the server's RSS and
// threads with the watches held (over what it had before they started).
bool FanOut(int port, const std::string& token, pid_t pid, const std::string& name, int watchers,
            const std::function<void(const FanOutSink&, const std::atomic<bool>&,
                                     std::vector<std::thread>&)>& start) {
  Http writer(port, token);
  std::mutex mu;
  std::vector<double> delays;
  std::atomic<int> connected{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::vector<std::string> pending(static_cast<size_t>(watchers));
  std::vector<char> first(static_cast<size_t>(watchers), 1);
  auto epoch = Clock::now();
  double rss_before = testing::RssMb(pid);
  int threads_before = testing::Threads(pid);
  // Each watcher's bytes come from one thread at a time (its own, or its connection's).
  FanOutSink sink = [&](int i, std::string_view data) {
    auto& rest = pending[static_cast<size_t>(i)];
    rest += data;
    size_t nl;
    while ((nl = rest.find('\n')) != std::string::npos) {
      std::string line = rest.substr(0, nl);
      rest.erase(0, nl + 1);
      if (first[static_cast<size_t>(i)]) {  // The initial ADDED: this watcher is live.
        first[static_cast<size_t>(i)] = 0;
        connected.fetch_add(1);
        continue;
      }
      size_t at = line.find("\"t\":\"");
      if (at == std::string::npos) continue;
      long long sent = std::stoll(line.substr(at + 5));
      double delay = Ms(Clock::now() - epoch) - static_cast<double>(sent) / 1000.0;
      std::lock_guard lock(mu);
      delays.push_back(delay);
    }
  };
  auto end = [&] {
    stop = true;  // Each stream ends at its next read (within 200 ms).
    for (auto& t : threads) t.join();
  };
  start(sink, stop, threads);
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (connected.load() < watchers && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Print(name + "ers_connected", connected.load(), "watchers");
  if (connected.load() < watchers) {
    fmt::print(stderr, "only {} of {} watchers connected\n", connected.load(), watchers);
    end();
    return false;
  }
  Print(name + "_rss_growth", testing::RssMb(pid) - rss_before, "MB");
  Print(name + "_server_threads_added", testing::Threads(pid) - threads_before, "threads");
  constexpr int kWrites = 20;
  const double cpu_before = testing::CpuMs(pid);
  for (int w = 0; w < kWrites; ++w) {
    long long us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - epoch).count();
    auto res = writer.Request("PATCH", "/api/v1/namespaces/default/configmaps/probe",
                              fmt::format(R"({{"data":{{"t":"{}"}}}})", us),
                              "application/merge-patch+json");
    if (res.status != 200) {
      fmt::print(stderr, "the watched write answered {}: {}\n", res.status, res.body);
      end();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  size_t expected = static_cast<size_t>(kWrites) * static_cast<size_t>(watchers);
  auto wait_until = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < wait_until) {
    {
      std::lock_guard lock(mu);
      if (delays.size() >= expected) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The server's CPU over the writes and their delivery, per event delivered
  // (idle otherwise: its share of the 20 writes themselves is small).
  const double cpu_ms = testing::CpuMs(pid) - cpu_before;
  Print(name + "_rss", testing::RssMb(pid), "MB");
  end();
  std::lock_guard lock(mu);
  Print(name + "_events_delivered", static_cast<double>(delays.size()), "events");
  Print(name + "_server_cpu_per_event", 1000.0 * cpu_ms / std::max<double>(1, delays.size()), "us");
  Print(name + "_fanout_p50", Percentile(delays, 0.50), "ms");
  Print(name + "_fanout_p99", Percentile(delays, 0.99), "ms");
  if (delays.size() != expected) {
    fmt::print(stderr, "{} of {} watch events were delivered\n", delays.size(), expected);
    return false;
  }
  return true;
}

// `kubectl get pods -A` of every stored pod, over HTTP/2 (what kubectl
// negotiates) and over HTTP/1.1 (client-go's DISABLE_HTTP2): medians of three.
bool KubectlGet(const testing::TempDir& dir, int pods) {
  std::string kubeconfig = dir.File("kubeconfig.yaml");
  auto wall = [&](bool http2) -> double {
    std::vector<double> runs;
    for (int i = 0; i < 3; ++i) {
      std::string command =
          fmt::format("HOME={} KUBECONFIG={} {} kubectl get pods -A --no-headers 2>&1 | wc -l",
                      dir.path(), kubeconfig, http2 ? "" : "DISABLE_HTTP2=1");
      auto t0 = Clock::now();
      FILE* p = popen(command.c_str(), "r");
      if (p == nullptr) return -1;
      char buf[64] = {};
      size_t n = fread(buf, 1, sizeof buf - 1, p);
      pclose(p);
      runs.push_back(Ms(Clock::now() - t0));
      // Every pod stored (the benchmark's others too), one line each.
      if (std::atoi(std::string(buf, n).c_str()) < pods) {
        fmt::print(stderr, "kubectl get pods -A listed {} lines, fewer than {}\n",
                   std::string(buf, n), pods);
        return -1;
      }
    }
    return Percentile(runs, 0.5);
  };
  double h1 = wall(false);
  double h2 = wall(true);
  if (h1 < 0 || h2 < 0) return false;
  Print("kubectl_get_pods_http1", h1, "ms");
  Print("kubectl_get_pods_http2", h2, "ms");
  Print("kubectl_get_pods_http2_over_http1", h2 / h1, "x");
  return true;
}

int Run(const std::string& kiso, int pods, int watchers, int h2_watchers, int h2_connections) {
  testing::TempDir dir("apibench");
  int port = testing::FreeLoopbackPort();
  auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    std::string log = dir.File("server.log");
    freopen(log.c_str(), "w", stdout);
    freopen(log.c_str(), "a", stderr);
    execl(kiso.c_str(), kiso.c_str(), "server", "--data-dir", dir.path().c_str(), "--https-port",
          std::to_string(port).c_str(), "--disable-agent", nullptr);
    _exit(127);
  }
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  } reaper{pid};

  // start → /readyz: poll until the server answers (a benchmark may poll; tests watch).
  std::string token;
  while (true) {
    if (Clock::now() - start > std::chrono::seconds(30)) {
      fmt::print(stderr, "server not ready in 30 s\n");
      return 1;
    }
    Http probe(port, "");
    if (probe.Request("GET", "/readyz").status == 200) break;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  Print("ready", Ms(Clock::now() - start), "ms");
  token = ReadFile(dir.File("tls/admin.token"));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  Print("idle_rss", testing::RssMb(pid), "MB");
  // RSS counts every shared library page; PSS its share of them; private what only it holds.
  Print("idle_pss", testing::SmapsMb(pid, "Pss"), "MB");
  Print("idle_private", testing::PrivateMb(pid), "MB");
  Print("idle_threads", testing::Threads(pid), "threads");

  // Creates, paced open-loop at 1,000/s over a pool of connections.
  {
    std::vector<double> latencies;
    double seconds = 0;
    if (!Paced(
            port, {token}, pods, 16,
            [](int i, Http& client) {
              return client.Request("POST", "/api/v1/namespaces/default/pods", Pod(i)).status ==
                     201;
            },
            &latencies, &seconds)) {
      return 1;
    }
    Print("create_rate", pods / seconds, "creates/s");
    Print("create_p50", Percentile(latencies, 0.50), "ms");
    Print("create_p99", Percentile(latencies, 0.99), "ms");
  }

  // LIST of every pod and GET of one, with 10,000 stored.
  {
    Http client(port, token);
    // Thirty LISTs, each timed and checked for every pod, and the server's CPU
    // time over them, per LIST: what serving them cost, and whatever else the
    // server did meanwhile.
    struct Lists {
      std::vector<double> ms;
      double server_cpu = 0;
      size_t bytes = 0;
    };
    // One LIST first, not timed: the body's 26 MB may be fresh pages of this
    // process then, and each page's first touch is a fault (about 13 µs on
    // this PVM guest: 85–90 ms for a body; a new process's first two LISTs
    // took 120–130 ms against 38 for the rest). main() keeps the heap from
    // handing the pages back between LISTs. Before both, a series' slowest
    // LIST was 120–200 ms against a p50 of 35–50; curl, which keeps no body,
    // never showed such a LIST.
    auto thirty_lists = [&](Lists* out) {
      (void)client.Request("GET", "/api/v1/pods");
      const double cpu_before = testing::CpuMs(pid);
      for (int i = 0; i < 30; ++i) {
        auto t0 = Clock::now();
        auto res = client.Request("GET", "/api/v1/pods");
        out->ms.push_back(Ms(Clock::now() - t0));
        out->bytes = res.body.size();
        if (res.status != 200 ||
            res.body.find(fmt::format("\"pod-{}\"", pods - 1)) == std::string::npos) {
          fmt::print(stderr, "LIST answered {} without every pod\n", res.status);
          return false;
        }
      }
      out->server_cpu = (testing::CpuMs(pid) - cpu_before) / 30;
      return true;
    };
    // Right after the creates: the controllers and the scheduler are still at
    // work on the pods just created.
    Lists busy;
    if (!thirty_lists(&busy)) return 1;
    std::vector<double> get;
    for (int i = 0; i < 2000; ++i) {
      auto t0 = Clock::now();
      auto res = client.Request(
          "GET", fmt::format("/api/v1/namespaces/default/pods/pod-{}", (i * 7919) % pods));
      get.push_back(Ms(Clock::now() - t0));
      if (res.status != 200) {
        fmt::print(stderr, "GET answered {}: {}\n", res.status, res.body);
        return 1;
      }
    }
    // Thirty LISTs: a median and the slowest, not a 99th percentile.
    Print("list_all_p50", Percentile(busy.ms, 0.50), "ms");
    Print("list_all_max", Percentile(busy.ms, 1.0), "ms");
    Print("list_all_bytes", static_cast<double>(busy.bytes) / (1024 * 1024), "MiB");
    Print("list_window_server_cpu", busy.server_cpu, "ms");
    Print("get_p99", Percentile(get, 0.99), "ms");
    // The same thirty LISTs once the server has settled (each pod is
    // unschedulable here: a status write and an Event apiece). Settled: under
    // 50 ms of the server's CPU in a 500 ms window.
    auto settle_deadline = Clock::now() + std::chrono::seconds(180);
    bool settled = false;
    for (double cpu = testing::CpuMs(pid); !settled && Clock::now() < settle_deadline;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      double now = testing::CpuMs(pid);
      settled = now - cpu < 50;
      cpu = now;
    }
    if (!settled) {
      fmt::print(stderr, "the server did not settle within 180 s of the creates\n");
      return 1;
    }
    Lists quiet;
    if (!thirty_lists(&quiet)) return 1;
    Print("list_all_settled_p50", Percentile(quiet.ms, 0.50), "ms");
    Print("list_all_settled_max", Percentile(quiet.ms, 1.0), "ms");
    Print("list_settled_server_cpu", quiet.server_cpu, "ms");
    Print("rss_with_pods", testing::RssMb(pid), "MB");
  }

  if (!Fairness(port, token, pods)) return 1;
  if (!CustomResources(port, token)) return 1;
  if (!AuthAndEncodings(port, token)) return 1;

  if (!KubectlGet(dir, pods)) return 1;
  {
    Http writer(port, token);
    writer.Request("POST", "/api/v1/namespaces/default/configmaps",
                   R"({"metadata":{"name":"probe"},"data":{"t":"0"}})");
  }
  const std::string probe_path = "/api/v1/namespaces/default/configmaps";
  // HTTP/1.1: each watch holds a connection of its own; as many reading
  // threads as HTTP/2 has connections below.
  bool fanned =
      FanOut(port, token, pid, "watch", watchers,
             [&](const FanOutSink& sink, const std::atomic<bool>& stop,
                 std::vector<std::thread>& threads) {
               int per = (watchers + h2_connections - 1) / h2_connections;
               for (int first = 0; first < watchers; first += per) {
                 int count = std::min(per, watchers - first);
                 threads.emplace_back([&, first, count] {
                   H1Watchers set(port, token,
                                  probe_path + "?watch=true&fieldSelector=metadata.name%3Dprobe",
                                  first, count);
                   if (!set.ok()) {
                     fmt::print(stderr, "HTTP/1.1 watchers {}+{} failed to start\n", first, count);
                     return;
                   }
                   set.Run(sink, stop);
                 });
               }
             });
  if (!fanned) return 1;
  // HTTP/2: many watches as streams of a few connections, no thread per watch.
  fanned =
      FanOut(port, token, pid, "h2_watch", h2_watchers,
             [&](const FanOutSink& sink, const std::atomic<bool>& stop,
                 std::vector<std::thread>& threads) {
               int per = (h2_watchers + h2_connections - 1) / h2_connections;
               for (int c = 0; c * per < h2_watchers; ++c) {
                 int first = c * per;
                 int count = std::min(per, h2_watchers - first);
                 threads.emplace_back([&, first, count] {
                   testing::H2Client conn(port, token);
                   std::map<int32_t, int> index;  // Stream → watcher.
                   for (int i = 0; i < count; ++i) {
                     index[conn.Submit(
                         "GET", probe_path + "?watch=true&fieldSelector=metadata.name%3Dprobe")] =
                         first + i;
                   }
                   conn.on_data = [&](int32_t id, std::string_view data) { sink(index[id], data); };
                   if (!conn.ok()) {
                     fmt::print(stderr, "an HTTP/2 connection failed\n");
                     return;
                   }
                   conn.Run(stop);
                 });
               }
             });
  if (!fanned) return 1;
  return 0;
}

}  // namespace
}  // namespace kiso::bench

int main(int argc, char** argv) {
  if (!kiso::bench::CleanMachine()) return 2;
  // Bodies of tens of MB (LISTs of every pod: 26 MB) from the heap, kept
  // there once freed: not a fresh mapping, faulted in page by page, for each
  // (glibc maps anything over its adaptive threshold afresh, and trims the
  // heap's top). 32 MB is the most glibc takes for the threshold.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  CLI::App app{"api_bench: figures of kiso's API server"};
  std::string kiso = "build/src/cmd/kiso";
  int pods = 10000;
  int watchers = 1000;
  int h2_watchers = 10000;
  int h2_connections = 10;
  app.add_option("--kiso", kiso, "Path of the kiso binary")->capture_default_str();
  app.add_option("--pods", pods, "Pods to store")->capture_default_str();
  app.add_option("--watchers", watchers, "Concurrent watchers over HTTP/1.1")
      ->capture_default_str();
  app.add_option("--h2-watchers", h2_watchers, "Concurrent watchers over HTTP/2")
      ->capture_default_str();
  app.add_option("--h2-connections", h2_connections, "HTTP/2 connections they share")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return kiso::bench::Run(kiso, pods, watchers, h2_watchers, h2_connections);
}
