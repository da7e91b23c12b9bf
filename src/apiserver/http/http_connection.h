// Connections served over TLS: the blocking HTTP/1.1 request loop a node
// agent runs on each tunnel it dialled, HTTP/2, and what both share with the
// HTTPS server's asynchronous HTTP/1.1 connections (http_server.cc): the
// answers that hold a connection (upgrades, tunnels, relays, streams) run on
// a thread with an io_context of its own, whichever io_context the socket
// belongs to. Internal to kiso_apiserver: it brings in Asio and Beast.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "apiserver/http/fair_gate.h"
#include "apiserver/http/http.h"
#include "common/status.h"

namespace kiso {
class WorkerPool;
namespace api {
struct ApiError;
}  // namespace api
namespace http2 {
class ServerSession;
struct Stream;
}  // namespace http2
}  // namespace kiso

namespace kiso::apiserver {

using SslStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
using HttpHandler = std::function<Response(Request&)>;

struct ConnectionOptions {
  size_t max_body_bytes = size_t{3} << 20;
  const std::atomic<bool>* stopping = nullptr;  // Set while the owner shuts down.
  // Called when a request has been read, before it is handled.
  std::function<void()> on_request;
  // HTTP/1.1: called when the connection starts waiting for its next request.
  std::function<void()> on_idle;
  // Called with each tunnel this connection turns into (the server's list,
  // so that stopping wakes it).
  std::function<void(const std::shared_ptr<Tunnel>&)> on_tunnel;
  // When set, every request that is not long-running needs a seat here for
  // the flow `flow` (the client's address) until its response is written.
  FairGate* gate = nullptr;
  std::string flow;
  // Where requests that pass the gate are handled (each may wait there for
  // its seat); null: with the rest.
  WorkerPool* gated_workers = nullptr;
  // Requests the handler answers at once from memory (HttpsServerOptions::
  // quick): with a seat free at once, handled on the connection's own thread.
  const std::function<bool(const Request&)>* quick = nullptr;
  // The client's verified certificate, given to every request of the connection.
  std::optional<PeerCertificate> peer;
  // HTTP/2: a connection with no open stream ends after this long without a
  // frame; streams one connection may have open at once.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  uint32_t max_streams = 1000;
};

// The CPU priority of the connection's thread: while it serves a read of a
// crowded flow (see FairGate) the thread runs as SCHED_IDLE, on the cores no
// other request wants, so that another client's request does not wait for a
// core behind it (the kernel lets a normal task preempt an idle one at once,
// where between two normal tasks the running one keeps its slice). It also
// leaves the first of the process's cores to everyone else: a kernel built
// without full preemption (PREEMPT_NONE, the default of Debian's and most
// distributions' kernels) preempts an idle task only once it leaves the
// kernel, and a crowded answer spends long stretches there (socket writes,
// page faults), so on a machine of few cores one core is kept clear of them.
// Writes keep their priority: they hold the store's write lock, which an idle
// thread could keep from everyone. Normal again once its flow is within its
// share (where the process may leave SCHED_IDLE: root, or RLIMIT_NICE
// allowing it).
class ThreadPriority {
 public:
  ThreadPriority() = default;
  ThreadPriority(const ThreadPriority&) = delete;
  ThreadPriority& operator=(const ThreadPriority&) = delete;
  ~ThreadPriority() { Set(false); }  // A pooled thread goes back as it came.

  void Set(bool idle) {
    if (idle == idle_ || stuck_) return;
    sched_param param{};
    if (pthread_setschedparam(pthread_self(), idle ? SCHED_IDLE : SCHED_OTHER, &param) != 0) {
      stuck_ = !idle;  // It cannot come back; stop asking.
      return;
    }
    idle_ = idle;
    if (idle) {
      cpu_set_t crowded;
      if (sched_getaffinity(0, sizeof cores_, &cores_) == 0 && CrowdedCores(cores_, &crowded)) {
        pinned_ = sched_setaffinity(0, sizeof crowded, &crowded) == 0;
      }
    } else if (pinned_) {
      pinned_ = sched_setaffinity(0, sizeof cores_, &cores_) != 0;
    }
  }

