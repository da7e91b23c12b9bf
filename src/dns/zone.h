// ClusterZone: the names the Kubernetes DNS specification (kubernetes/dns,
// docs/specification.md, schema 1.1.0) gives Services and their endpoints,
// kept from Services and EndpointSlices:
//   <svc>.<ns>.svc.<zone>              A: the cluster IP; headless: each ready endpoint;
//                                      ExternalName: CNAME to the external name
//   <hostname>.<svc>.<ns>.svc.<zone>   A: a headless Service's endpoint with a hostname
//                                      (else named after its address, a-b-c-d, as CoreDNS does)
//   _<port>._<proto>.<svc>.<ns>.svc.<zone>  SRV for each named port (headless: per endpoint)
//   <d>.<c>.<b>.<a>.in-addr.arpa       PTR back to the Service (or the endpoint's name)
//   <a-b-c-d>.<ns>.pod.<zone>          A: the address the name spells (CoreDNS' "pods insecure")
//   dns-version.<zone>                 TXT "1.1.0"
// A name that exists with other types is NODATA (NOERROR, nothing); one that
// does not is NXDOMAIN — an empty non-terminal (svc.<zone>, <ns>.svc.<zone>)
// exists. Thread-safe: lookups share a lock with the updates.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <map>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kiso::dns {

struct Record {
  std::string name;   // Owner, lower case, with the final dot.
  uint16_t type = 0;  // LDNS_RR_TYPE_* (A=1, CNAME=5, PTR=12, TXT=16, SRV=33).
  std::string rdata;  // In presentation form: "10.43.0.5", "0 100 80 web.ns.svc.cluster.local."
  bool operator==(const Record&) const = default;
};

enum class Answer { kFound, kNoData, kNxDomain, kNotOurs };

class ClusterZone {
 public:
  explicit ClusterZone(const std::string& domain = "cluster.local");

  // Replaces what Service `key` ("ns/name") contributes: `service` null when
  // it is gone; `slices` are its EndpointSlices.
  void Update(const std::string& key, const boost::json::value* service,
              const std::vector<boost::json::value>& slices);
  // Records of `name` (any case, with or without the final dot) and `type`
  // (255: any); kNotOurs for names outside the zone and the reverse zones it
  // answers for (which a resolver forwards).
  Answer Lookup(std::string_view name, uint16_t type, std::vector<Record>* out) const;
  // Grows on every change: cached answers older than it are stale.
  uint64_t generation() const;
  const std::string& domain() const { return domain_; }  // "cluster.local." form: with dot.
  // The records a Service contributes (for tests).
  static std::vector<Record> RecordsOf(const std::string& domain, const boost::json::value& service,
                                       const std::vector<boost::json::value>& slices);

 private:
  void Index(const std::vector<Record>& records, int delta);

  std::string domain_;  // "cluster.local."
  mutable std::shared_mutex mu_;
  std::map<std::string, std::vector<Record>> by_service_;  // guarded by mu_
  std::map<std::string, std::vector<Record>> by_name_;     // guarded by mu_
  std::map<std::string, int> names_;  // Every owner and its ancestors in the zone; guarded by mu_
  uint64_t generation_ = 0;           // guarded by mu_
};

// A name in lower case with its final dot: how the zone keys names.
std::string Fqdn(std::string_view name);

// "10.43.0.5" → "5.0.43.10.in-addr.arpa."; "" for anything else.
std::string ReverseName(std::string_view ip);

}  // namespace kiso::dns
