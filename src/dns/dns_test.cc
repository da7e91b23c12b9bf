#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "dns/server.h"
#include "dns/zone.h"

namespace kiso::dns {
namespace {

namespace json = boost::json;

json::value Service(std::string_view name, std::string_view ip,
                    std::string_view type = "ClusterIP") {
  return json::parse(fmt::format(
      R"({{"metadata":{{"name":"{}","namespace":"default"}},
          "spec":{{"type":"{}","clusterIP":"{}","externalName":"example.org",
                   "ports":[{{"name":"http","port":80,"protocol":"TCP"}}]}}}})",
      name, type, ip));
}

json::value Slice(int endpoints, bool with_hostname) {
  json::array list;
  for (int i = 0; i < endpoints; ++i) {
    json::object e{
        {"addresses", json::array{json::string(fmt::format("10.42.{}.{}", i / 200, i % 200 + 2))}},
        {"conditions", json::object{{"ready", i != 1}}}};
    if (with_hostname) e["hostname"] = fmt::format("web-{}", i);
    list.push_back(std::move(e));
  }
  return json::object{
      {"addressType", "IPv4"},
      {"endpoints", std::move(list)},
      {"ports", json::array{json::object{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}}}};
}

std::vector<std::string> Rdata(const ClusterZone& z, std::string_view name, uint16_t type,
                               Answer want) {
  std::vector<Record> out;
  EXPECT_EQ(z.Lookup(name, type, &out), want) << name;
  std::vector<std::string> r;
  r.reserve(out.size());
  for (auto& rec : out) r.push_back(rec.rdata);
  return r;
}

TEST(ClusterZone, ServicesAsTheSpecificationNamesThem) {
  ClusterZone z;
  auto web = Service("web", "10.43.0.20");
  z.Update("default/web", &web, {});
  EXPECT_EQ(Rdata(z, "WEB.default.svc.cluster.local", 1, Answer::kFound),
            std::vector<std::string>{"10.43.0.20"});
  EXPECT_EQ(Rdata(z, "_http._tcp.web.default.svc.cluster.local.", 33, Answer::kFound),
            std::vector<std::string>{"0 100 80 web.default.svc.cluster.local."});
  EXPECT_EQ(Rdata(z, "20.0.43.10.in-addr.arpa", 12, Answer::kFound),
            std::vector<std::string>{"web.default.svc.cluster.local."});
  // NODATA: the name exists (or is an empty non-terminal); NXDOMAIN: it does not.
  Rdata(z, "web.default.svc.cluster.local", 28, Answer::kNoData);
  Rdata(z, "default.svc.cluster.local", 1, Answer::kNoData);
  Rdata(z, "nope.default.svc.cluster.local", 1, Answer::kNxDomain);
  Rdata(z, "web.other.svc.cluster.local", 1, Answer::kNxDomain);
  Rdata(z, "example.org", 1, Answer::kNotOurs);
  Rdata(z, "1.1.168.192.in-addr.arpa", 12, Answer::kNotOurs);
  EXPECT_EQ(Rdata(z, "10-42-0-9.default.pod.cluster.local", 1, Answer::kFound),
            std::vector<std::string>{"10.42.0.9"});
  EXPECT_EQ(Rdata(z, "dns-version.cluster.local", 16, Answer::kFound),
            std::vector<std::string>{"\"1.1.0\""});
  // Gone, and its names with it.
  uint64_t g = z.generation();
  z.Update("default/web", nullptr, {});
  EXPECT_GT(z.generation(), g);
  Rdata(z, "web.default.svc.cluster.local", 1, Answer::kNxDomain);
}

