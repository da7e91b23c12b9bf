// The HTTP request and response as the API server's handlers see them: plain
// structs, so that only http_server.cc includes Boost.Beast and Asio.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace boost::json {
class value;
}  // namespace boost::json

namespace kiso::apiserver {

struct UserInfo;

// The subject of the client's TLS certificate, when it sent one that the
// cluster CA signed (the HTTPS server verified the chain).
struct PeerCertificate {
  std::string common_name;
  std::vector<std::string> organizations;
};

struct Request {
  std::string method;  // "GET", "POST"…
  std::string path;    // Decoded path, no query.
  std::string target;  // As sent: path and query, still encoded (for relaying).
  std::multimap<std::string, std::string, std::less<>> query;  // Decoded parameters.
  std::map<std::string, std::string, std::less<>> headers;     // Lower-case names.
  std::string body;
  // In process, the body as a decoded document instead of bytes: no JSON round
  // trip between kiso's own clients and the handlers.
  std::shared_ptr<const boost::json::value> object;
  std::string remote;  // "127.0.0.1:53422", for logs.
  std::optional<PeerCertificate> peer;
  // Who sent it, once authenticated; null for kiso's own requests in process.
  std::shared_ptr<const UserInfo> user;
  // In process (kiso's own informers): a watch hands its events over decoded
  // (EventStream::Pulled::events), not as JSON lines to parse again.
  bool decoded_events = false;

  std::string_view Header(std::string_view name) const;
  // The first value of query parameter `name`, if present.
  std::optional<std::string_view> Query(std::string_view name) const;
  // A boolean parameter, parsed like Go's strconv.ParseBool (1,t,T,TRUE,true,True…).
  bool QueryBool(std::string_view name) const;
  std::vector<std::string> QueryAll(std::string_view name) const;

  // Warnings for the client (kube-apiserver's warning recorder: unknown and
  // duplicate fields under fieldValidation=Warn), each sent once as a
  // `Warning: 299 - "…"` header; control characters become spaces, and past
  // kMaxWarningBytes in all the rest are dropped.
  static constexpr size_t kMaxWarningBytes = 4096;
  mutable std::vector<std::string> warnings;
  void Warn(std::string text) const;
};

// A streamed response body (watch, follow logs): chunks written as they come.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Writes one chunk and flushes it. False once the client has gone or the server is stopping.
  virtual bool Write(std::string_view data) = 0;
  // True once the server is shutting down: a stream should end promptly.
  virtual bool Stopping() const = 0;
  // Registers how to wake the stream when the reader goes away (or the server
  // stops), so it ends at once instead of at its next check of Stopping().
  // Writers that cannot tell call nothing. `cancel` must be thread-safe.
  virtual void OnCancel(const std::function<void()>& cancel) { (void)cancel; }
};

// A streamed response body made without holding a thread (a watch): the
// server calls Start once with `wake`, then Pull whenever woken or when the
// time Pull last asked for has come, and sends what Pull returns; Cancel when
// the client has gone. One server thread at a time calls Start, Pull and
// Cancel; `wake` is thread-safe and may be called at any time until Cancel
// returns or the stream is destroyed.
class EventStream {
 public:
  virtual ~EventStream() = default;
  virtual void Start(std::function<void()> wake) = 0;
  // An event of a watch made with Request::decoded_events. The object is
  // shared, read-only, by every in-process watch that receives it (decoded
  // once), and has no metadata.managedFields.
  struct DecodedEvent {
    std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR (a Status object).
    std::shared_ptr<const boost::json::value> object;
  };
  struct Pulled {
    std::string data;                  // What is ready now (may be empty).
    std::vector<DecodedEvent> events;  // Instead, with Request::decoded_events.
    bool done = false;                 // The stream is over after `data`.
    // Pull again at this time at the latest (a timeout, a bookmark).
    std::chrono::steady_clock::time_point next = std::chrono::steady_clock::time_point::max();
  };
  // `max_bytes`: how much the reader can take now; a stream may return a
  // little more (one event), never much more.
  virtual Pulled Pull(size_t max_bytes) = 0;
  virtual void Cancel() = 0;
};

// Runs `events` to its end on the calling thread, writing to `out` (an
// HTTP/1.1 connection's chunks, an in-process client's queue).
void PumpEvents(EventStream& events, StreamWriter& out);

