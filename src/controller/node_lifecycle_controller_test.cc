// The node lifecycle controller against an in-process API server, with a fake
// clock: heartbeats are judged by controller time, so the test moves time
// forward instead of waiting 40 s.
#include "controller/node_lifecycle_controller.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/object.h"
#include "controller/controller_fixture.h"

namespace kiso::controller {
namespace {

namespace json = boost::json;

class NodeLifecycleTest : public ControllerFixture {
 protected:
  void AddNode(const std::string& name) {
    json::value node = json::object{
        {"apiVersion", "v1"},
        {"kind", "Node"},
        {"metadata", json::object{{"name", name}}},
        {"status",
         json::object{{"conditions",
                       json::array{json::object{
                           {"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}}}}}};
    ASSERT_TRUE(client_->Create(R("", "nodes"), "", node).ok());
  }
  static std::string RenewTime(int n) { return fmt::format("2026-01-01T00:00:{:02d}.000000Z", n); }
  void Heartbeat(const std::string& name, int n) {
    json::value lease =
        json::object{{"apiVersion", "coordination.k8s.io/v1"},
                     {"kind", "Lease"},
                     {"metadata", json::object{{"name", name}, {"namespace", "kube-node-lease"}}},
                     {"spec", json::object{{"holderIdentity", name}, {"renewTime", RenewTime(n)}}}};
    ASSERT_TRUE(client_
                    ->Patch(R("coordination.k8s.io", "leases"), "kube-node-lease", name,
                            client::PatchType::kApply, lease)
                    .ok());
  }
  std::string ReadyOf(const std::string& name) {
    auto node = client_->Get(R("", "nodes"), "", name);
    if (!node.ok()) return "";
    for (const auto& c : node->at("status").at("conditions").as_array()) {
      if (api::GetString(c, {"type"}) == "Ready") return std::string(api::GetString(c, {"status"}));
    }
    return "";
  }

  FakeClock clock_;
};

TEST_F(NodeLifecycleTest, SilentNodeIsMarkedAndItsUntoleratingPodsEvicted) {
  AddNode("quiet");
  AddNode("chatty");
  NodeLifecycleOptions options;
  options.grace_period = std::chrono::seconds(40);
  options.monitor_period = std::chrono::hours(1);  // The test drives MonitorOnce itself.
  NodeLifecycleController controller(client_.get(), options, &clock_);
  controller.Start();
  Heartbeat("quiet", 1);
  Heartbeat("chatty", 1);
  ASSERT_TRUE(Eventually([&] { return controller.LastRenewTime("quiet") == RenewTime(1); }));
  json::value pod = json::object{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", "victim"}}},
      {"spec",
       json::object{
           {"nodeName", "quiet"},
           {"tolerations", json::array{json::object{{"key", "node.kubernetes.io/unreachable"},
                                                    {"operator", "Exists"},
                                                    {"effect", "NoExecute"},
                                                    {"tolerationSeconds", 0}}}},
           {"containers", json::array{json::object{{"name", "c"}, {"image", "x"}}}}}}};
  ASSERT_TRUE(client_->Create(R("", "pods"), "default", pod).ok());

  clock_.Advance(std::chrono::seconds(30));
  controller.MonitorOnce();
  EXPECT_EQ(ReadyOf("quiet"), "True");  // Within the grace period.

  Heartbeat("chatty", 2);  // Only chatty keeps talking.
  ASSERT_TRUE(Eventually([&] { return controller.LastRenewTime("chatty") == RenewTime(2); }));
  clock_.Advance(std::chrono::seconds(15));  // quiet: 45 s silent; chatty: 15 s.
  controller.MonitorOnce();
  ASSERT_TRUE(Eventually([&] { return ReadyOf("quiet") == "Unknown"; }));
  EXPECT_EQ(ReadyOf("chatty"), "True");
  auto node = client_->Get(R("", "nodes"), "", "quiet");
  ASSERT_TRUE(node.ok());
  ASSERT_TRUE(node->at("spec").as_object().contains("taints"));
  EXPECT_EQ(api::GetString(node->at("spec").at("taints").at(0), {"key"}),
            "node.kubernetes.io/unreachable");
  // tolerationSeconds 0: evicted at once (deletion marked; no kubelet confirms it).
  ASSERT_TRUE(Eventually([&] {
    auto p = client_->Get(R("", "pods"), "default", "victim");
    return p.ok() && !api::GetString(*p, {"metadata", "deletionTimestamp"}).empty();
  }));
  controller.Stop();
}

}  // namespace
}  // namespace kiso::controller
