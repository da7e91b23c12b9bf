#include "network/policy/nftables_enforcer.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <random>
#include <sstream>

#include "network/policy/test_cluster.h"
#include "network/proxy/nftables.h"

namespace kiso::network::policy {
namespace {

Model Policies(const Cluster& cluster, std::initializer_list<std::string_view> texts) {
  Model m;
  for (auto t : texts) {
    auto v = boost::json::parse(t);
    auto c = Compile(v, cluster);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    m[api::KeyOf(v)] = *c;
  }
  return m;
}

TEST(NftState, SetsPerRuleChainsPerPolicyAndPod) {
  Cluster cluster = TestCluster();
  Model m = Policies(cluster, {R"({"metadata":{"namespace":"x","name":"web"},"spec":{
      "podSelector":{"matchLabels":{"pod":"a"}},"ingress":[{"from":[{"podSelector":{}}],
      "ports":[{"port":80},{"port":"serve-81-udp","protocol":"UDP"}]}]}})"});
  NftState s = StateOf(m);
  ASSERT_EQ(s.in_pods.size(), 1u);
  EXPECT_EQ(s.in_pods.begin()->first, "10.1.1.1");
  EXPECT_TRUE(s.eg_pods.empty());
  std::set<std::string> sets;
  for (const auto& [name, set] : s.sets) {
    std::string kind = name.substr(0, name.rfind('-'));  // Less the elements' hash.
    sets.insert(kind.substr(kind.rfind('-') + 1));
  }
  EXPECT_EQ(sets, (std::set<std::string>{"peers", "ports", "named"}));
  for (const auto& [name, set] : s.sets) {
    if (name.find("-peers-") != std::string::npos) {
      // Every pod of x, on this node and elsewhere.
      EXPECT_EQ(set.elements, (std::set<std::string>{"10.1.1.1-10.1.1.3", "10.2.0.1"}));
    } else if (name.find("-ports-") != std::string::npos) {
      EXPECT_EQ(set.elements, (std::set<std::string>{"tcp . 80"}));
    } else {
      EXPECT_EQ(set.elements, (std::set<std::string>{"10.1.1.1 . udp . 81"}));
    }
  }
  // A label change is a new peer set (made with its elements) in place of the
  // old, and the policy's chain pointing at it; the pod's chain stays.
  cluster.pods["x/c"].labels["pod"] = "gone";
  cluster.pods.erase("x/b");
  std::string update = UpdateScript("t", s, StateOf(Policies(cluster, {R"({"metadata":{
      "namespace":"x","name":"web"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"a"}}}],"ports":[{"port":80},
      {"port":"serve-81-udp","protocol":"UDP"}]}]}})"})));
  EXPECT_EQ(update.find("add element"), std::string::npos) << update;
  EXPECT_EQ(update.find("delete element"), std::string::npos) << update;
  EXPECT_NE(update.find("delete set ip t p-"), std::string::npos) << update;
  EXPECT_NE(update.find("add set ip t p-"), std::string::npos) << update;
  EXPECT_NE(update.find("elements = { 10.1.1.1, 10.2.0.1 }"), std::string::npos) << update;
  EXPECT_EQ(update.find("pod-"), std::string::npos) << update;
}

// The scripts are what the kernel takes: a series of random models applied
// as updates ends where a full replacement of the same model does, in a
// network namespace of the test's own (gone with the process).
class KernelTable : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "nftables needs root";
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
    nft_ = std::make_unique<proxy::Nftables>();  // Its socket in the new namespace.
  }
  // The table's listing as a sorted list of words (element order aside), its name left out.
  std::vector<std::string> Words(const std::string& table) {
    auto listed = nft_->List("list table ip " + table);
    EXPECT_TRUE(listed.ok());
    std::istringstream in(listed.ok() ? *listed : "");
    std::vector<std::string> out;
    for (std::string w; in >> w;) {
      if (w.back() == ',') w.pop_back();
      if (w != table && w != "#") out.push_back(w);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::unique_ptr<proxy::Nftables> nft_;
};

TEST_F(KernelTable, UpdatesEndWhereAFullReplacementDoes) {
  Cluster cluster = TestCluster();
  std::mt19937 rng(5);
  const char* peers[] = {R"({"podSelector":{"matchLabels":{"pod":"b"}}})",
                         R"({"namespaceSelector":{"matchLabels":{"ns":"y"}}})",
                         R"({"ipBlock":{"cidr":"10.1.0.0/16","except":["10.1.2.0/24"]}})"};
  const char* ports[] = {R"({"port":80})", R"({"port":"serve-81-udp","protocol":"UDP"})",
                         R"({"port":79,"endPort":81,"protocol":"SCTP"})"};
  NftState applied;
  Model applied_model;
  ASSERT_TRUE(nft_->Run(FullScript("kisotest", "kisotest0", applied)).ok());
  for (int round = 0; round < 25; ++round) {
    Model m;
    for (int p = static_cast<int>(rng() % 4); p > 0; --p) {
      std::string text = fmt::format(
          R"({{"metadata":{{"namespace":"{}","name":"p{}"}},"spec":{{"podSelector":{{"matchLabels":
          {{"pod":"{}"}}}},"policyTypes":["Ingress","Egress"],"ingress":[{{"from":[{}],"ports":[{}]}}],
          "egress":[{{"to":[{}]}}]}}}})",
          rng() % 2 ? "x" : "y", rng() % 3, rng() % 2 ? "a" : "b", peers[rng() % 3],
          ports[rng() % 3], peers[rng() % 3]);
      m.merge(Policies(cluster, {text}));
    }
    // Pods change labels meanwhile: set elements come and go.
    cluster.pods["y/b"].labels["pod"] = rng() % 2 ? "b" : "c";
    NftState next = StateOf(m);
    // Odd rounds as the enforcer changes the table: from the changed policies alone.
    std::set<std::string> changed;
    for (const auto* side : {&applied_model, &m}) {
      for (const auto& [key, c] : *side) {
        auto a = applied_model.find(key);
        auto b = m.find(key);
        if (a == applied_model.end() || b == m.end() || !(a->second == b->second))
          changed.insert(key);
      }
    }
    std::string script = round % 2 ? UpdateScriptFor("kisotest", applied_model, m, changed)
                                   : UpdateScript("kisotest", applied, next);
    Status s = script.empty() ? Status::Ok() : nft_->Run(script);
    ASSERT_TRUE(s.ok()) << "round " << round << ": " << s.ToString() << "\n" << script;
    applied = next;
    applied_model = m;
    ASSERT_TRUE(nft_->Run(FullScript("kisofull", "kisotest0", next)).ok());
    ASSERT_EQ(Words("kisotest"), Words("kisofull")) << "round " << round;
  }
  auto enforcer = NewEnforcer("nftables", {"kisotest0"});
  ASSERT_TRUE(enforcer.ok());
  ASSERT_TRUE((*enforcer)->Full({}).ok());
  ASSERT_TRUE((*enforcer)->Remove().ok());
  EXPECT_FALSE(nft_->List("list table ip " + PolicyTable("kisotest0")).ok());
}

}  // namespace
}  // namespace kiso::network::policy
