#include "network/proxy/rules.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "network/proxy/maglev.h"
#include "network/proxy/nftables.h"

namespace kiso::network::proxy {
namespace {

std::vector<std::string> Backends(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(fmt::format("10.42.0.{}:8080", 10 + i));
  return out;
}

TEST(Maglev, EveryBackendHoldsItsShare) {
  for (size_t n : {1, 2, 3, 7, 20, 100}) {
    auto table = MaglevTable(Backends(n));
    ASSERT_EQ(table.size(), MaglevSize(n));
    std::vector<size_t> count(n);
    for (uint32_t b : table) ++count.at(b);
    size_t share = table.size() / n;
    for (size_t c : count) {
      EXPECT_GE(c, share) << n;
      EXPECT_LE(c, share + 1) << n;
    }
  }
}

// Removing one of N backends moves at most 1/N + 1% of the keys (clients hash
// uniformly to slots, so slots stand for keys).
TEST(Maglev, RemovingABackendMovesLittleMoreThanItsOwnKeys) {
  for (size_t n : {2, 3, 5, 8, 10, 30, 32, 100, 128}) {
    auto all = Backends(n);
    auto before = MaglevTable(all);
    for (size_t gone = 0; gone < n; ++gone) {
      auto fewer = all;
      fewer.erase(fewer.begin() + static_cast<std::ptrdiff_t>(gone));
      auto after = MaglevTable(fewer);
      if (after.size() != before.size()) continue;  // A smaller table: another prime.
      size_t moved = 0;
      for (size_t s = 0; s < before.size(); ++s) {
        if (all[before[s]] != fewer[after[s]]) ++moved;
      }
      double fraction = static_cast<double>(moved) / static_cast<double>(before.size());
      EXPECT_LE(fraction, 1.0 / static_cast<double>(n) + 0.01) << n << " without " << gone;
    }
  }
}

TEST(Maglev, SameNamesSameTableWhateverTheirOrder) {
  auto names = Backends(5);
  auto a = MaglevTable(names);
  std::reverse(names.begin(), names.end());
  auto b = MaglevTable(names);
  for (size_t s = 0; s < a.size(); ++s) EXPECT_EQ(Backends(5)[a[s]], names[b[s]]);
}

ServicePort Web(Algorithm algorithm = Algorithm::kRandom) {
  ServicePort p;
  p.cluster_ip = "10.43.1.2";
  p.port = 80;
  p.node_port = 30080;
  p.algorithm = algorithm;
  p.endpoints = {{"10.42.0.5", 8080, 1}, {"10.42.0.6", 8080, 3}};
  return p;
}

TEST(Ruleset, EachAlgorithmIsItsKernelExpression) {
  Ruleset r({});
  auto script = [&](Algorithm a) { return r.Full({{"default/web:http/tcp", Web(a)}}); };
  EXPECT_NE(script(Algorithm::kRandom).find("numgen random mod 2 vmap"), std::string::npos);
  EXPECT_NE(script(Algorithm::kRoundRobin).find("numgen inc mod 2 vmap"), std::string::npos);
  EXPECT_NE(script(Algorithm::kSourceIpHash).find("jhash ip saddr mod 2 seed"), std::string::npos);
  // Weights 1 and 3: one slot and a run of three.
  std::string wrr = script(Algorithm::kWeightedRoundRobin);
  EXPECT_NE(wrr.find("numgen inc mod 4 vmap { 0 : goto ep-"), std::string::npos) << wrr;
  EXPECT_NE(wrr.find(", 1-3 : goto ep-"), std::string::npos) << wrr;
  EXPECT_NE(script(Algorithm::kConsistentHash).find("jhash ip saddr mod 8191 seed"),
            std::string::npos);
  // Least connections: from other nodes the tc program's choice (the mark
  // with each endpoint's index), round robin for what comes unmarked; from
  // pods (the cluster IP) round robin only, for what the sockets miss.
  std::string lc = script(Algorithm::kLeastConnections);
  std::vector<std::string> ext, svc;  // The rules of the node port's chain, the cluster IP's.
  for (size_t at = 0, end = 0; at < lc.size(); at = end + 1) {
    end = lc.find('\n', at);
    std::string line = lc.substr(at, end - at);
    if (line.starts_with("add rule ip kiso ext-")) ext.push_back(line);
    if (line.starts_with("add rule ip kiso svc-")) svc.push_back(line);
  }
  ASSERT_EQ(ext.size(), 3u) << lc;  // Masquerade, the mark's choice, round robin.
  EXPECT_NE(ext[1].find("meta mark and 0xffff0000 vmap { 0x6b000000 : goto ep-"), std::string::npos)
      << lc;
  EXPECT_NE(ext[1].find(", 0x6b010000 : goto ep-"), std::string::npos) << lc;
  EXPECT_NE(ext[2].find("numgen inc mod 2 vmap"), std::string::npos) << lc;
  ASSERT_EQ(svc.size(), 1u) << lc;
  EXPECT_NE(svc[0].find("numgen inc mod 2 vmap"), std::string::npos) << lc;
}

TEST(Ruleset, NoUsableEndpointIsARejectAndTerminatingOnesAreTheFallback) {
  Ruleset r({});
  ServicePort p = Web();
  p.endpoints.clear();
  std::string none = r.Full({{"default/web:http/tcp", p}});
  EXPECT_NE(none.find("add element ip kiso no-endpoint-services { 10.43.1.2 . tcp . 80 : goto "
                      "reject-chain }"),
            std::string::npos);
  EXPECT_NE(none.find("add element ip kiso no-endpoint-nodeports { tcp . 30080 : goto "
                      "reject-chain }"),
            std::string::npos);
  p.endpoints = {{"10.42.0.5", 8080, 1, false, true, true}, {"10.42.0.6", 8080, 1, false, false}};
  std::string draining = r.Full({{"default/web:http/tcp", p}});
  EXPECT_NE(draining.find("dnat to 10.42.0.5:8080"), std::string::npos);
  EXPECT_EQ(draining.find("dnat to 10.42.0.6:8080"), std::string::npos);
}

TEST(Ruleset, AnUpdateTouchesOnlyTheChangedPort) {
  Ruleset r({});
  ServicePorts from{{"default/web:http/tcp", Web()}, {"default/db:pg/tcp", Web()}};
  from["default/db:pg/tcp"].cluster_ip = "10.43.1.3";
  ServicePorts to = from;
  to["default/web:http/tcp"].endpoints.pop_back();
  std::string update = Script("kiso", r.Update(from, to, {"default/web:http/tcp"}));
  EXPECT_EQ(update.find("10.43.1.3"), std::string::npos) << update;
  EXPECT_NE(update.find("delete chain"), std::string::npos) << update;  // 10.42.0.6's.
  EXPECT_EQ(update.find("delete table"), std::string::npos);
}

// The scripts are what the kernel takes: applied to a real table of the
// test's own, which is removed afterwards whatever happens.
class KernelRuleset : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "nftables needs root";
    // Not "kiso-…": `kiso node reset` of another test may remove those meanwhile.
    options_.table = fmt::format("kisotest{}", getpid());
    options_.bridge = "kisotest0";
  }
  void TearDown() override {
    if (geteuid() != 0) return;
    (void)nft_.Run(Ruleset(options_).Delete());
    (void)nft_.Run(fmt::format("delete table ip {}b\n", options_.table));  // A twin's.
  }
  RulesOptions options_;
  Nftables nft_;
};