  // `cores` without its first core; false when that leaves none.
  static bool CrowdedCores(const cpu_set_t& cores, cpu_set_t* out) {
    *out = cores;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, out)) {
        CPU_CLR(c, out);
        break;
      }
    }
    return CPU_COUNT(out) > 0;
  }

 private:
  bool idle_ = false;
  bool stuck_ = false;
  bool pinned_ = false;
  cpu_set_t cores_{};  // The thread's cores before it was pinned.
};

// When a watch's timer is set to pull next, so that it is set again only when
// that time moves (the next bookmark, the timeout), not for every event: each
// setting cancels a wait, runs its handler and changes the reactor's timer
// queue twice under its lock. Both framings' watch pumps keep one.
class PullTime {
 public:
  using Clock = std::chrono::steady_clock;
  // True when the timer must be set for `at` (Pull's `next`), which is then
  // remembered; false for max() (no time) or the time already set.
  bool Moves(Clock::time_point at) {
    if (at == Clock::time_point::max() || at == at_) return false;
    at_ = at;
    return true;
  }
  // The wait ended (it ran out, or the timer was cancelled for good).
  void Clear() { at_ = Clock::time_point::max(); }

 private:
  Clock::time_point at_ = Clock::time_point::max();
};

// A Status as the answer (with Retry-After when it says to retry).
Response StatusAnswer(const api::ApiError& e);

// Sets the request's path (decoded) and query (decoded parameters) from
// `target` as sent: "/api/v1/pods?watch=1".
void SetTarget(Request& req, std::string_view target);
// A request that stays open as long as its client wants (upstream's
// long-running check: watches, follows, exec, attach, port-forward, proxy):
// it holds a connection, not a seat in the fair gate.
bool LongRunning(std::string_view target);

// An answer relayed from elsewhere: its head, its body (StreamWriter::Write,
// which may block while the reader is slow), then its end.
class AnswerSink : public StreamWriter {
 public:
  virtual void Head(int status, std::vector<std::pair<std::string, std::string>> headers) = 0;
  // `clean`: the whole answer came; otherwise the reader must see it cut.
  virtual void End(bool clean) = 0;
};
// Sends `req` down a claimed tunnel and streams the agent's answer into
// `sink`, on the tunnel's own thread; returns at once. A tunnel that broke
// before the answer's head is answered 503.
void ForwardThrough(const std::shared_ptr<Tunnel>& tunnel, const Request& req,
                    std::shared_ptr<AnswerSink> sink);

// An HTTP/2 request as the handlers see it (its body handed over).
Request RequestOf(http2::ServerSession& session, http2::Stream& s);

// Serves an HTTP/2 connection (ALPN "h2") on `stream` until it ends: frames
// are read and written on this thread (`io` runs here), each request is
// handled on `workers`, and watches stream without any thread. Returns once
// no worker is still busy with one of its requests.
void ServeHttp2(boost::asio::io_context& io, SslStream& stream, const std::string& remote,
                const HttpHandler& handler, const ConnectionOptions& options, WorkerPool& workers);

// TLS 1.2 and later only, on a server's or a client's context.
void RestrictTlsVersions(boost::asio::ssl::context& tls);
// A client's context that verifies the server against `ca_pem` (empty: the
// system's trust store). InvalidArgument when the CA cannot be read.
Status TrustServer(boost::asio::ssl::context& tls, const std::string& ca_pem);
// A client's context that presents `cert_pem` (with its chain) and `key_pem`
// to the server; a no-op when both are empty.
Status UseClientCertificate(boost::asio::ssl::context& tls, const std::string& cert_pem,
                            const std::string& key_pem);

// Serves requests on `stream` until the peer closes, a response ends the
// connection, or *stopping, blocking this thread. `buffer` may hold bytes
// already read. WebSockets and relays run asynchronous operations whose
// completions are bound to `io`, run by this thread alone.
void ServeConnection(boost::asio::io_context& io, SslStream& stream,
                     boost::beast::flat_buffer& buffer, const std::string& remote,
                     const HttpHandler& handler, const ConnectionOptions& options);

}  // namespace kiso::apiserver
