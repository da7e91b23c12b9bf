// The node IPAM controller against an in-process API server: Nodes get
// distinct ranges from the cluster's, keep the ones they came with, wait when
// none is free and get a freed one; a new controller (a new leader) gives no
// range twice. And the API keeps a Node's range fixed once set.
#include "controller/node_ipam_controller.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "api/object.h"
#include "controller/controller_fixture.h"

namespace kiso::controller {
namespace {

namespace json = boost::json;

class NodeIpamTest : public ControllerFixture {
 protected:
  void AddNode(const std::string& name, const std::string& pod_cidr = "") {
    json::object spec;
    if (!pod_cidr.empty()) spec["podCIDR"] = pod_cidr;
    json::value node = json::object{{"apiVersion", "v1"},
                                    {"kind", "Node"},
                                    {"metadata", json::object{{"name", name}}},
                                    {"spec", spec}};
    auto created = client_->Create(R("", "nodes"), "", node);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
  }
  std::string CidrOf(const std::string& name) {
    auto node = client_->Get(R("", "nodes"), "", name);
    return node.ok() ? std::string(api::GetString(*node, {"spec", "podCIDR"})) : "";
  }
  // podCIDRs as the API returns them, joined.
  std::string CidrsOf(const std::string& name) {
    auto node = client_->Get(R("", "nodes"), "", name);
    if (!node.ok()) return "";
    const auto* all = api::Find(*node, {"spec", "podCIDRs"});
    std::string out;
    if (all && all->is_array()) {
      for (const auto& c : all->get_array()) out += std::string(c.as_string()) + ",";
    }
    return out;
  }
  bool HasEvent(const std::string& node, std::string_view reason) {
    auto events = client_->List(R("", "events"), "default");
    if (!events.ok()) return false;
    for (const auto& e : events->at("items").as_array()) {
      if (api::GetString(e, {"involvedObject", "name"}) == node &&
          api::GetString(e, {"reason"}) == reason)
        return true;
    }
    return false;
  }
};

TEST_F(NodeIpamTest, NodesGetDistinctRangesAndKeepTheirOwn) {
  AddNode("own", "10.42.1.0/24");  // Registered with --pod-cidr: its block is taken.
  AddNode("a");
  AddNode("b");
  NodeIpamController ipam(client_.get(), {"10.42.0.0/16", 24});
  ipam.Start();
  ASSERT_TRUE(Eventually([&] { return !CidrOf("a").empty() && !CidrOf("b").empty(); }));
  EXPECT_EQ(CidrOf("own"), "10.42.1.0/24");
  std::set<std::string> given{CidrOf("a"), CidrOf("b")};
  EXPECT_EQ(given, (std::set<std::string>{"10.42.0.0/24", "10.42.2.0/24"}));
  EXPECT_EQ(CidrsOf("a"), CidrOf("a") + ",");  // podCIDRs says the same.
  // A Node registered later gets the next free one.
  AddNode("c");
  ASSERT_TRUE(Eventually([&] { return !CidrOf("c").empty(); }));
  EXPECT_EQ(CidrOf("c"), "10.42.3.0/24");
  // A Node outside the cluster's range (its own --pod-cidr elsewhere) is left as it is.
  AddNode("elsewhere", "10.197.0.0/24");
  AddNode("d");
  ASSERT_TRUE(Eventually([&] { return !CidrOf("d").empty(); }));
  EXPECT_EQ(CidrOf("d"), "10.42.4.0/24");
  EXPECT_EQ(CidrOf("elsewhere"), "10.197.0.0/24");
}

TEST_F(NodeIpamTest, ANodeWaitsWhenNoneIsFreeAndGetsAFreedOne) {
  NodeIpamController ipam(client_.get(), {"10.50.0.0/23", 24});  // Two ranges in all.
  ipam.Start();
  AddNode("one");
  AddNode("two");
  ASSERT_TRUE(Eventually([&] { return !CidrOf("one").empty() && !CidrOf("two").empty(); }));
  AddNode("three");
  ASSERT_TRUE(Eventually([&] { return HasEvent("three", "CIDRNotAvailable"); }));
  EXPECT_EQ(CidrOf("three"), "");
  const std::string freed = CidrOf("one");
  ASSERT_TRUE(client_->Delete(R("", "nodes"), "", "one").ok());
  ASSERT_TRUE(Eventually([&] { return CidrOf("three") == freed; })) << CidrOf("three");
}

TEST_F(NodeIpamTest, ANewLeaderGivesNoRangeTwice) {
  {
    NodeIpamController first(client_.get(), {"10.42.0.0/16", 24});
    first.Start();
    AddNode("a");
    AddNode("b");
    ASSERT_TRUE(Eventually([&] { return !CidrOf("a").empty() && !CidrOf("b").empty(); }));
  }  // The leader goes; another controller takes over.
  NodeIpamController second(client_.get(), {"10.42.0.0/16", 24});
  second.Start();
  AddNode("c");
  ASSERT_TRUE(Eventually([&] { return !CidrOf("c").empty(); }));
  std::set<std::string> all{CidrOf("a"), CidrOf("b"), CidrOf("c")};
  EXPECT_EQ(all.size(), 3U);
}

TEST_F(NodeIpamTest, TheApiKeepsANodesRangeOnceSet) {
  AddNode("n", "10.42.7.0/24");
  auto node = client_->Get(R("", "nodes"), "", "n");
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(CidrsOf("n"), "10.42.7.0/24,");  // Filled in from podCIDR.
  json::value changed = *node;
  changed.as_object()["spec"].as_object()["podCIDR"] = "10.42.8.0/24";
  changed.as_object()["spec"].as_object()["podCIDRs"] = json::array{"10.42.8.0/24"};
  auto res = client_->Update(R("", "nodes"), "", changed);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), Code::kInvalidArgument) << res.status().ToString();
  EXPECT_NE(res.status().message().find("podCIDR"), std::string::npos);
  EXPECT_EQ(CidrOf("n"), "10.42.7.0/24");
  // Not a range at all: refused on create.
  json::value bad = json::object{{"apiVersion", "v1"},
                                 {"kind", "Node"},
                                 {"metadata", json::object{{"name", "bad"}}},
                                 {"spec", json::object{{"podCIDR", "10.42.9.1/24"}}}};
  EXPECT_EQ(client_->Create(R("", "nodes"), "", bad).status().code(), Code::kInvalidArgument);
}

TEST(NodeIpamOptionsTest, RefusesMasksThatDoNotFitTheClusterRange) {
  EXPECT_TRUE(ValidateNodeIpamOptions({"10.42.0.0/16", 24}).ok());
  EXPECT_TRUE(ValidateNodeIpamOptions({"10.0.0.0/8", 24}).ok());
  EXPECT_FALSE(ValidateNodeIpamOptions({"10.42.0.0/16", 12}).ok());  // Wider than the cluster.
  EXPECT_FALSE(ValidateNodeIpamOptions({"10.0.0.0/8", 26}).ok());    // 2^18 ranges.
  EXPECT_FALSE(ValidateNodeIpamOptions({"10.42.0.1/16", 24}).ok());  // Not a range.
  EXPECT_FALSE(ValidateNodeIpamOptions({"10.42.0.0/16", 31}).ok());
}

}  // namespace
}  // namespace kiso::controller