// Streams carried over a WebSocket with Kubernetes' channel protocol
// (v4/v5.channel.k8s.io): a process's standard streams (pods/exec and
// pods/attach: stdin 0, stdout 1, stderr 2, the status 3, resize 4), or a
// pod's ports (pods/portforward, v4: port i on channel 2i both ways, its
// errors on 2i+1; the first frame of each names the port, uint16 little-
// endian). The server owns the descriptors once the response is returned.
struct ChannelSession {
  int stdin_fd = -1;  // -1: no stdin.
  int stdout_fd = -1;
  int stderr_fd = -1;
  struct Port {
    uint16_t number = 0;
    int fd = -1;        // A connection to the port, or -1 and…
    std::string error;  // …why there is none.
  };
  std::vector<Port> ports;  // Port-forward: the session ends when every connection has.
  // Port-forward over SPDY (kubectl): a connection to `port` for each pair of
  // streams the client opens, or -1 with why not in `error`. Set instead of
  // `ports`; the session lasts until the client leaves.
  std::function<int(uint16_t port, std::string* error)> dial;
  // Called once stdout and stderr are closed: waits for the process and
  // returns the channel-3 status object (Success, or Failure with the exit code).
  std::function<std::string()> finish;
  // Called if the client goes away first (kills the process).
  std::function<void()> abort;
  // Called for each terminal size the client sends (channel 4), when the
  // process has a terminal.
  std::function<void(uint16_t cols, uint16_t rows)> resize;
};

// A node agent's connection into the API server, turned around: the agent
// dialled in (TLS verified, bearer token), and the server sends requests down
// it for the agent to serve. Opaque outside the HTTP server.
struct Tunnel;
inline constexpr std::string_view kTunnelProtocol = "kiso-tunnel";
// kubectl's port-forward: SPDY/3.1 frames in a WebSocket's binary messages.
inline constexpr std::string_view kSpdyPortForwardProtocol = "SPDY/3.1+portforward.k8s.io";
// Takes an idle tunnel for one request. False when it is already taken or its
// agent has gone (closed, or the server is stopping).
bool ClaimTunnel(Tunnel& tunnel);
// Ends an idle tunnel (its agent dials another when it wants one).
void CloseTunnel(Tunnel& tunnel);
// The server's own request down a claimed tunnel: GET `target`, the agent's
// status and body (at most 16 MiB), within `timeout`. Uses the tunnel up.
Result<std::pair<int, std::string>> GetThrough(const std::shared_ptr<Tunnel>& tunnel,
                                               const std::string& target,
                                               std::chrono::milliseconds timeout);

// Body bytes a response shares instead of copying them into one string (a
// LIST: each object's cached JSON, which the watch cache keeps anyway):
// `parts` joined by `separator`, then `tail`. A LIST of 10,000 pods built as
// one string was a fresh 26 MB allocation per request, most of its time spent
// faulting that memory in.
struct SharedParts {
  std::vector<std::shared_ptr<const std::string>> parts;
  std::string separator;
  std::string tail;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // When set, the body goes on after `body` with these (see BodyReader).
  std::shared_ptr<const SharedParts> parts;
  // An object response not yet encoded: the HTTP server serialises it into
  // `body`; an in-process client takes it as is.
  std::shared_ptr<boost::json::value> object;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is streamed with chunked encoding by calling this.
  std::function<void(StreamWriter&)> stream;
  // When set, the body is streamed from this, without a thread (HTTP/2), or by
  // PumpEvents (HTTP/1.1, in process).
  std::shared_ptr<EventStream> events;
  // When set, the request is upgraded to a WebSocket speaking `websocket_protocol`
  // (for a session with `dial`: SPDY/3.1+portforward.k8s.io in the WebSocket, or
  // SPDY/3.1 itself when the client asked for `Upgrade: SPDY/3.1`).
  std::shared_ptr<ChannelSession> channels;
  std::string websocket_protocol;
  // When set (a claimed tunnel), the request is forwarded down it with its
  // credentials removed, and bytes are relayed both ways until either side
  // closes: an upgrade-aware proxy, so logs, exec and attach pass unchanged.
  std::shared_ptr<Tunnel> relay;
  // When set, the connection switches (101, Upgrade: kiso-tunnel) into a
  // tunnel handed to this; the connection then waits to be claimed.
  std::function<void(std::shared_ptr<Tunnel>)> accept_tunnel;

  // The length of the whole body: `body` and `parts`.
  size_t BodySize() const;
  // Brings `parts` into `body`, for whoever needs the body in one piece.
  void Flatten();
};

// A response's body, `body` then its `parts`, read in pieces as a connection
// sends it: no copy of the whole.
class BodyReader {
 public:
  // Takes the body (and its parts) out of `response`.
  explicit BodyReader(Response& response)
      : head_(std::move(response.body)), parts_(std::move(response.parts)) {}
  // Copies up to `max` bytes of what is left into `out`; how many, 0 at the end.
  size_t Read(char* out, size_t max);
  bool Done() const { return segment_ >= Segments(); }

 private:
  size_t Segments() const;
  std::string_view Segment(size_t i) const;

  std::string head_;
  std::shared_ptr<const SharedParts> parts_;
  size_t segment_ = 0;  // head, part 0, separator, part 1, …, the last part, tail.
  size_t offset_ = 0;   // Into the current segment.
};

// Serves pods/log|exec|attach|portforward ("log"…) for a pod on one node.
using NodeStreamHandler = std::function<Response(const boost::json::value& pod,
                                                 std::string_view subresource, const Request& req)>;

}  // namespace kiso::apiserver