TEST(ClusterZone, HeadlessAndExternalName) {
  ClusterZone z;
  auto db = Service("db", "None");
  z.Update("default/db", &db, {Slice(3, true)});
  // Ready endpoints only (the second is not).
  EXPECT_EQ(Rdata(z, "db.default.svc.cluster.local", 1, Answer::kFound),
            (std::vector<std::string>{"10.42.0.2", "10.42.0.4"}));
  EXPECT_EQ(Rdata(z, "web-2.db.default.svc.cluster.local", 1, Answer::kFound),
            std::vector<std::string>{"10.42.0.4"});
  EXPECT_EQ(Rdata(z, "_http._tcp.db.default.svc.cluster.local", 33, Answer::kFound),
            (std::vector<std::string>{"0 100 8080 web-0.db.default.svc.cluster.local.",
                                      "0 100 8080 web-2.db.default.svc.cluster.local."}));
  EXPECT_EQ(Rdata(z, "4.0.42.10.in-addr.arpa", 12, Answer::kFound),
            std::vector<std::string>{"web-2.db.default.svc.cluster.local."});
  auto ext = Service("ext", "", "ExternalName");
  z.Update("default/ext", &ext, {});
  EXPECT_EQ(Rdata(z, "ext.default.svc.cluster.local", 1, Answer::kFound),
            std::vector<std::string>{"example.org."});
}

// A query in wire form.
std::string Query(const std::string& name, ldns_rr_type type, uint16_t edns_size = 0,
                  uint16_t id = 0x1234) {
  ldns_pkt* q = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&q, name.c_str(), type, LDNS_RR_CLASS_IN, LDNS_RD),
            LDNS_STATUS_OK);
  ldns_pkt_set_id(q, id);
  if (edns_size) ldns_pkt_set_edns_udp_size(q, edns_size);
  uint8_t* wire = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, q, &size), LDNS_STATUS_OK);
  std::string out(reinterpret_cast<char*>(wire), size);
  free(wire);
  ldns_pkt_free(q);
  return out;
}

struct Reply {
  ldns_pkt* p = nullptr;
  explicit Reply(const std::string& wire) {
    EXPECT_EQ(ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()),
              LDNS_STATUS_OK);
  }
  ~Reply() { ldns_pkt_free(p); }
  size_t answers() const { return ldns_rr_list_rr_count(ldns_pkt_answer(p)); }
};

TEST(DnsServer, AnswersNxDomainNoDataEdnsAndTruncation) {
  ClusterZone z;
  auto web = Service("web", "10.43.0.20");
  z.Update("default/web", &web, {});
  auto big = Service("big", "None");
  z.Update("default/big", &big, {Slice(60, false)});
  auto server = DnsServer::Start(&z, {});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  {
    Reply r((*server)->Answer(Query("Web.Default.svc.cluster.local.", LDNS_RR_TYPE_A), false));
    EXPECT_EQ(ldns_pkt_id(r.p), 0x1234);
    EXPECT_TRUE(ldns_pkt_aa(r.p));
    EXPECT_EQ(r.answers(), 1u);
    EXPECT_EQ(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(r.p), 0)), 5u);
    char* q = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(r.p), 0)));
    EXPECT_STREQ(q, "Web.Default.svc.cluster.local.");  // The asker's spelling, from the cache too.
    free(q);
  }
  {
    Reply again(
        (*server)->Answer(Query("wEB.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, 7), false));
    EXPECT_EQ(ldns_pkt_id(again.p), 7);
    char* q = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(again.p), 0)));
    EXPECT_STREQ(q, "wEB.default.svc.cluster.local.");
    free(q);
  }
  Reply nx((*server)->Answer(Query("nope.default.svc.cluster.local.", LDNS_RR_TYPE_A), false));
  EXPECT_EQ(ldns_pkt_get_rcode(nx.p), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(ldns_rr_list_rr_count(ldns_pkt_authority(nx.p)), 1u);  // The SOA.
  Reply nodata(
      (*server)->Answer(Query("web.default.svc.cluster.local.", LDNS_RR_TYPE_AAAA), false));
  EXPECT_EQ(ldns_pkt_get_rcode(nodata.p), LDNS_RCODE_NOERROR);
  EXPECT_EQ(nodata.answers(), 0u);
  // 58 A records do not fit in 512 bytes: truncated over UDP, whole with EDNS0 4096 or TCP.
  Reply small((*server)->Answer(Query("big.default.svc.cluster.local.", LDNS_RR_TYPE_A), false));
  EXPECT_TRUE(ldns_pkt_tc(small.p));
  EXPECT_EQ(small.answers(), 0u);
  Reply edns(
      (*server)->Answer(Query("big.default.svc.cluster.local.", LDNS_RR_TYPE_A, 4096), false));
  EXPECT_FALSE(ldns_pkt_tc(edns.p));
  EXPECT_EQ(edns.answers(), 59u);
  EXPECT_TRUE(ldns_pkt_edns(edns.p));
  Reply tcp((*server)->Answer(Query("big.default.svc.cluster.local.", LDNS_RR_TYPE_A), true));
  EXPECT_EQ(tcp.answers(), 59u);
  // Bad input: a short packet gets nothing, garbage after a header gets FORMERR.
  EXPECT_EQ((*server)->Answer("abc", false), "");
  std::string garbage = Query("web.default.svc.cluster.local.", LDNS_RR_TYPE_A).substr(0, 20);
  Reply formerr((*server)->Answer(garbage, false));
  EXPECT_EQ(ldns_pkt_get_rcode(formerr.p), LDNS_RCODE_FORMERR);
  // Other names: no upstream here, so SERVFAIL.
  Reply fail((*server)->Answer(Query("example.org.", LDNS_RR_TYPE_A), false));
  EXPECT_EQ(ldns_pkt_get_rcode(fail.p), LDNS_RCODE_SERVFAIL);
}