TEST_F(KernelRuleset, FullUpdateAndDeleteApply) {
  Ruleset r(options_);
  ServicePorts ports;
  for (auto a : {Algorithm::kRandom, Algorithm::kRoundRobin, Algorithm::kSourceIpHash,
                 Algorithm::kWeightedRoundRobin, Algorithm::kConsistentHash}) {
    ServicePort p = Web(a);
    p.cluster_ip = fmt::format("10.43.2.{}", static_cast<int>(a) + 1);
    p.node_port = 30100 + static_cast<int>(a);
    p.external_ips = {"192.0.2.77"};
    p.port = 80 + static_cast<int>(a);
    ports[fmt::format("ns/s{}:p/tcp", static_cast<int>(a))] = p;
  }
  ports["ns/s0:p/tcp"].affinity_seconds = 10800;
  ports["ns/s1:p/tcp"].external_local = true;
  ports["ns/s1:p/tcp"].protocol = "udp";
  ASSERT_TRUE(nft_.Run(r.Full(ports)).ok()) << nft_.Run(r.Full(ports)).ToString();
  // Again, from a table that exists: replaced, not duplicated.
  ASSERT_TRUE(nft_.Run(r.Full(ports)).ok());
  auto listed = nft_.List(fmt::format("list table ip {}", options_.table));
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(std::count(listed->begin(), listed->end(), '\n'), [&] {
    (void)nft_.Run(r.Full(ports));
    auto again = nft_.List(fmt::format("list table ip {}", options_.table));
    return std::count(again->begin(), again->end(), '\n');
  }());
  EXPECT_NE(listed->find("10.43.2.1 . tcp . 80 : goto svc-"), std::string::npos) << *listed;

  // An endpoint goes, an affinity timeout changes, a service goes, one has none left.
  ServicePorts next = ports;
  next["ns/s0:p/tcp"].endpoints.pop_back();
  next["ns/s0:p/tcp"].affinity_seconds = 60;
  next.erase("ns/s2:p/tcp");
  next["ns/s3:p/tcp"].endpoints.clear();
  Status s = nft_.Apply(options_.table,
                        r.Update(ports, next, {"ns/s0:p/tcp", "ns/s2:p/tcp", "ns/s3:p/tcp"}));
  ASSERT_TRUE(s.ok()) << s.ToString();
  listed = nft_.List(fmt::format("list table ip {}", options_.table));
  EXPECT_EQ(listed->find("10.43.2.3"), std::string::npos);
  EXPECT_NE(listed->find("10.43.2.4 . tcp . 83 : goto reject-chain"), std::string::npos);
  EXPECT_EQ(listed->find("timeout 3h"), std::string::npos) << *listed;
  ASSERT_TRUE(nft_.Run(r.Delete()).ok());
  EXPECT_FALSE(nft_.List(fmt::format("list table ip {}", options_.table)).ok());
}

