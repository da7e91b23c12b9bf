// Ingress routing as the networking.k8s.io/v1 API defines it: which backend
// serves a request, given its host and path. A RouteTable is immutable once
// built; the ingress proxy (proxy.h) swaps in a new one when Ingresses,
// Services or endpoints change, so a request reads one consistent table.
//
// Precedence (the Ingress API's, as Traefik and ingress-nginx apply it):
// rules of an exact host, then of a wildcard host ("*.example.com" matches
// one label: a.example.com, not a.b.example.com nor example.com), then of no
// host; within them the longest matching path, Exact before Prefix at equal
// length; then the default backend. Prefix matches whole path elements:
// "/foo" matches /foo, /foo/ and /foo/bar, never /foobar; a trailing slash
// of the rule is ignored. ImplementationSpecific is treated as Prefix.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiso::network::ingress {

// Where a rule sends requests: a Service port and its ready endpoints now.
struct Backend {
  std::string service;               // "ns/name:port", for logs and errors.
  std::vector<std::string> targets;  // "ip:port" of each ready endpoint.
  // Round robin across targets (shared by every request using the table).
  mutable std::atomic<uint64_t> next{0};
};

enum class PathType { kExact, kPrefix };

struct Rule {
  std::string host;  // "" (any), "a.example.com" or "*.example.com"; lower case.
  std::string path = "/";
  PathType type = PathType::kPrefix;
  std::shared_ptr<const Backend> backend;
};

// A certificate and key (PEM) for the HTTPS listener, and the hosts it serves.
struct Certificate {
  std::vector<std::string> hosts;  // Lower case; "*.example.com" allowed.
  std::string secret;              // "ns/name".
  std::string cert_pem;
  std::string key_pem;
};

class RouteTable {
 public:
  // Rules added in order of precedence among equals: for the same host,
  // path and type, the first added wins (the caller adds the oldest Ingress
  // first, as upstream's controllers resolve conflicts).
  void Add(Rule rule);
  void SetDefault(std::shared_ptr<const Backend> backend);  // The first set wins.
  void AddCertificate(Certificate cert);
  // Builds the host index. REQUIRES: called once, after the last Add and
  // before the first Match (the table is then shared read-only).
  void Seal();

  // The backend for a request to `host` (a Host header: a port suffix is
  // ignored, case too) and `path` (the query string is ignored), or null
  // when no rule and no default backend matches.
  const Backend* Match(std::string_view host, std::string_view path) const;
  // The certificate for a TLS server name (SNI), or null.
  const Certificate* CertificateFor(std::string_view server_name) const;

  size_t size() const { return rules_.size(); }
  const std::vector<Certificate>& certificates() const { return certificates_; }

 private:
  const Backend* MatchIn(const std::vector<const Rule*>& rules, std::string_view path) const;

  std::vector<Rule> rules_;
  std::map<std::string, std::vector<const Rule*>, std::less<>> exact_;     // host → rules
  std::map<std::string, std::vector<const Rule*>, std::less<>> wildcard_;  // ".example.com"
  std::vector<const Rule*> any_host_;
  std::shared_ptr<const Backend> default_;
  std::vector<Certificate> certificates_;
};

// Whether request path `path` matches rule path `rule` of type `type`.
bool PathMatches(std::string_view rule, PathType type, std::string_view path);
// Whether `host` (lower case, no port) matches rule host `pattern`.
bool HostMatches(std::string_view pattern, std::string_view host);

}  // namespace kiso::network::ingress
