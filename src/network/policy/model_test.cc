#include "network/policy/model.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "network/policy/test_cluster.h"

namespace kiso::network::policy {
namespace {

TEST(IpRanges, CidrsMergeAndSubtract) {
  auto r = ParseCidr("10.1.2.3/16");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(FormatIp(r->first), "10.1.0.0");
  EXPECT_EQ(FormatIp(r->last), "10.1.255.255");
  EXPECT_FALSE(ParseCidr("10.1.2.3").ok());
  EXPECT_FALSE(ParseCidr("10.1.2.3/33").ok());
  EXPECT_FALSE(ParseCidr("10.1.2/8").ok());
  EXPECT_FALSE(ParseIp("10.1.2.256").ok());
  auto all = ParseCidr("0.0.0.0/0");
  EXPECT_EQ(all->first, 0u);
  EXPECT_EQ(all->last, UINT32_MAX);
  EXPECT_EQ(Merge({{5, 9}, {1, 3}, {4, 4}, {20, 30}, {25, 26}}), (IpRanges{{1, 9}, {20, 30}}));
  EXPECT_EQ(Merge({{0, UINT32_MAX}, {7, 8}}), (IpRanges{{0, UINT32_MAX}}));
  EXPECT_EQ(Subtract({{0, 100}}, {{0, 9}, {50, 59}, {100, 200}}), (IpRanges{{10, 49}, {60, 99}}));
  EXPECT_EQ(Subtract({{10, 20}}, {{0, 30}}), IpRanges{});
  EXPECT_TRUE(Contains({{10, 49}, {60, 99}}, 49));
  EXPECT_FALSE(Contains({{10, 49}, {60, 99}}, 50));
  EXPECT_FALSE(Contains({}, 0));
}

class PolicyModel : public ::testing::Test {
 protected:
  Cluster cluster_ = TestCluster();
  uint32_t Ip(const std::string& pod) { return cluster_.pods.at(pod).ip; }
  Model With(std::initializer_list<std::string_view> policies) {
    Model m;
    int i = 0;
    for (auto text : policies) {
      auto compiled = Compile(boost::json::parse(text), cluster_);
      EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
      if (compiled.ok()) m[std::to_string(i++)] = *compiled;
    }
    return m;
  }
  bool Can(const Model& m, const std::string& from, const std::string& to, uint16_t port = 80,
           uint8_t protocol = kTcp) {
    return Allowed(m, Ip(from), Ip(to), protocol, port);
  }
};

TEST_F(PolicyModel, NoPolicyAllowsEverything) {
  Model m;
  EXPECT_TRUE(Can(m, "x/a", "y/b"));
}

TEST_F(PolicyModel, DefaultDenyIngressIsolatesTheNamespacesLocalPods) {
  auto m = With({R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{}}})"});
  EXPECT_FALSE(Can(m, "y/a", "x/a"));
  EXPECT_FALSE(Can(m, "x/b", "x/a"));
  EXPECT_TRUE(Can(m, "x/a", "y/a"));  // Egress is not isolated.
  EXPECT_TRUE(Allowed(m, Ip("y/a"), Ip("x/a"), kTcp, 80, /*from_node=*/true));
  // A pod on another node is isolated there, not here.
  EXPECT_TRUE(Can(m, "y/a", "x/remote"));
  EXPECT_EQ(Isolated(m, true).size(), 3u);
}

TEST_F(PolicyModel, PeersByPodNamespaceAndBoth) {
  auto m = With({R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
     "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})"});
  EXPECT_TRUE(Can(m, "x/b", "x/a"));
  EXPECT_FALSE(Can(m, "y/b", "x/a"));  // podSelector alone: the policy's namespace.
  EXPECT_FALSE(Can(m, "x/c", "x/a"));
  EXPECT_TRUE(Can(m, "x/c", "x/b"));  // Not selected.
  m = With({R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
     "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}}]}]}})"});
  EXPECT_TRUE(Can(m, "y/c", "x/a"));
  EXPECT_FALSE(Can(m, "x/b", "x/a"));
  m = With({R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
     "ingress":[{"from":[{"namespaceSelector":{"matchExpressions":[{"key":"ns","operator":"In",
     "values":["y","z"]}]},"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})"});
  EXPECT_TRUE(Can(m, "y/b", "x/a"));
  EXPECT_TRUE(Can(m, "z/b", "x/a"));
  EXPECT_FALSE(Can(m, "y/c", "x/a"));
  EXPECT_FALSE(Can(m, "x/b", "x/a"));
}

TEST_F(PolicyModel, PortsNamedNumberedRangesAndProtocols) {
  auto m = With({R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
     "ingress":[{"ports":[{"port":"serve-81-udp","protocol":"UDP"},{"port":8000,"endPort":8010},
     {"protocol":"SCTP","port":80}]}]}})"});
  EXPECT_TRUE(Can(m, "y/b", "x/a", 81, kUdp));
  EXPECT_FALSE(Can(m, "y/b", "x/a", 81, kTcp));
  EXPECT_FALSE(Can(m, "y/b", "x/a", 80, kUdp));
  EXPECT_TRUE(Can(m, "y/b", "x/a", 8005));
  EXPECT_TRUE(Can(m, "y/b", "x/a", 8010));
  EXPECT_FALSE(Can(m, "y/b", "x/a", 8011));
  EXPECT_TRUE(Can(m, "y/b", "x/a", 80, kSctp));
  EXPECT_FALSE(Can(m, "y/b", "x/a", 80));
  // A protocol with no port: every port of it.
  m = With({R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
     "ingress":[{"ports":[{"protocol":"UDP"}]}]}})"});
  EXPECT_TRUE(Can(m, "y/b", "x/a", 5353, kUdp));
  EXPECT_FALSE(Can(m, "y/b", "x/a", 5353, kTcp));
}

TEST_F(PolicyModel, EgressNamedPortsResolveAtTheDestination) {
  auto m = With({R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
     "policyTypes":["Egress"],"egress":[{"to":[{"namespaceSelector":{}}],
     "ports":[{"port":"serve-80-tcp"}]}]}})"});
  EXPECT_TRUE(Can(m, "x/a", "y/b", 80));
  EXPECT_FALSE(Can(m, "x/a", "y/b", 81));
  EXPECT_FALSE(Can(m, "x/a", "y/nameless", 80));  // No port of that name there.
  EXPECT_TRUE(Can(m, "y/b", "x/a", 81));          // Ingress is not isolated.
}

TEST_F(PolicyModel, IpBlocksLessTheirExceptionsAndPoliciesAdd) {
  auto b = Ip("y/b");
  auto m = With({fmt::format(
      R"({{"metadata":{{"namespace":"x"}},"spec":{{"podSelector":{{"matchLabels":{{"pod":"a"}}}},
     "policyTypes":["Egress"],"egress":[{{"to":[{{"ipBlock":{{"cidr":"10.0.0.0/8",
     "except":["{}/32"]}}}}]}}]}}}})",
      FormatIp(b))});
  EXPECT_FALSE(Can(m, "x/a", "y/b"));
  EXPECT_TRUE(Can(m, "x/a", "y/c"));
  EXPECT_FALSE(Allowed(m, Ip("x/a"), 0xC0000201, kTcp, 80));  // 192.0.2.1
  // A second policy allowing y/b: policies add up.
  auto both =
      With({fmt::format(
                R"({{"metadata":{{"namespace":"x"}},"spec":{{"podSelector":{{}},
     "policyTypes":["Egress"],"egress":[{{"to":[{{"ipBlock":{{"cidr":"10.0.0.0/8",
     "except":["{}/32"]}}}}]}}]}}}})",
                FormatIp(b)),
            R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
     "policyTypes":["Egress"],"egress":[{"to":[{"namespaceSelector":{"matchLabels":{"ns":"y"}},
     "podSelector":{"matchLabels":{"pod":"b"}}}]}]}})"});
  EXPECT_TRUE(Can(both, "x/a", "y/b"));
  EXPECT_FALSE(Can(both, "x/b", "y/b"));
}

