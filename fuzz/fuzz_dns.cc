// The cluster DNS as a query reaches it: arbitrary bytes as a UDP and as a TCP
// message to DnsServer::Answer, over a zone with a ClusterIP, a headless and
// an ExternalName Service, no upstream. No input may crash or hang it, an
// answer is a DNS message (at least a header), and over UDP it fits the size
// a client may ask for (4096).
#include <boost/json.hpp>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "dns/server.h"
#include "dns/zone.h"

namespace {

kiso::dns::DnsServer& Server() {
  static kiso::dns::ClusterZone zone;
  static std::unique_ptr<kiso::dns::DnsServer> server = [] {
    for (const char* text :
         {R"({"metadata":{"name":"web","namespace":"default"},"spec":{"clusterIP":"10.43.0.20",
             "ports":[{"name":"http","port":80,"protocol":"TCP"}]}})",
          R"({"metadata":{"name":"ext","namespace":"default"},"spec":{"type":"ExternalName",
             "externalName":"example.org"}})"}) {
      auto svc = boost::json::parse(text);
      zone.Update(std::string("default/") + std::string(svc.at("metadata").at("name").as_string()),
                  &svc, {});
    }
    auto db = boost::json::parse(R"({"metadata":{"name":"db","namespace":"default"},
                                     "spec":{"clusterIP":"None"}})");
    auto slice = boost::json::parse(R"({"addressType":"IPv4","ports":[{"name":"pg","port":5432}],
        "endpoints":[{"addresses":["10.42.0.5"],"hostname":"db-0"},{"addresses":["10.42.0.6"]}]})");
    zone.Update("default/db", &db, {slice});
    kiso::dns::DnsServerOptions o;
    o.forwarders = 1;
    o.udp_workers = 1;
    auto s = kiso::dns::DnsServer::Start(&zone, o);
    if (!s.ok()) std::abort();
    return std::move(*s);
  }();
  return *server;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view query(reinterpret_cast<const char*>(data), size);
  for (bool tcp : {false, true}) {
    std::string answer = Server().Answer(query, tcp);
    if (!answer.empty() && answer.size() < 12) std::abort();
    if (!tcp && answer.size() > 4096) std::abort();
  }
  return 0;
}
