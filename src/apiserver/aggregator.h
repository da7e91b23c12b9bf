// API aggregation (kube-aggregator's role): an APIService with a
// spec.service registers /apis/<group>/<version> as served by another API
// server behind that Service. Requests for it are authenticated and
// authorized here, then proxied to one of the Service's ready endpoints over
// TLS (verified against the APIService's caBundle as <service>.<ns>.svc,
// unless insecureSkipTLSVerify), presenting the front proxy's client
// certificate and naming the user in X-Remote-User / X-Remote-Group /
// X-Remote-Extra-* (the request-header authentication aggregated servers
// read from the extension-apiserver-authentication ConfigMap). Discovery
// lists the aggregated groups; each version's resources are those its backend
// last answered for /apis/<group>/<version>.
#pragma once

#include <boost/json/object.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "apiserver/authn/credentials.h"
#include "apiserver/authz/authorizer.h"
#include "apiserver/http/http.h"

namespace kiso::client {
class HttpsTransport;
}

namespace kiso::apiserver {

struct Context;

// A group version an APIService registers to a Service.
struct AggregatedGroupVersion {
  std::string group;
  std::string version;
  int64_t group_priority = 0;    // spec.groupPriorityMinimum.
  int64_t version_priority = 0;  // spec.versionPriority.
  // The backend's APIResourceList for the version, as last answered; null before.
  std::shared_ptr<const boost::json::object> resources;
};

class Aggregator {
 public:
  Aggregator(const Context* ctx, Credentials credentials);
  ~Aggregator();

  // The group and version when `path` is /apis/<group>/<version>[/…] of an
  // APIService with a service, for a version kiso does not serve itself.
  std::optional<std::pair<std::string, std::string>> Claims(std::string_view path) const;
  // What a request for an aggregated path asks, for the authorizers (as
  // kube-apiserver's request info reads any API path).
  static Attributes AttributesOf(const Request& req, const UserInfo* user);
  // Proxies `req` (already authenticated and authorized) to the backend.
  Response Proxy(const Request& req, const std::string& group, const std::string& version);
  // The registered group versions, by group priority then version priority.
  std::vector<AggregatedGroupVersion> Versions() const;

 private:
  std::shared_ptr<client::HttpsTransport> TransportFor(const std::string& address, int port,
                                                       const std::string& server_name,
                                                       const std::string& ca_pem, bool insecure);

  const Context* ctx_;
  Credentials credentials_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<client::HttpsTransport>> transports_;
  std::map<std::string, std::shared_ptr<const boost::json::object>> resources_;  // "g/v".
};

}  // namespace kiso::apiserver