// The two ways to the kernel are one: the same changes sent as netlink
// batches to one table and as nft scripts to another list alike, rule for
// rule, through a series that adds, changes and removes every kind of rule.
TEST_F(KernelRuleset, NetlinkBatchesMakeWhatScriptsMake) {
  RulesOptions twin = options_;
  twin.table = options_.table + "b";
  Ruleset by_netlink(options_), by_script(twin);
  ASSERT_TRUE(nft_.Run(by_netlink.Full({})).ok());
  ASSERT_TRUE(nft_.Run(by_script.Full({})).ok());

  auto with = [](Algorithm a, int i) {
    ServicePort p = Web(a);
    p.cluster_ip = fmt::format("10.43.3.{}", i);
    p.node_port = 30200 + i;
    p.port = 80 + i;
    return p;
  };
  std::vector<ServicePorts> steps(4);
  int i = 0;
  for (auto a :
       {Algorithm::kRandom, Algorithm::kRoundRobin, Algorithm::kLeastConnections,
        Algorithm::kSourceIpHash, Algorithm::kWeightedRoundRobin, Algorithm::kConsistentHash}) {
    ++i;
    steps[0][fmt::format("ns/s{}:p/tcp", i)] = with(a, i);
  }
  steps[0]["ns/s1:p/tcp"].affinity_seconds = 600;
  steps[0]["ns/s2:p/tcp"].protocol = "udp";
  steps[0]["ns/s2:p/tcp"].external_ips = {"192.0.2.10"};
  steps[0]["ns/s3:p/tcp"].external_local = true;
  steps[0]["ns/s4:p/tcp"].protocol = "sctp";
  steps[0]["ns/s5:p/tcp"].endpoints.push_back({"10.42.0.7", 9090, 5});
  // Changes: endpoints go and come, affinity ends, one loses all, one goes.
  steps[1] = steps[0];
  steps[1]["ns/s1:p/tcp"].affinity_seconds = 0;
  steps[1]["ns/s3:p/tcp"].endpoints.pop_back();
  steps[1]["ns/s5:p/tcp"].endpoints.erase(steps[1]["ns/s5:p/tcp"].endpoints.begin());
  steps[1]["ns/s6:p/tcp"].endpoints.push_back({"10.42.0.8", 8080, 1});
  steps[2] = steps[1];
  steps[2]["ns/s2:p/tcp"].endpoints.clear();
  steps[2].erase("ns/s4:p/tcp");
  steps[2]["ns/s1:p/tcp"].affinity_seconds = 30;
  // Everything goes.
  ServicePorts before;
  for (const auto& step : steps) {
    std::set<std::string> changed;
    for (const auto& [name, p] : before) changed.insert(name);
    for (const auto& [name, p] : step) changed.insert(name);
    Status a = nft_.Apply(options_.table, by_netlink.Update(before, step, changed));
    ASSERT_TRUE(a.ok()) << a.ToString();
    Status b = nft_.Run(Script(twin.table, by_script.Update(before, step, changed)));
    ASSERT_TRUE(b.ok()) << b.ToString();
    auto one = nft_.List(fmt::format("list table ip {}", options_.table));
    auto two = nft_.List(fmt::format("list table ip {}", twin.table));
    ASSERT_TRUE(one.ok() && two.ok());
    std::string renamed = *two;
    renamed.replace(renamed.find(twin.table), twin.table.size(), options_.table);
    EXPECT_EQ(*one, renamed);
    before = step;
  }
}

// A refused batch changes nothing and says which message the kernel refused.
TEST_F(KernelRuleset, ARefusedBatchChangesNothingAndNamesWhy) {
  Ruleset r(options_);
  ASSERT_TRUE(nft_.Run(r.Full({})).ok());
  auto listed = nft_.List(fmt::format("list table ip {}", options_.table));
  Transaction tx;
  tx.chains.push_back({"svc-new", {rule::Goto{"ep-missing"}}});
  Status s = nft_.Apply(options_.table, tx);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("add rule svc-new goto ep-missing"), std::string::npos)
      << s.ToString();
  EXPECT_EQ(*nft_.List(fmt::format("list table ip {}", options_.table)), *listed);
  // A key that is no address is refused before anything is sent.
  Transaction bad;
  bad.added.push_back({"service-ips", "10.43.0.999", "tcp", 80, "reject-chain"});
  EXPECT_EQ(nft_.Apply(options_.table, bad).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace kiso::network::proxy
