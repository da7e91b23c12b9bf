// TunnelDialer: how a standalone node agent serves pods/log, exec and attach
// without listening anywhere (K3s' agent tunnel, in kiso's own form). It keeps
// a few idle HTTPS connections open to the API server, each verified with the
// cluster CA and authenticated with the agent's bearer token, and switched
// into a tunnel (GET /kiso/v1/nodes/NODE/tunnel, Upgrade: kiso-tunnel). The
// server sends one stream request down a tunnel and relays the client's bytes;
// the agent serves it with `handler`, exactly as the server would, and dials a
// fresh tunnel to stay ready. Dropped tunnels are re-dialled with back-off, so
// the agent rides out server restarts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "apiserver/http/http.h"
#include "common/status.h"

namespace kiso::apiserver {

struct TunnelOptions {
  std::string host;  // The API server, as in the kubeconfig.
  uint16_t port = 6443;
  std::string ca_pem;           // Empty: the system's trust store.
  std::string token;            // Or, when empty, the client certificate:
  std::string client_cert_pem;  // the node's own (system:node:<node>).
  std::string client_key_pem;
  std::string node;
  int idle = 2;  // Idle tunnels kept ready.
};

class TunnelDialer {
 public:
  using Handler = std::function<Response(Request&)>;
  static Result<std::unique_ptr<TunnelDialer>> Start(const TunnelOptions& options, Handler handler);
  ~TunnelDialer();  // Stop(), then joins its threads.
  TunnelDialer(const TunnelDialer&) = delete;
  TunnelDialer& operator=(const TunnelDialer&) = delete;

  // Closes every tunnel, idle or serving; idempotent.
  void Stop();
  // Tunnels connected and waiting for a request (for tests and logs).
  int idle() const;

 private:
  struct Impl;
  explicit TunnelDialer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace kiso::apiserver
