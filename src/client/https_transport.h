// HttpsTransport: the Client's transport to a remote API server — TLS
// verified against the kubeconfig's CA, bearer token, a pool of keep-alive
// connections, and watch streams read chunk by chunk until the consumer stops.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client/client.h"
#include "client/kubeconfig.h"

namespace kiso::client {

struct TransportOptions {
  // The local address connections come from ("127.0.0.2"); empty: the
  // kernel's choice. Tests and benchmarks use it to be a second client.
  std::string bind_address;
  // The name the server's certificate must carry, also sent as SNI; empty:
  // the kubeconfig's host.
  std::string server_name;
  // How long connecting, the TLS handshake, writing the request and reading
  // an answer's head may take together; zero: no limit.
  std::chrono::milliseconds timeout{0};
  // The most of an answer's body (not a stream's) held in memory; past it the
  // answer is 503.
  size_t max_body_bytes = size_t{1} << 30;
};

// Header fields added to a request as lines of their own (a name may repeat).
using HeaderLines = std::vector<std::pair<std::string, std::string>>;

class HttpsTransport : public Transport {
 public:
  static Result<std::shared_ptr<HttpsTransport>> Create(const KubeConfig& config,
                                                        const TransportOptions& options = {});
  ~HttpsTransport() override;
  // A transport error (connection refused, TLS failure) answers 503 with a
  // Status body naming the server and the cause.
  apiserver::Response RoundTrip(const apiserver::Request& request) override {
    return RoundTrip(request, {});
  }
  apiserver::Response RoundTrip(const apiserver::Request& request, const HeaderLines& extra);
  // Transport::Stream read from the connection on the caller's thread: no
  // thread of its own. The answer's head goes to `head` (with the whole body
  // of an error answer). RoundTrip serves the same body as Response::stream,
  // read on the thread that runs it.
  std::shared_ptr<StreamedBody> Stream(const apiserver::Request& request,
                                       apiserver::Response& head) override;

  // The cluster's API servers (https://HOST:PORT each, one CA): a request
  // goes to the one that answered last, and when it cannot be reached
  // (refused, silent for 5 s, a failed handshake) to the next in turn — the
  // client side of several servers (K3s' agent load balancer). Until called,
  // the kubeconfig's one server. InvalidArgument for a malformed address
  // (nothing changed).
  Status SetServers(const std::vector<std::string>& urls);
  // The server in use.
  std::string server() const;

 private:
  struct Impl;
  explicit HttpsTransport(std::unique_ptr<Impl> impl);
  // RoundTrip's work, but a streamed answer's body goes to `body`, not to Response::stream.
  apiserver::Response Exchange(const apiserver::Request& request, const HeaderLines& extra,
                               std::shared_ptr<StreamedBody>* body);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiso::client