std::string Exchange(uint16_t port, const std::string& query, bool tcp) {
  int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  std::string out(65536, '\0');
  if (tcp) {
    std::string framed{static_cast<char>(query.size() >> 8),
                       static_cast<char>(query.size() & 0xff)};
    framed += query;
    EXPECT_EQ(send(fd, framed.data(), framed.size(), 0), static_cast<ssize_t>(framed.size()));
    ssize_t n = 0, got = 0;
    while ((n = recv(fd, out.data() + got, out.size() - static_cast<size_t>(got), 0)) > 0) {
      got += n;
      const size_t length =
          (size_t{static_cast<unsigned char>(out[0])} << 8) | static_cast<unsigned char>(out[1]);
      if (got >= 2 && static_cast<size_t>(got) >= 2 + length) break;
    }
    close(fd);
    return got > 2 ? out.substr(2, static_cast<size_t>(got) - 2) : "";
  }
  EXPECT_EQ(send(fd, query.data(), query.size(), 0), static_cast<ssize_t>(query.size()));
  ssize_t n = recv(fd, out.data(), out.size(), 0);
  close(fd);
  return n > 0 ? out.substr(0, static_cast<size_t>(n)) : "";
}

TEST(DnsServer, ServesUdpAndTcpAndForwardsTheRest) {
  // The upstream: another server, authoritative for example.test.
  ClusterZone upstream_zone("example.test");
  auto far = Service("far", "192.0.2.80");
  upstream_zone.Update("default/far", &far, {});
  auto upstream = DnsServer::Start(&upstream_zone, {});
  ASSERT_TRUE(upstream.ok());
  ClusterZone z;
  DnsServerOptions o;
  o.upstreams = {fmt::format("127.0.0.1:{}", (*upstream)->port())};
  auto server = DnsServer::Start(&z, o);
  ASSERT_TRUE(server.ok());
  for (bool tcp : {false, true}) {
    Reply r(Exchange((*server)->port(),
                     Query("far.default.svc.example.test.", LDNS_RR_TYPE_A, 0, 99), tcp));
    ASSERT_NE(r.p, nullptr);
    EXPECT_EQ(ldns_pkt_id(r.p), 99);
    EXPECT_EQ(r.answers(), 1u) << tcp;
  }
  (*upstream)->Stop();
  // Cached: answered with the upstream gone.
  Reply cached(Exchange((*server)->port(),
                        Query("far.default.svc.example.test.", LDNS_RR_TYPE_A, 0, 5), false));
  EXPECT_EQ(cached.answers(), 1u);
  EXPECT_EQ(ldns_pkt_id(cached.p), 5);
}