TEST_F(PolicyModel, DenyAllBothWaysAndAnEmptyRuleAllowsAll) {
  auto m = With({R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{},
     "policyTypes":["Ingress","Egress"]}})"});
  EXPECT_FALSE(Can(m, "x/a", "y/a"));
  EXPECT_FALSE(Can(m, "y/a", "x/a"));
  EXPECT_FALSE(Can(m, "x/a", "x/b"));
  m = With({R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{},
     "policyTypes":["Ingress","Egress"],"ingress":[{}],"egress":[{}]}})"});
  EXPECT_TRUE(Can(m, "x/a", "y/a"));
  EXPECT_TRUE(Can(m, "y/a", "x/a", 9999, kUdp));
}

TEST_F(PolicyModel, TheClusterDnsCountsAsAPodWithItsPortAlias) {
  auto m = With({R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{},
     "policyTypes":["Egress"],"egress":[{"to":[{"namespaceSelector":{"matchLabels":
     {"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":
     {"k8s-app":"kube-dns"}}}],"ports":[{"port":53,"protocol":"UDP"}]}]}})"});
  const uint32_t dns = Ip("kube-system/dns");
  EXPECT_TRUE(Allowed(m, Ip("x/a"), dns, kUdp, 10053));
  EXPECT_FALSE(Allowed(m, Ip("x/a"), dns, kTcp, 10053));
  EXPECT_FALSE(Allowed(m, Ip("x/a"), dns, kUdp, 10054));
  EXPECT_FALSE(Can(m, "x/a", "y/a", 53, kUdp));
}

TEST_F(PolicyModel, BadPoliciesAreRefusedWithTheirCause) {
  for (
      const char* bad : {
          R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{},"policyTypes":["Sideways"]}})",
          R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{},"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0"}}]}]}})",
          R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{},"ingress":[{"ports":[{"protocol":"ICMP"}]}]}})",
          R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{},"ingress":[{"ports":[{"port":90,"endPort":80}]}]}})",
          R"({"metadata":{"namespace":"x"},"spec":{"podSelector":{},"ingress":[{"from":[{}]}]}})",
      }) {
    auto c = Compile(boost::json::parse(bad), cluster_);
    EXPECT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  }
}

}  // namespace
}  // namespace kiso::network::policy