TEST(DnsServer, ForwardedAnswersTtlsCountDownInTheCache) {
  ClusterZone upstream_zone("example.test");
  auto far = Service("far", "192.0.2.80");
  upstream_zone.Update("default/far", &far, {});
  DnsServerOptions up;
  up.ttl = 30;
  auto upstream = DnsServer::Start(&upstream_zone, up);
  ASSERT_TRUE(upstream.ok());
  ClusterZone z;
  auto near = Service("near", "10.43.0.20");
  z.Update("default/near", &near, {});
  FakeClock clock;
  DnsServerOptions o;
  o.upstreams = {fmt::format("127.0.0.1:{}", (*upstream)->port())};
  o.clock = &clock;
  auto server = DnsServer::Start(&z, o);
  ASSERT_TRUE(server.ok());
  auto ttl = [&](const char* name) -> int64_t {
    Reply r(Exchange((*server)->port(), Query(name, LDNS_RR_TYPE_A, 0, 7), false));
    if (!r.p || r.answers() != 1) return -1;
    return ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(r.p), 0));
  };
  EXPECT_EQ(ttl("far.default.svc.example.test."), 30);
  EXPECT_EQ(ttl("near.default.svc.cluster.local."), 5);
  clock.Advance(std::chrono::seconds(12));
  (*upstream)->Stop();  // From here on only the cache answers.
  EXPECT_EQ(ttl("far.default.svc.example.test."), 18);
  EXPECT_EQ(ttl("near.default.svc.cluster.local."), 5);  // Its own records keep theirs.
  clock.Advance(std::chrono::seconds(17));
  EXPECT_EQ(ttl("far.default.svc.example.test."), 1);
  clock.Advance(std::chrono::seconds(1));  // Expired: asked again, and the upstream is gone.
  EXPECT_EQ(ttl("far.default.svc.example.test."), -1);
}

}  // namespace
}  // namespace kiso::dns

namespace kiso::dns {
namespace {

// An upstream that never answers holds up nothing but its own questions.
TEST(DnsServer, ASilentUpstreamDoesNotHoldUpClusterNames) {
  int silent = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  socklen_t len = sizeof(sa);
  getsockname(silent, reinterpret_cast<sockaddr*>(&sa), &len);
  ClusterZone z;
  auto web = Service("web", "10.43.0.20");
  z.Update("default/web", &web, {});
  DnsServerOptions o;
  o.upstreams = {fmt::format("127.0.0.1:{}", ntohs(sa.sin_port))};
  o.udp_workers = 1;
  auto server = DnsServer::Start(&z, o);
  ASSERT_TRUE(server.ok());
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons((*server)->port());
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  // The outside name first, then the cluster's: the cluster's answer comes first.
  for (const auto& q : {Query("example.org.", LDNS_RR_TYPE_A, 0, 1),
                        Query("web.default.svc.cluster.local.", LDNS_RR_TYPE_A, 0, 2)}) {
    ASSERT_EQ(sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              static_cast<ssize_t>(q.size()));
  }
  std::vector<uint16_t> order;
  for (int i = 0; i < 2; ++i) {
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    Reply r(std::string(buf, static_cast<size_t>(n)));
    order.push_back(ldns_pkt_id(r.p));
    if (ldns_pkt_id(r.p) == 1) {
      EXPECT_EQ(ldns_pkt_get_rcode(r.p), LDNS_RCODE_SERVFAIL);
    }
  }
  EXPECT_EQ(order, (std::vector<uint16_t>{2, 1}));
  close(fd);
  close(silent);
}

}  // namespace
}  // namespace kiso::dns

namespace kiso::dns {
namespace {

TEST(DnsServer, OnlyItsClientsAreAnswered) {
  ClusterZone z;
  DnsServerOptions o;
  o.clients = {*Ipv4Cidr::Parse("10.42.0.0/16")};
  auto server = DnsServer::Start(&z, o);
  ASSERT_TRUE(server.ok());
  auto address = [](const char* ip) {
    sockaddr_storage s{};
    auto& in = reinterpret_cast<sockaddr_in&>(s);
    in.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &in.sin_addr);
    return s;
  };
  EXPECT_TRUE((*server)->Allowed(address("10.42.3.4")));
  EXPECT_TRUE((*server)->Allowed(address("127.0.0.1")));
  EXPECT_FALSE((*server)->Allowed(address("192.0.2.99")));
  // Over the wire from loopback: answered.
  Reply r(
      Exchange((*server)->port(), Query("dns-version.cluster.local.", LDNS_RR_TYPE_TXT), false));
  EXPECT_EQ(r.answers(), 1u);
}

}  // namespace
}  // namespace kiso::dns
