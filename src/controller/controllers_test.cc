// Each workload controller against a real in-process API server. The test plays
// the kubelet's part by writing pod status itself, and polls the API with a
// deadline; nothing depends on elapsed time.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "api/object.h"
#include "controller/clusterrole_aggregation_controller.h"
#include "controller/controller_fixture.h"
#include "controller/daemonset_controller.h"
#include "controller/deployment_controller.h"
#include "controller/disruption_controller.h"
#include "controller/endpoints_controller.h"
#include "controller/endpointslice_controller.h"
#include "controller/garbage_collector.h"
#include "controller/job_controller.h"
#include "controller/namespace_controller.h"
#include "controller/pod_gc_controller.h"
#include "controller/replicaset_controller.h"
#include "controller/service_account_controllers.h"
#include "controller/statefulset_controller.h"

namespace kiso::controller {
namespace {

namespace json = boost::json;

json::object PodTemplate(std::string_view app, std::string_view image) {
  return json::object{
      {"metadata", json::object{{"labels", json::object{{"app", app}}}}},
      {"spec",
       json::object{{"containers", json::array{json::object{{"name", "c"}, {"image", image}}}}}}};
}

class ControllersTest : public ControllerFixture {
 protected:
  std::vector<json::value> Pods(std::string_view ns = "default") {
    auto list = client_->List(R("", "pods"), ns);
    if (!list.ok()) return {};
    std::vector<json::value> pods;
    for (const auto& p : list->at("items").as_array()) pods.push_back(p);
    return pods;
  }
  std::vector<json::value> ActivePods(std::string_view ns = "default") {
    std::vector<json::value> active;
    for (auto& p : Pods(ns)) {
      if (IsActivePod(p)) active.push_back(std::move(p));
    }
    return active;
  }
  // What a kubelet would report: the pod's phase, and Ready when Running.
  void SetPhase(const json::value& pod, std::string_view phase, std::string_view ip = "") {
    json::object status{{"phase", phase}};
    if (phase == "Running") {
      status["conditions"] = json::array{json::object{{"type", "Ready"}, {"status", "True"}}};
    }
    if (!ip.empty()) status["podIP"] = ip;
    auto r = client_->Patch(R("", "pods"), api::GetString(pod, {"metadata", "namespace"}),
                            api::GetString(pod, {"metadata", "name"}), client::PatchType::kMerge,
                            json::object{{"status", std::move(status)}}, "status");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  void MakeReady() {
    for (const auto& p : ActivePods()) {
      if (!IsReadyPod(p)) SetPhase(p, "Running");
    }
  }
  int64_t StatusInt(const json::value& obj, std::string_view field) {
    const auto* v = api::Find(obj, {"status", field});
    return v && v->is_int64() ? v->get_int64() : 0;
  }
  json::value MustGet(const api::ResourceType& type, std::string_view ns, std::string_view name) {
    auto r = client_->Get(type, ns, name);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : json::value();
  }
  json::value ReplicaSet(std::string_view name, int replicas) {
    return json::object{
        {"apiVersion", "apps/v1"},
        {"kind", "ReplicaSet"},
        {"metadata", json::object{{"name", name}}},
        {"spec",
         json::object{{"replicas", replicas},
                      {"selector", json::object{{"matchLabels", json::object{{"app", name}}}}},
                      {"template", PodTemplate(name, "busybox")}}}};
  }
};

TEST_F(ControllersTest, ReplicaSetCreatesOwnedPodsCountsReadyAndScalesDown) {
  ReplicaSetController rs_controller(client_.get());
  rs_controller.Start();
  auto rs = client_->Create(R("apps", "replicasets"), "default", ReplicaSet("web", 3));
  ASSERT_TRUE(rs.ok());
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 3; }));
  std::string uid(api::GetString(*rs, {"metadata", "uid"}));
  for (const auto& p : ActivePods()) {
    EXPECT_EQ(ControllerUid(p, "ReplicaSet"), uid);
    EXPECT_EQ(api::GetString(p, {"metadata", "labels", "app"}), "web");
  }
  MakeReady();
  ASSERT_TRUE(Eventually([&] {
    auto got = MustGet(R("apps", "replicasets"), "default", "web");
    return StatusInt(got, "replicas") == 3 && StatusInt(got, "readyReplicas") == 3 &&
           StatusInt(got, "availableReplicas") == 3;
  }));
  ASSERT_TRUE(client_
                  ->Patch(R("apps", "replicasets"), "default", "web", client::PatchType::kMerge,
                          json::object{{"spec", json::object{{"replicas", 1}}}})
                  .ok());
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 1; }));
  ASSERT_TRUE(Eventually([&] {
    return StatusInt(MustGet(R("apps", "replicasets"), "default", "web"), "replicas") == 1;
  }));
  // A pod deleted behind its back is replaced (level-triggered, not edge).
  auto survivor = ActivePods().at(0);
  ASSERT_TRUE(
      client_->Delete(R("", "pods"), "default", api::GetString(survivor, {"metadata", "name"}))
          .ok());
  ASSERT_TRUE(Eventually([&] {
    auto active = ActivePods();
    return active.size() == 1 && api::GetString(active[0], {"metadata", "name"}) !=
                                     api::GetString(survivor, {"metadata", "name"});
  }));
}

TEST_F(ControllersTest, AvailableMeansReadyForMinReadySeconds) {
  ReplicaSetController rs_controller(client_.get());
  rs_controller.Start();
  json::value rs = ReplicaSet("patient", 2);
  rs.as_object()["spec"].as_object()["minReadySeconds"] = 3600;
  ASSERT_TRUE(client_->Create(R("apps", "replicasets"), "default", rs).ok());
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 2; }));
  auto pods = ActivePods();
  auto ready_since = [&](const json::value& pod, const std::string& since) {
    json::object status{
        {"phase", "Running"},
        {"conditions", json::array{json::object{
                           {"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", since}}}}};
    ASSERT_TRUE(client_
                    ->Patch(R("", "pods"), "default", api::GetString(pod, {"metadata", "name"}),
                            client::PatchType::kMerge, json::object{{"status", status}}, "status")
                    .ok());
  };
  ready_since(pods[0], "2020-01-01T00:00:00Z");  // Long enough.
  ready_since(pods[1], api::NowRfc3339());       // Not for an hour.
  ASSERT_TRUE(Eventually([&] {
    auto got = MustGet(R("apps", "replicasets"), "default", "patient");
    return StatusInt(got, "readyReplicas") == 2 && StatusInt(got, "availableReplicas") == 1;
  }));
}

TEST_F(ControllersTest, ReplicationControllerKeepsItsReplicasAsAReplicaSetDoes) {
  ReplicaSetController rcs(client_.get(), nullptr,
                           ReplicaSetController::Kind::kReplicationController);
  rcs.Start();
  json::value rc = json::object{{"apiVersion", "v1"},
                                {"kind", "ReplicationController"},
                                {"metadata", json::object{{"name", "legacy"}}},
                                {"spec", json::object{{"replicas", 2},
                                                      {"selector", json::object{{"app", "legacy"}}},
                                                      {"template", PodTemplate("legacy", "x")}}}};
  ASSERT_TRUE(client_->Create(R("", "replicationcontrollers"), "default", rc).ok());
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 2; }));
  auto pod = ActivePods().at(0);
  const auto& owner = api::Find(pod, {"metadata", "ownerReferences"})->as_array().at(0);
  EXPECT_EQ(api::GetString(owner, {"kind"}), "ReplicationController");
  EXPECT_EQ(api::GetString(owner, {"apiVersion"}), "v1");
  MakeReady();
  ASSERT_TRUE(Eventually([&] {
    auto got = MustGet(R("", "replicationcontrollers"), "default", "legacy");
    return StatusInt(got, "readyReplicas") == 2 && StatusInt(got, "fullyLabeledReplicas") == 2;
  }));
  auto scaled = client_->Patch(R("", "replicationcontrollers"), "default", "legacy",
                               client::PatchType::kMerge,
                               json::object{{"spec", json::object{{"replicas", 1}}}});
  ASSERT_TRUE(scaled.ok()) << scaled.status().ToString();
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 1; }));
}

TEST_F(ControllersTest, PodGcDeletesTerminatedPodsPastTheThresholdAndPodsOfVanishedNodes) {
  json::value node = json::object{
      {"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", json::object{{"name", "n1"}}}};
  ASSERT_TRUE(client_->Create(R("", "nodes"), "", node).ok());
  auto pod_on = [&](const std::string& name, const std::string& on, std::string_view phase) {
    json::value pod = json::object{{"apiVersion", "v1"},
                                   {"kind", "Pod"},
                                   {"metadata", json::object{{"name", name}}},
                                   {"spec", PodTemplate("gc", "x").at("spec")}};
    pod.as_object()["spec"].as_object()["nodeName"] = on;
    auto made = client_->Create(R("", "pods"), "default", pod);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    SetPhase(*made, phase);
  };
  // The oldest go (creation times have seconds: within one, the name decides, and these are
  // made in their names' order).
  for (int i = 0; i < 4; ++i) pod_on(fmt::format("done-{}", i), "n1", "Succeeded");
  pod_on("running", "n1", "Running");
  pod_on("stranded", "gone", "Running");
  PodGcOptions options;
  options.terminated_threshold = 2;
  options.quarantine = std::chrono::milliseconds(0);
  options.period = std::chrono::milliseconds(50);
  PodGcController gc(client_.get(), options);
  gc.Start();
  auto names = [&] {
    std::set<std::string> out;
    for (const auto& p : Pods()) out.emplace(api::GetString(p, {"metadata", "name"}));
    return out;
  };
  ASSERT_TRUE(Eventually([&] {
    return names() == std::set<std::string>{"done-2", "done-3", "running"};
  }));
}

TEST_F(ControllersTest, DisruptionBudgetStatusGatesEvictions) {
  DisruptionController disruption(client_.get());
  disruption.Start();
  ReplicaSetController rs_controller(client_.get());
  rs_controller.Start();
  ASSERT_TRUE(client_->Create(R("apps", "replicasets"), "default", ReplicaSet("guarded", 3)).ok());
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 3; }));
  // Bound and ready (a bound pod's deletion waits for its kubelet, as here nobody finishes it).
  for (const auto& p : ActivePods()) {
    json::value binding =
        json::object{{"apiVersion", "v1"},
                     {"kind", "Binding"},
                     {"metadata", json::object{{"name", api::GetString(p, {"metadata", "name"})}}},
                     {"target", json::object{{"kind", "Node"}, {"name", "n1"}}}};
    ASSERT_TRUE(client_
                    ->CreateSubresource(R("", "pods"), "default",
                                        api::GetString(p, {"metadata", "name"}), "binding", binding)
                    .ok());
    SetPhase(p, "Running");
  }
  json::value pdb = json::object{
      {"apiVersion", "policy/v1"},
      {"kind", "PodDisruptionBudget"},
      {"metadata", json::object{{"name", "keep-two"}}},
      {"spec", json::object{
                   {"maxUnavailable", "34%"},
                   {"selector", json::object{{"matchLabels", json::object{{"app", "guarded"}}}}}}}};
  ASSERT_TRUE(client_->Create(R("policy", "poddisruptionbudgets"), "default", pdb).ok());
  // Three expected (the ReplicaSet's scale), 34% of 3 rounded up is 2 unavailable: 1 desired.
  ASSERT_TRUE(Eventually([&] {
    auto got = MustGet(R("policy", "poddisruptionbudgets"), "default", "keep-two");
    return StatusInt(got, "expectedPods") == 3 && StatusInt(got, "desiredHealthy") == 1 &&
           StatusInt(got, "currentHealthy") == 3 && StatusInt(got, "disruptionsAllowed") == 2;
  }));
  auto evict = [&](const json::value& pod) {
    std::string name(api::GetString(pod, {"metadata", "name"}));
    json::value eviction = json::object{{"apiVersion", "policy/v1"},
                                        {"kind", "Eviction"},
                                        {"metadata", json::object{{"name", name}}}};
    return client_->CreateSubresource(R("", "pods"), "default", name, "eviction", eviction);
  };
  auto pods = ActivePods();
  ASSERT_EQ(pods.size(), 3U);
  ASSERT_TRUE(evict(pods[0]).ok());
  ASSERT_TRUE(evict(pods[1]).ok());
  // Two evictions granted, the budget spent: the third is refused, the pod left alone.
  auto refused = evict(pods[2]);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("Cannot evict pod as it would violate the pod's "
                                            "disruption budget"),
            std::string::npos)
      << refused.status().ToString();
  auto third = MustGet(R("", "pods"), "default", api::GetString(pods[2], {"metadata", "name"}));
  EXPECT_TRUE(api::GetString(third, {"metadata", "deletionTimestamp"}).empty());
  auto got = MustGet(R("policy", "poddisruptionbudgets"), "default", "keep-two");
  EXPECT_EQ(StatusInt(got, "disruptionsAllowed"), 0);
  // Not ready, and the budget lets unhealthy pods go whatever it allows: evicted.
  ASSERT_TRUE(
      client_
          ->Patch(
              R("policy", "poddisruptionbudgets"), "default", "keep-two", client::PatchType::kMerge,
              json::object{{"spec", json::object{{"unhealthyPodEvictionPolicy", "AlwaysAllow"}}}})
          .ok());
  json::object not_ready{
      {"phase", "Running"},
      {"conditions", json::array{json::object{{"type", "Ready"}, {"status", "False"}}}}};
  ASSERT_TRUE(client_
                  ->Patch(R("", "pods"), "default", api::GetString(pods[2], {"metadata", "name"}),
                          client::PatchType::kMerge, json::object{{"status", not_ready}}, "status")
                  .ok());
  auto unhealthy = evict(pods[2]);
  EXPECT_TRUE(unhealthy.ok()) << unhealthy.status().ToString();
}

TEST_F(ControllersTest, PodsTakeLabelsAndAnnotationsButNoNameFromTheTemplate) {
  ReplicaSetController rs_controller(client_.get());
  rs_controller.Start();
  json::value rs = ReplicaSet("named", 2);
  auto& meta = rs.at("spec").at("template").at("metadata").as_object();
  meta["name"] = "fixed";  // Allowed in a template, and ignored, as upstream does.
  meta["annotations"] = json::object{{"note", "kept"}};
  ASSERT_TRUE(client_->Create(R("apps", "replicasets"), "default", rs).ok());
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 2; }));
  std::set<std::string> names;
  for (const auto& p : ActivePods()) {
    names.insert(std::string(api::GetString(p, {"metadata", "name"})));
    EXPECT_EQ(api::GetString(p, {"metadata", "annotations", "note"}), "kept");
    EXPECT_EQ(api::GetString(p, {"metadata", "labels", "app"}), "named");
  }
  EXPECT_EQ(names.size(), 2u);
  EXPECT_FALSE(names.count("fixed"));
}

TEST_F(ControllersTest, DeploymentRollsToANewRevisionAndReportsAvailable) {
  ReplicaSetController rs_controller(client_.get());
  DeploymentController deployments(client_.get());
  rs_controller.Start();
  deployments.Start();
  json::value d = json::object{
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", json::object{{"name", "app"}}},
      {"spec",
       json::object{{"replicas", 2},
                    {"selector", json::object{{"matchLabels", json::object{{"app", "app"}}}}},
                    {"template", PodTemplate("app", "busybox:1")}}}};
  ASSERT_TRUE(client_->Create(R("apps", "deployments"), "default", d).ok());
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 2; }));
  MakeReady();
  auto available = [&] {
    auto got = MustGet(R("apps", "deployments"), "default", "app");
    for (const auto& c : got.at("status").as_object().contains("conditions")
                             ? got.at("status").at("conditions").as_array()
                             : json::array{}) {
      if (api::GetString(c, {"type"}) == "Available")
        return api::GetString(c, {"status"}) == "True";
    }
    return false;
  };
  ASSERT_TRUE(Eventually(available));

  ASSERT_TRUE(
      client_
          ->Patch(
              R("apps", "deployments"), "default", "app", client::PatchType::kStrategic,
              json::parse(
                  R"({"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:2"}]}}}})"))
          .ok());
  // The kubelet's part: whatever pods appear become ready, until the rollout is done.
  ASSERT_TRUE(Eventually([&] {
    MakeReady();
    auto got = MustGet(R("apps", "deployments"), "default", "app");
    auto pods = ActivePods();
    bool all_new = pods.size() == 2;
    for (const auto& p : pods) {
      all_new =
          all_new && api::GetString(p.at("spec").at("containers").at(0), {"image"}) == "busybox:2";
    }
    return all_new && StatusInt(got, "updatedReplicas") == 2 &&
           StatusInt(got, "availableReplicas") == 2 &&
           api::GetString(got, {"metadata", "annotations", "deployment.kubernetes.io/revision"}) ==
               "2";
  }));
  auto sets = client_->List(R("apps", "replicasets"), "default");
  ASSERT_TRUE(sets.ok());
  std::set<std::string> revisions;
  for (const auto& rs : sets->at("items").as_array()) {
    revisions.emplace(
        api::GetString(rs, {"metadata", "annotations", "deployment.kubernetes.io/revision"}));
    std::string image(
        api::GetString(rs.at("spec").at("template").at("spec").at("containers").at(0), {"image"}));
    EXPECT_EQ(rs.at("spec").at("replicas").as_int64(), image == "busybox:2" ? 2 : 0);
  }
  EXPECT_EQ(revisions, (std::set<std::string>{"1", "2"}));
}

TEST_F(ControllersTest, JobRunsToCompletionsOneAtATime) {
  JobController jobs(client_.get());
  jobs.Start();
  json::value job = json::object{{"apiVersion", "batch/v1"},
                                 {"kind", "Job"},
                                 {"metadata", json::object{{"name", "twice"}}},
                                 {"spec", json::object{{"completions", 2},
                                                       {"parallelism", 1},
                                                       {"template", [] {
                                                          auto t = PodTemplate("twice", "busybox");
                                                          t["spec"].as_object()["restartPolicy"] =
                                                              "Never";
                                                          return t;
                                                        }()}}}};
  ASSERT_TRUE(client_->Create(R("batch", "jobs"), "default", job).ok());
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 1; })) << "round " << round;
    SetPhase(ActivePods().at(0), "Succeeded");
  }
  ASSERT_TRUE(Eventually([&] {
    auto got = MustGet(R("batch", "jobs"), "default", "twice");
    const auto* conditions = api::Find(got, {"status", "conditions"});
    bool complete = false;
    if (conditions && conditions->is_array()) {
      for (const auto& c : conditions->get_array()) {
        complete = complete || (api::GetString(c, {"type"}) == "Complete" &&
                                api::GetString(c, {"status"}) == "True");
      }
    }
    return complete && StatusInt(got, "succeeded") == 2;
  }));
  EXPECT_TRUE(ActivePods().empty());
}

TEST_F(ControllersTest, JobFailsPastItsBackoffLimit) {
  JobController jobs(client_.get());
  jobs.Start();
  json::value job = json::object{
      {"apiVersion", "batch/v1"},
      {"kind", "Job"},
      {"metadata", json::object{{"name", "doomed"}}},
      {"spec", json::object{{"backoffLimit", 1}, {"template", [] {
                                                    auto t = PodTemplate("doomed", "busybox");
                                                    t["spec"].as_object()["restartPolicy"] =
                                                        "Never";
                                                    return t;
                                                  }()}}}};
  ASSERT_TRUE(client_->Create(R("batch", "jobs"), "default", job).ok());
  std::set<std::string> failed;
  auto failed_reason = [&]() -> std::string {
    auto got = MustGet(R("batch", "jobs"), "default", "doomed");
    const auto* conditions = api::Find(got, {"status", "conditions"});
    if (conditions && conditions->is_array()) {
      for (const auto& c : conditions->get_array()) {
        if (api::GetString(c, {"type"}) == "Failed" && api::GetString(c, {"status"}) == "True")
          return std::string(api::GetString(c, {"reason"}));
      }
    }
    return "";
  };
  // Fail every pod it makes; backoffLimit 1 allows one retry, so two pods fail.
  ASSERT_TRUE(Eventually([&] {
    for (const auto& p : ActivePods()) {
      failed.emplace(api::GetString(p, {"metadata", "name"}));
      SetPhase(p, "Failed");
    }
    return !failed_reason().empty();
  }));
  EXPECT_EQ(failed_reason(), "BackoffLimitExceeded");
  EXPECT_EQ(failed.size(), 2u);
  EXPECT_EQ(StatusInt(MustGet(R("batch", "jobs"), "default", "doomed"), "failed"), 2);
}

class JobFeaturesTest : public ControllersTest {
 protected:
  void SetUp() override {
    ControllersTest::SetUp();
    jobs_ = std::make_unique<JobController>(client_.get());
    jobs_->Start();
  }
  void TearDown() override { jobs_.reset(); }
  void Create(const std::string& name, json::object spec) {
    auto t = PodTemplate(name, "busybox");
    t["spec"].as_object()["restartPolicy"] = "Never";
    spec["template"] = t;
    json::value job = json::object{{"apiVersion", "batch/v1"},
                                   {"kind", "Job"},
                                   {"metadata", json::object{{"name", name}}},
                                   {"spec", spec}};
    auto made = client_->Create(R("batch", "jobs"), "default", job);
    ASSERT_TRUE(made.ok()) << made.status().ToString();
  }
  json::value Job(const std::string& name) { return MustGet(R("batch", "jobs"), "default", name); }
  std::string Condition(const std::string& name, std::string_view type) {
    auto got = client_->Get(R("batch", "jobs"), "default", name);
    if (!got.ok()) return "gone";
    const auto* conditions = api::Find(*got, {"status", "conditions"});
    if (conditions && conditions->is_array()) {
      for (const auto& c : conditions->get_array()) {
        if (api::GetString(c, {"type"}) == type && api::GetString(c, {"status"}) == "True")
          return std::string(api::GetString(c, {"reason"}));
      }
    }
    return "";
  }
  // The kubelet's part: a pod ends with `code` (0: Succeeded).
  void End(const json::value& pod, int code) {
    json::object status{
        {"phase", code == 0 ? "Succeeded" : "Failed"},
        {"containerStatuses",
         json::array{json::object{
             {"name", "c"},
             {"state", json::object{{"terminated", json::object{{"exitCode", code}}}}}}}}};
    auto r = client_->Patch(R("", "pods"), "default", api::GetString(pod, {"metadata", "name"}),
                            client::PatchType::kMerge, json::object{{"status", status}}, "status");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::unique_ptr<JobController> jobs_;
};

TEST_F(JobFeaturesTest, IndexedPodsCarryTheirIndexAndFinishEveryIndex) {
  Create("idx",
         json::object{{"completionMode", "Indexed"}, {"completions", 3}, {"parallelism", 2}});
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 2; }));
  std::set<std::string> indexes;
  for (const auto& p : ActivePods()) {
    std::string index(
        api::GetString(p, {"metadata", "annotations", "batch.kubernetes.io/job-completion-index"}));
    indexes.insert(index);
    EXPECT_EQ(api::GetString(p, {"metadata", "labels", "batch.kubernetes.io/job-completion-index"}),
              index);
    EXPECT_EQ(api::GetString(p, {"spec", "hostname"}), "idx-" + index);
    const auto& env =
        api::Find(p, {"spec", "containers"})->as_array().at(0).as_object().at("env").as_array();
    EXPECT_EQ(api::GetString(env.back(), {"name"}), "JOB_COMPLETION_INDEX");
    EXPECT_EQ(api::GetString(env.back(), {"value"}), index);
  }
  EXPECT_EQ(indexes, (std::set<std::string>{"0", "1"}));
  // Index 1 fails once: made again; then everything succeeds.
  for (const auto& p : ActivePods()) {
    End(p,
        api::GetString(p, {"metadata", "labels", "batch.kubernetes.io/job-completion-index"}) == "1"
            ? 3
            : 0);
  }
  ASSERT_TRUE(Eventually([&] {
    for (const auto& p : ActivePods()) End(p, 0);
    return Condition("idx", "Complete") == "CompletionsReached";
  }));
  EXPECT_EQ(api::GetString(Job("idx"), {"status", "completedIndexes"}), "0-2");
}

TEST_F(JobFeaturesTest, BackoffLimitPerIndexFailsOnlyThatIndex) {
  Create("per", json::object{{"completionMode", "Indexed"},
                             {"completions", 2},
                             {"parallelism", 2},
                             {"backoffLimitPerIndex", 0}});
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 2; }));
  for (const auto& p : ActivePods()) {
    End(p,
        api::GetString(p, {"metadata", "labels", "batch.kubernetes.io/job-completion-index"}) == "0"
            ? 1
            : 0);
  }
  ASSERT_TRUE(Eventually([&] { return Condition("per", "Failed") == "FailedIndexes"; }));
  auto job = Job("per");
  EXPECT_EQ(api::GetString(job, {"status", "failedIndexes"}), "0");
  EXPECT_EQ(api::GetString(job, {"status", "completedIndexes"}), "1");
}

TEST_F(JobFeaturesTest, SuccessPolicyAndMaxFailedIndexes) {
  // Index 0 alone is success enough: the rest are stopped.
  Create("leader",
         json::object{{"completionMode", "Indexed"},
                      {"completions", 3},
                      {"parallelism", 3},
                      {"successPolicy",
                       json::object{{"rules", json::array{json::object{{"succeededIndexes", "0"},
                                                                       {"succeededCount", 1}}}}}}});
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 3; }));
  for (const auto& p : ActivePods()) {
    if (api::GetString(p, {"metadata", "labels", "batch.kubernetes.io/job-completion-index"}) ==
        "0")
      End(p, 0);
  }
  ASSERT_TRUE(Eventually([&] { return Condition("leader", "Complete") == "SuccessPolicy"; }));
  EXPECT_TRUE(ActivePods().empty());
  // One failed index is one too many.
  Create("strict", json::object{{"completionMode", "Indexed"},
                                {"completions", 3},
                                {"parallelism", 1},
                                {"backoffLimitPerIndex", 0},
                                {"maxFailedIndexes", 0}});
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 1; }));
  End(ActivePods().at(0), 1);
  ASSERT_TRUE(
      Eventually([&] { return Condition("strict", "Failed") == "MaxFailedIndexesExceeded"; }));
}

TEST_F(JobFeaturesTest, PodFailurePolicyIgnoresOrFailsTheJobByExitCode) {
  json::array rules{
      json::object{{"action", "Ignore"},
                   {"onExitCodes", json::object{{"operator", "In"}, {"values", json::array{42}}}}},
      json::object{
          {"action", "FailJob"},
          {"onExitCodes",
           json::object{{"containerName", "c"}, {"operator", "In"}, {"values", json::array{7}}}}}};
  Create("policy",
         json::object{{"backoffLimit", 0}, {"podFailurePolicy", json::object{{"rules", rules}}}});
  // Exit 42 is ignored (no retry counted: backoffLimit 0 still allows the next pod).
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 1; }));
  std::string first(api::GetString(ActivePods().at(0), {"metadata", "name"}));
  End(ActivePods().at(0), 42);
  ASSERT_TRUE(Eventually([&] {
    auto a = ActivePods();
    return a.size() == 1 && api::GetString(a[0], {"metadata", "name"}) != first;
  }));
  EXPECT_EQ(Condition("policy", "Failed"), "");
  End(ActivePods().at(0), 7);
  ASSERT_TRUE(Eventually([&] { return Condition("policy", "Failed") == "PodFailurePolicy"; }));
  EXPECT_EQ(StatusInt(Job("policy"), "failed"), 1);
}

TEST_F(JobFeaturesTest, SuspendDeadlineAndTtl) {
  Create("paused", json::object{{"suspend", true}});
  ASSERT_TRUE(Eventually([&] { return Condition("paused", "Suspended") == "JobSuspended"; }));
  EXPECT_TRUE(ActivePods().empty());
  auto resumed = client_->Patch(R("batch", "jobs"), "default", "paused", client::PatchType::kMerge,
                                json::object{{"spec", json::object{{"suspend", false}}}});
  ASSERT_TRUE(resumed.ok());
  ASSERT_TRUE(Eventually([&] { return ActivePods().size() == 1; }));
  // The status is written after the pod is made.
  EXPECT_TRUE(Eventually([&] {
    return !api::GetString(Job("paused"), {"status", "startTime"}).empty();
  }));

  // A one-second deadline passes (the controller requeues itself for it).
  Create("hurry", json::object{{"activeDeadlineSeconds", 1}});
  ASSERT_TRUE(Eventually([&] { return Condition("hurry", "Failed") == "DeadlineExceeded"; }));

  // Finished with a TTL of 0: the Job goes.
  Create("brief", json::object{{"ttlSecondsAfterFinished", 0}});
  ASSERT_TRUE(Eventually([&] {
    for (const auto& p : ActivePods())
      if (api::GetString(p, {"metadata", "labels", "app"}) == "brief") End(p, 0);
    return Condition("brief", "Complete") == "gone";
  }));
}

TEST_F(ControllersTest, GarbageCollectorHonoursAllThreePropagationPolicies) {
  ReplicaSetController rs_controller(client_.get());
  GarbageCollector gc(client_.get());
  rs_controller.Start();
  gc.Start();
  auto pods_of = [&](std::string_view app) {
    size_t n = 0;
    for (const auto& p : Pods()) n += api::GetString(p, {"metadata", "labels", "app"}) == app;
    return n;
  };
  for (std::string_view name : {"bg", "fg", "orphan"}) {
    ASSERT_TRUE(client_->Create(R("apps", "replicasets"), "default", ReplicaSet(name, 2)).ok());
    ASSERT_TRUE(Eventually([&] { return pods_of(name) == 2; })) << name;
  }
  // One pod of each set is held by a finalizer of the test's: the order of
  // deletion is then visible, and tells the two cascading modes apart.
  auto hold_one = [&](std::string_view app) {
    for (const auto& p : Pods()) {
      if (api::GetString(p, {"metadata", "labels", "app"}) != app) continue;
      std::string name(api::GetString(p, {"metadata", "name"}));
      json::value patch =
          json::object{{"metadata", json::object{{"finalizers", json::array{"kiso.test/hold"}}}}};
      EXPECT_TRUE(
          client_->Patch(R("", "pods"), "default", name, client::PatchType::kMerge, patch).ok());
      return name;
    }
    return std::string();
  };
  auto release = [&](const std::string& pod) {
    json::value patch = json::object{{"metadata", json::object{{"finalizers", nullptr}}}};
    EXPECT_TRUE(
        client_->Patch(R("", "pods"), "default", pod, client::PatchType::kMerge, patch).ok());
  };
  auto deleting = [&](const std::string& pod) {
    auto p = client_->Get(R("", "pods"), "default", pod);
    return p.ok() && !api::GetString(*p, {"metadata", "deletionTimestamp"}).empty();
  };

  // An Event the set owns: Events are not collected (kube-controller-manager's
  // default ignored resources), so it outlives the set.
  auto bg = client_->Get(R("apps", "replicasets"), "default", "bg");
  ASSERT_TRUE(bg.ok());
  json::value event = json::object{
      {"metadata",
       json::object{{"name", "bg.owned"},
                    {"ownerReferences", json::array{json::object{
                                            {"apiVersion", "apps/v1"},
                                            {"kind", "ReplicaSet"},
                                            {"name", "bg"},
                                            {"uid", api::GetString(*bg, {"metadata", "uid"})}}}}}},
      {"involvedObject",
       json::object{{"kind", "ReplicaSet"}, {"namespace", "default"}, {"name", "bg"}}},
      {"reason", "Tested"},
      {"message", "owned by the set"},
      {"type", "Normal"}};
  ASSERT_TRUE(client_->Create(R("", "events"), "default", event).ok());

  // Background: the owner goes at once; its dependents after it, the held one last.
  std::string held_bg = hold_one("bg");
  client::DeleteOptions background;
  background.propagation_policy = "Background";
  ASSERT_TRUE(client_->Delete(R("apps", "replicasets"), "default", "bg", background).ok());
  EXPECT_FALSE(client_->Get(R("apps", "replicasets"), "default", "bg").ok());
  ASSERT_TRUE(Eventually([&] { return pods_of("bg") == 1 && deleting(held_bg); }));
  release(held_bg);
  ASSERT_TRUE(Eventually([&] { return pods_of("bg") == 0; }));
  EXPECT_TRUE(client_->Get(R("", "events"), "default", "bg.owned").ok());

  // Foreground: dependents first; the owner stays, marked, while one remains.
  std::string held_fg = hold_one("fg");
  client::DeleteOptions foreground;
  foreground.propagation_policy = "Foreground";
  ASSERT_TRUE(client_->Delete(R("apps", "replicasets"), "default", "fg", foreground).ok());
  ASSERT_TRUE(Eventually([&] { return pods_of("fg") == 1 && deleting(held_fg); }));
  auto owner = client_->Get(R("apps", "replicasets"), "default", "fg");
  ASSERT_TRUE(owner.ok()) << "the owner went before its dependents";
  EXPECT_FALSE(api::GetString(*owner, {"metadata", "deletionTimestamp"}).empty());
  EXPECT_EQ(api::GetArray(*owner, {"metadata", "finalizers"}).at(0), "foregroundDeletion");
  release(held_fg);
  ASSERT_TRUE(Eventually([&] {
    return !client_->Get(R("apps", "replicasets"), "default", "fg").ok() && pods_of("fg") == 0;
  }));

  client::DeleteOptions orphan;
  orphan.propagation_policy = "Orphan";
  ASSERT_TRUE(client_->Delete(R("apps", "replicasets"), "default", "orphan", orphan).ok());
  ASSERT_TRUE(Eventually([&] {
    if (client_->Get(R("apps", "replicasets"), "default", "orphan").ok()) return false;
    size_t unowned = 0;
    for (const auto& p : Pods()) {
      unowned += api::GetString(p, {"metadata", "labels", "app"}) == "orphan" &&
                 api::Find(p, {"metadata", "ownerReferences"}) == nullptr;
    }
    return unowned == 2;
  }));
}

TEST_F(ControllersTest, DeletingANamespaceRemovesEverythingInIt) {
  NamespaceController namespaces(client_.get());
  namespaces.Start();
  ASSERT_TRUE(client_
                  ->Create(R("", "namespaces"), "",
                           json::object{{"apiVersion", "v1"},
                                        {"kind", "Namespace"},
                                        {"metadata", json::object{{"name", "doomed"}}}})
                  .ok());
  ASSERT_TRUE(client_
                  ->Create(R("", "configmaps"), "doomed",
                           json::object{{"apiVersion", "v1"},
                                        {"kind", "ConfigMap"},
                                        {"metadata", json::object{{"name", "cm"}}},
                                        {"data", json::object{{"k", "v"}}}})
                  .ok());
  ASSERT_TRUE(client_->Create(R("apps", "replicasets"), "doomed", ReplicaSet("rs", 0)).ok());
  ASSERT_TRUE(client_->Delete(R("", "namespaces"), "", "doomed").ok());
  // While it terminates, nothing new may be created in it.
  auto late = client_->Create(R("", "configmaps"), "doomed",
                              json::object{{"apiVersion", "v1"},
                                           {"kind", "ConfigMap"},
                                           {"metadata", json::object{{"name", "late"}}}});
  EXPECT_FALSE(late.ok());
  ASSERT_TRUE(Eventually([&] { return !client_->Get(R("", "namespaces"), "", "doomed").ok(); }));
  EXPECT_FALSE(client_->Get(R("", "configmaps"), "doomed", "cm").ok());
  EXPECT_FALSE(client_->Get(R("apps", "replicasets"), "doomed", "rs").ok());
}

TEST_F(ControllersTest, AggregatedClusterRoleHoldsTheRulesOfTheRolesItSelects) {
  ClusterRoleAggregationController aggregation(client_.get());
  aggregation.Start();
  const auto& roles = R("rbac.authorization.k8s.io", "clusterroles");
  auto role = [](std::string name, json::object labels, json::array rules) {
    return json::value(json::object{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                                    {"kind", "ClusterRole"},
                                    {"metadata", json::object{{"name", name}, {"labels", labels}}},
                                    {"rules", rules}});
  };
  json::value rule_a = json::parse(R"({"apiGroups":["x.io"],"resources":["as"],"verbs":["get"]})");
  json::value rule_b = json::parse(R"({"apiGroups":["y.io"],"resources":["bs"],"verbs":["*"]})");
  json::value aggregate = role("reader", {}, {});
  aggregate.as_object()["aggregationRule"] =
      json::parse(R"({"clusterRoleSelectors":[{"matchLabels":{"aggregate-to-reader":"true"}}]})");
  aggregate.as_object().erase("rules");
  ASSERT_TRUE(client_->Create(roles, "", aggregate).ok());
  ASSERT_TRUE(
      client_->Create(roles, "", role("a", {{"aggregate-to-reader", "true"}}, {rule_a})).ok());
  ASSERT_TRUE(
      client_->Create(roles, "", role("b", {{"aggregate-to-reader", "true"}}, {rule_b, rule_a}))
          .ok());
  ASSERT_TRUE(client_->Create(roles, "", role("c", {{"other", "true"}}, {rule_b})).ok());
  auto rules_of = [&] {
    json::value got = MustGet(roles, "", "reader");
    const auto* r = api::Find(got, {"rules"});
    return r && r->is_array() ? r->get_array() : json::array();
  };
  ASSERT_TRUE(Eventually([&] { return rules_of() == json::array{rule_a, rule_b}; }));
  // A selected role that stops matching takes its rules away.
  ASSERT_TRUE(client_->Delete(roles, "", "a").ok());
  ASSERT_TRUE(client_
                  ->Patch(roles, "", "b", client::PatchType::kMerge,
                          json::parse(R"({"rules":[)" + json::serialize(rule_b) + "]}"))
                  .ok());
  ASSERT_TRUE(Eventually([&] { return rules_of() == json::array{rule_b}; }));
}

// The node each daemon pod is made for (its matchFields affinity).
std::string TargetNode(const json::value& pod) {
  const auto* terms =
      api::Find(pod, {"spec", "affinity", "nodeAffinity",
                      "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"});
  if (!terms || !terms->is_array() || terms->get_array().empty()) return "";
  const auto* fields = api::Find(terms->get_array()[0], {"matchFields"});
  if (!fields || !fields->is_array() || fields->get_array().empty()) return "";
  const auto* values = api::Find(fields->get_array()[0], {"values"});
  if (!values || !values->is_array() || values->get_array().empty() ||
      !values->get_array()[0].is_string())
    return "";
  return std::string(values->get_array()[0].get_string());
}

TEST_F(ControllersTest, DaemonSetRunsOnePodPerEligibleNodeAndRollsNodeByNode) {
  DaemonSetController daemonsets(client_.get());
  daemonsets.Start();
  auto node = [&](std::string_view name, json::object labels, json::array taints) {
    json::value n = json::object{{"apiVersion", "v1"},
                                 {"kind", "Node"},
                                 {"metadata", json::object{{"name", name}, {"labels", labels}}},
                                 {"spec", json::object{{"taints", taints}}}};
    auto r = client_->Create(R("", "nodes"), "", n);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  const json::object disk{{"disk", "ssd"}};
  node("n1", disk, {});
  node("n2", disk, {});
  node("other", json::object{{"disk", "hdd"}}, {});  // The nodeSelector leaves it out.
  node("tainted", disk,
       json::array{json::object{{"key", "dedicated"}, {"value", "db"}, {"effect", "NoSchedule"}}});
  node("cordoned", disk,  // Daemon pods tolerate what a cordon adds.
       json::array{
           json::object{{"key", "node.kubernetes.io/unschedulable"}, {"effect", "NoSchedule"}}});
  json::object tmpl = PodTemplate("agent", "busybox:1");
  tmpl["spec"].as_object()["nodeSelector"] = disk;
  json::value ds = json::object{
      {"apiVersion", "apps/v1"},
      {"kind", "DaemonSet"},
      {"metadata", json::object{{"name", "agent"}}},
      {"spec",
       json::object{{"selector", json::object{{"matchLabels", json::object{{"app", "agent"}}}}},
                    {"template", tmpl}}}};
  ASSERT_TRUE(client_->Create(R("apps", "daemonsets"), "default", ds).ok());
  auto targets = [&] {
    std::multiset<std::string> out;
    for (const auto& p : ActivePods()) out.insert(TargetNode(p));
    return out;
  };
  ASSERT_TRUE(Eventually([&] {
    return targets() == std::multiset<std::string>{"cordoned", "n1", "n2"};
  })) << targets().size();
  for (const auto& p : ActivePods()) {
    EXPECT_EQ(
        ControllerUid(p, "DaemonSet"),
        api::GetString(MustGet(R("apps", "daemonsets"), "default", "agent"), {"metadata", "uid"}));
    EXPECT_FALSE(api::GetString(p, {"metadata", "labels", "controller-revision-hash"}).empty());
    bool tolerates_not_ready = false;
    for (const auto& t : p.at("spec").at("tolerations").as_array())
      tolerates_not_ready |= api::GetString(t, {"key"}) == "node.kubernetes.io/not-ready";
    EXPECT_TRUE(tolerates_not_ready);
  }
  // A node joining gets its pod; a NoExecute taint sends one away.
  node("n3", disk, {});
  ASSERT_TRUE(Eventually([&] { return targets().count("n3") == 1; }));
  ASSERT_TRUE(
      client_
          ->Patch(R("", "nodes"), "", "n2", client::PatchType::kMerge,
                  json::object{{"spec", json::object{{"taints", json::array{json::object{
                                                                    {"key", "evict"},
                                                                    {"effect", "NoExecute"}}}}}}})
          .ok());
  ASSERT_TRUE(Eventually([&] { return targets().count("n2") == 0; }));
  MakeReady();
  ASSERT_TRUE(Eventually([&] {
    auto got = MustGet(R("apps", "daemonsets"), "default", "agent");
    return StatusInt(got, "desiredNumberScheduled") == 3 && StatusInt(got, "numberReady") == 3 &&
           StatusInt(got, "updatedNumberScheduled") == 3;
  }));
  // A new template: replaced one node at a time (maxUnavailable 1), never two down at once.
  auto hash_of = [](const json::value& p) {
    return std::string(api::GetString(p, {"metadata", "labels", "controller-revision-hash"}));
  };
  const std::string old_hash = hash_of(ActivePods().at(0));
  ASSERT_TRUE(
      client_
          ->Patch(
              R("apps", "daemonsets"), "default", "agent", client::PatchType::kMerge,
              json::object{{"spec", json::object{{"template", PodTemplate("agent", "busybox:2")}}}})
          .ok());
  ASSERT_TRUE(Eventually([&] {
    auto pods = ActivePods();
    int ready = 0;
    for (const auto& p : pods) ready += IsReadyPod(p) ? 1 : 0;
    EXPECT_GE(ready, 2);  // Of 3 nodes, one at a time without an available pod.
    MakeReady();
    bool all_new = !pods.empty() && std::all_of(pods.begin(), pods.end(), [&](const auto& p) {
      return hash_of(p) != old_hash && IsReadyPod(p);
    });
    auto got = MustGet(R("apps", "daemonsets"), "default", "agent");
    return all_new && StatusInt(got, "updatedNumberScheduled") == 3 &&
           StatusInt(got, "numberAvailable") == 3;
  }));
  EXPECT_EQ(targets(), (std::multiset<std::string>{"cordoned", "n1", "n3"}));

  // With maxSurge 1 and maxUnavailable 0 the new pod starts beside the old one, which goes
  // once it is ready: never fewer than three available, never more than one node doubled.
  const std::string second_hash = hash_of(ActivePods().at(0));
  json::object third = PodTemplate("agent", "busybox:3");
  ASSERT_TRUE(
      client_
          ->Patch(
              R("apps", "daemonsets"), "default", "agent", client::PatchType::kMerge,
              json::object{
                  {"spec", json::object{{"template", third},
                                        {"updateStrategy",
                                         json::object{{"rollingUpdate",
                                                       json::object{{"maxSurge", 1},
                                                                    {"maxUnavailable", 0}}}}}}}})
          .ok());
  bool doubled = false;
  ASSERT_TRUE(Eventually([&] {
    auto pods = ActivePods();
    int ready = 0;
    for (const auto& p : pods) ready += IsReadyPod(p) ? 1 : 0;
    EXPECT_GE(ready, 3);
    EXPECT_LE(pods.size(), 4u);
    doubled = doubled || pods.size() == 4;
    MakeReady();
    bool all_new = pods.size() == 3 && std::all_of(pods.begin(), pods.end(), [&](const auto& p) {
                     return hash_of(p) != second_hash && hash_of(p) != old_hash && IsReadyPod(p);
                   });
    auto got = MustGet(R("apps", "daemonsets"), "default", "agent");
    return all_new && StatusInt(got, "updatedNumberScheduled") == 3 &&
           StatusInt(got, "numberAvailable") == 3;
  }));
  EXPECT_TRUE(doubled);  // The surge was seen.
  EXPECT_EQ(targets(), (std::multiset<std::string>{"cordoned", "n1", "n3"}));
}

TEST_F(ControllersTest, EveryNamespaceKeepsItsDefaultAccountAndRootCa) {
  ServiceAccountsController accounts(client_.get());
  RootCaPublisher root_ca(client_.get(), "-----BEGIN CERTIFICATE-----\nx\n");
  accounts.Start();
  root_ca.Start();
  ASSERT_TRUE(client_
                  ->Create(R("", "namespaces"), "",
                           json::object{{"apiVersion", "v1"},
                                        {"kind", "Namespace"},
                                        {"metadata", json::object{{"name", "team"}}}})
                  .ok());
  auto ca_of = [&] {
    auto cm = client_->Get(R("", "configmaps"), "team", "kube-root-ca.crt");
    return cm.ok() ? std::string(api::GetString(*cm, {"data", "ca.crt"})) : std::string();
  };
  ASSERT_TRUE(Eventually([&] { return ca_of() == "-----BEGIN CERTIFICATE-----\nx\n"; }));
  // Changed or deleted, both come back.
  ASSERT_TRUE(client_
                  ->Patch(R("", "configmaps"), "team", "kube-root-ca.crt",
                          client::PatchType::kMerge, json::parse(R"({"data":{"ca.crt":"forged"}})"))
                  .ok());
  ASSERT_TRUE(Eventually([&] { return ca_of() == "-----BEGIN CERTIFICATE-----\nx\n"; }));
  ASSERT_TRUE(client_->Delete(R("", "serviceaccounts"), "team", "default").ok());
  ASSERT_TRUE(
      Eventually([&] { return client_->Get(R("", "serviceaccounts"), "team", "default").ok(); }));
}

TEST_F(ControllersTest, EndpointsListReadyAndNotReadyPodsOfAService) {
  EndpointsController endpoints(client_.get());
  endpoints.Start();
  json::value service = json::object{
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", json::object{{"name", "web"}}},
      {"spec",
       json::object{{"selector", json::object{{"app", "web"}}},
                    {"ports", json::array{json::object{{"port", 80}, {"targetPort", 8080}}}}}}};
  ASSERT_TRUE(client_->Create(R("", "services"), "default", service).ok());
  for (std::string_view name : {"a", "b", "other"}) {
    json::value pod = json::object{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         json::object{{"name", name},
                      {"labels", json::object{{"app", name == "other" ? "x" : "web"}}}}},
        {"spec", json::object{{"containers",
                               json::array{json::object{{"name", "c"}, {"image", "busybox"}}}}}}};
    ASSERT_TRUE(client_->Create(R("", "pods"), "default", pod).ok());
  }
  SetPhase(MustGet(R("", "pods"), "default", "a"), "Running", "10.42.0.5");
  SetPhase(MustGet(R("", "pods"), "default", "other"), "Running", "10.42.0.7");
  // b has an IP but is not ready.
  ASSERT_TRUE(client_
                  ->Patch(R("", "pods"), "default", "b", client::PatchType::kMerge,
                          json::parse(R"({"status":{"phase":"Pending","podIP":"10.42.0.6"}})"),
                          "status")
                  .ok());
  ASSERT_TRUE(Eventually([&] {
    auto ep = client_->Get(R("", "endpoints"), "default", "web");
    if (!ep.ok()) return false;
    const auto* subsets = api::Find(*ep, {"subsets"});
    if (!subsets || !subsets->is_array() || subsets->get_array().size() != 1) return false;
    const auto& s = subsets->get_array()[0];
    const auto* ready = api::Find(s, {"addresses"});
    const auto* not_ready = api::Find(s, {"notReadyAddresses"});
    return ready && not_ready && ready->as_array().size() == 1 &&
           api::GetString(ready->as_array()[0], {"ip"}) == "10.42.0.5" &&
           not_ready->as_array().size() == 1 &&
           api::GetString(not_ready->as_array()[0], {"ip"}) == "10.42.0.6" &&
           s.at("ports").at(0).at("port").as_int64() == 8080;
  }));
}

// The slices of Service `name`, as {ip → "ready/serving/terminating"} and their ports.
std::map<std::string, std::string> SliceEndpoints(client::Client* c, std::string_view name,
                                                  json::array* ports = nullptr,
                                                  std::string* weights = nullptr) {
  std::map<std::string, std::string> out;
  auto list = c->List(*api::FindResource("discovery.k8s.io", "v1", "endpointslices"), "default");
  if (!list.ok()) return out;
  for (const auto& slice : list->at("items").as_array()) {
    if (api::GetString(slice, {"metadata", "labels", "kubernetes.io/service-name"}) != name)
      continue;
    if (ports) *ports = slice.at("ports").as_array();
    if (weights) {
      *weights =
          std::string(api::GetString(slice, {"metadata", "annotations", "kiso.dev/weights"}));
    }
    for (const auto& e : slice.at("endpoints").as_array()) {
      const auto& c = e.at("conditions");
      out[std::string(e.at("addresses").at(0).as_string())] =
          fmt::format("{}/{}/{}", c.at("ready").as_bool(), c.at("serving").as_bool(),
                      c.at("terminating").as_bool());
    }
  }
  return out;
}

TEST_F(ControllersTest, EndpointSlicesCarryConditionsWeightsAndMirrors) {
  EndpointsController endpoints(client_.get());
  EndpointSliceController slices(client_.get());
  endpoints.Start();
  slices.Start();
  json::value service = json::object{
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", json::object{{"name", "web"}}},
      {"spec",
       json::object{{"selector", json::object{{"app", "web"}}},
                    {"ports", json::array{json::object{
                                  {"name", "http"}, {"port", 80}, {"targetPort", 8080}}}}}}};
  ASSERT_TRUE(client_->Create(R("", "services"), "default", service).ok());
  for (std::string_view name : {"a", "b", "c"}) {
    json::object meta{{"name", name}, {"labels", json::object{{"app", "web"}}}};
    if (name == "a") meta["annotations"] = json::object{{"kiso.dev/weight", "3"}};
    if (name == "c") meta["finalizers"] = json::array{"test/hold"};
    json::value pod = json::object{
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata", std::move(meta)},
        {"spec", json::object{{"containers",
                               json::array{json::object{{"name", "c"}, {"image", "busybox"}}}}}}};
    ASSERT_TRUE(client_->Create(R("", "pods"), "default", pod).ok());
  }
  SetPhase(MustGet(R("", "pods"), "default", "a"), "Running", "10.42.0.5");
  ASSERT_TRUE(client_
                  ->Patch(R("", "pods"), "default", "b", client::PatchType::kMerge,
                          json::parse(R"({"status":{"phase":"Pending","podIP":"10.42.0.6"}})"),
                          "status")
                  .ok());
  SetPhase(MustGet(R("", "pods"), "default", "c"), "Running", "10.42.0.7");
  // c terminates (its finalizer keeps it): not ready, still serving, terminating.
  ASSERT_TRUE(client_->Delete(R("", "pods"), "default", "c").ok());
  json::array ports;
  std::string weights;
  ASSERT_TRUE(Eventually([&] {
    return SliceEndpoints(client_.get(), "web", &ports, &weights) ==
           std::map<std::string, std::string>{{"10.42.0.5", "true/true/false"},
                                              {"10.42.0.6", "false/false/false"},
                                              {"10.42.0.7", "false/true/true"}};
  }));
  EXPECT_EQ(json::serialize(ports), R"([{"port":8080,"protocol":"TCP","name":"http"}])");
  EXPECT_EQ(weights, R"({"10.42.0.5":3})");
  // Endpoints leave the terminating pod out.
  ASSERT_TRUE(Eventually([&] {
    auto ep = client_->Get(R("", "endpoints"), "default", "web");
    return ep.ok() && json::serialize(*ep).find("10.42.0.7") == std::string::npos &&
           json::serialize(*ep).find("10.42.0.6") != std::string::npos;
  })) << json::serialize(*client_->Get(R("", "endpoints"), "default", "web"));
  ASSERT_TRUE(client_
                  ->Patch(R("", "pods"), "default", "c", client::PatchType::kMerge,
                          json::parse(R"({"metadata":{"finalizers":null}})"))
                  .ok());

  // A Service without a selector: its Endpoints, mirrored.
  json::value manual =
      json::object{{"apiVersion", "v1"},
                   {"kind", "Service"},
                   {"metadata", json::object{{"name", "db"}}},
                   {"spec", json::object{{"ports", json::array{json::object{{"port", 5432}}}}}}};
  ASSERT_TRUE(client_->Create(R("", "services"), "default", manual).ok());
  json::value manual_ep = json::object{
      {"apiVersion", "v1"},
      {"kind", "Endpoints"},
      {"metadata", json::object{{"name", "db"}}},
      {"subsets", json::array{json::object{
                      {"addresses", json::array{json::object{{"ip", "127.0.0.9"}}}},
                      {"ports", json::array{json::object{{"port", 5432}, {"protocol", "TCP"}}}}}}}};
  ASSERT_TRUE(client_->Create(R("", "endpoints"), "default", manual_ep).ok());
  ASSERT_TRUE(Eventually([&] {
    return SliceEndpoints(client_.get(), "db") ==
           std::map<std::string, std::string>{{"127.0.0.9", "true/true/false"}};
  }));
  // The Service gone, so are its slices.
  ASSERT_TRUE(client_->Delete(R("", "services"), "default", "web").ok());
  ASSERT_TRUE(Eventually([&] { return SliceEndpoints(client_.get(), "web").empty(); }));
}

}  // namespace
}  // namespace kiso::controller

namespace kiso::controller {
namespace {

class StatefulSetTest : public ControllersTest {
 protected:
  void SetUp() override {
    ControllersTest::SetUp();
    controller_ = std::make_unique<StatefulSetController>(client_.get());
    controller_->Start();
  }
  void TearDown() override { controller_.reset(); }
  void Apply(int replicas, std::string_view image, std::string_view policy = "OrderedReady",
             int partition = 0) {
    json::value set = json::object{
        {"apiVersion", "apps/v1"},
        {"kind", "StatefulSet"},
        {"metadata", json::object{{"name", "web"}}},
        {"spec",
         json::object{{"replicas", replicas},
                      {"serviceName", "web"},
                      {"podManagementPolicy", policy},
                      {"updateStrategy",
                       json::object{{"type", "RollingUpdate"},
                                    {"rollingUpdate", json::object{{"partition", partition}}}}},
                      {"selector", json::object{{"matchLabels", json::object{{"app", "web"}}}}},
                      {"template", PodTemplate("web", image)}}}};
    // The controller writes its status meanwhile: a conflict is tried again.
    ASSERT_TRUE(Eventually([&] {
      auto have = client_->Get(R("apps", "statefulsets"), "default", "web");
      if (!have.ok()) return client_->Create(R("apps", "statefulsets"), "default", set).ok();
      set.as_object()["metadata"] = have->at("metadata");
      return client_->Update(R("apps", "statefulsets"), "default", set).ok();
    }));
  }
  // Pod names present (not terminating), in order.
  std::vector<std::string> Names() {
    std::vector<std::string> out;
    for (const auto& p : Pods()) {
      if (api::GetString(p, {"metadata", "deletionTimestamp"}).empty())
        out.emplace_back(api::GetString(p, {"metadata", "name"}));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string ImageOf(std::string_view pod) {
    auto p = client_->Get(R("", "pods"), "default", pod);  // Between delete and create: none.
    if (!p.ok()) return "";
    const auto* cs = api::Find(*p, {"spec", "containers"});
    return cs && cs->is_array() ? std::string(api::GetString(cs->get_array()[0], {"image"})) : "";
  }
  // The kubelet's part: a pod marked running is ready; one being deleted goes.
  void RunAll() {
    for (const auto& p : Pods()) {
      std::string name(api::GetString(p, {"metadata", "name"}));
      if (!api::GetString(p, {"metadata", "deletionTimestamp"}).empty()) {
        (void)client_->Delete(R("", "pods"), "default", name, {.grace_period_seconds = 0});
      } else if (!IsReadyPod(p)) {
        // Bound first: only a bound pod's deletion waits for its kubelet.
        json::value binding =
            json::object{{"apiVersion", "v1"},
                         {"kind", "Binding"},
                         {"metadata", json::object{{"name", name}}},
                         {"target", json::object{{"kind", "Node"}, {"name", "n1"}}}};
        if (api::GetString(p, {"spec", "nodeName"}).empty())
          (void)client_->CreateSubresource(R("", "pods"), "default", name, "binding", binding);
        // The controller may delete it meanwhile: no assertion.
        (void)client_->Patch(
            R("", "pods"), "default", name, client::PatchType::kMerge,
            json::object{{"status", json::object{{"phase", "Running"},
                                                 {"conditions",
                                                  json::array{json::object{{"type", "Ready"},
                                                                           {"status", "True"}}}}}}},
            "status");
      }
    }
  }
  bool Terminating(std::string_view pod) {
    auto p = client_->Get(R("", "pods"), "default", pod);
    return p.ok() && !api::GetString(*p, {"metadata", "deletionTimestamp"}).empty();
  }
  std::unique_ptr<StatefulSetController> controller_;
};

TEST_F(StatefulSetTest, OrderedReadyMakesPodsOneAtATimeAndRemovesTheHighestFirst) {
  Apply(3, "busybox:1");
  ASSERT_TRUE(Eventually([&] { return Names() == std::vector<std::string>{"web-0"}; }));
  auto pod = MustGet(R("", "pods"), "default", "web-0");
  EXPECT_EQ(api::GetString(pod, {"spec", "hostname"}), "web-0");
  EXPECT_EQ(api::GetString(pod, {"spec", "subdomain"}), "web");
  EXPECT_EQ(api::GetString(pod, {"metadata", "labels", "statefulset.kubernetes.io/pod-name"}),
            "web-0");
  EXPECT_EQ(api::GetString(pod, {"metadata", "labels", "apps.kubernetes.io/pod-index"}), "0");
  // web-1 waits for web-0 to be ready.
  RunAll();
  ASSERT_TRUE(Eventually([&] { return Names().size() == 2; }));
  RunAll();
  ASSERT_TRUE(Eventually([&] { return Names().size() == 3; }));
  RunAll();
  ASSERT_TRUE(Eventually([&] {
    auto set = MustGet(R("apps", "statefulsets"), "default", "web");
    return StatusInt(set, "readyReplicas") == 3 && StatusInt(set, "replicas") == 3;
  }));
  // Scale to 1: web-2 goes first; web-1 only after.
  Apply(1, "busybox:1");
  ASSERT_TRUE(Eventually([&] { return Terminating("web-2"); }));
  // web-1 stays while web-2 is still terminating.
  EXPECT_EQ(Names(), (std::vector<std::string>{"web-0", "web-1"}));
  RunAll();  // web-2 gone.
  ASSERT_TRUE(Eventually([&] { return Terminating("web-1"); }));
  RunAll();
  ASSERT_TRUE(Eventually([&] { return Pods().size() == 1; }));
  EXPECT_EQ(Names(), std::vector<std::string>{"web-0"});
}

TEST_F(StatefulSetTest, ParallelMakesThemAllAtOnce) {
  Apply(4, "busybox:1", "Parallel");
  ASSERT_TRUE(Eventually([&] { return Names().size() == 4; }));
  EXPECT_EQ(Names(), (std::vector<std::string>{"web-0", "web-1", "web-2", "web-3"}));
}

TEST_F(StatefulSetTest, RollingUpdateFromTheTopDownToThePartitionWithRevisions) {
  Apply(3, "busybox:1", "Parallel");
  ASSERT_TRUE(Eventually([&] { return Names().size() == 3; }));
  RunAll();
  std::string first_revision;
  ASSERT_TRUE(Eventually([&] {
    auto set = MustGet(R("apps", "statefulsets"), "default", "web");
    first_revision = std::string(api::GetString(set, {"status", "updateRevision"}));
    return StatusInt(set, "readyReplicas") == 3 && !first_revision.empty() &&
           api::GetString(set, {"status", "currentRevision"}) == first_revision;
  }));
  // A new image with partition 1: web-2, then web-1; web-0 stays.
  Apply(3, "busybox:2", "Parallel", 1);
  for (std::string_view pod : {"web-2", "web-1"}) {
    ASSERT_TRUE(Eventually([&] {
      RunAll();
      auto names = Names();
      return std::count(names.begin(), names.end(), std::string(pod)) == 1 &&
             ImageOf(pod) == "busybox:2";
    })) << pod;
  }
  RunAll();
  ASSERT_TRUE(Eventually([&] {
    auto set = MustGet(R("apps", "statefulsets"), "default", "web");
    return StatusInt(set, "updatedReplicas") == 2 && StatusInt(set, "readyReplicas") == 3;
  }));
  EXPECT_EQ(ImageOf("web-0"), "busybox:1");
  auto set = MustGet(R("apps", "statefulsets"), "default", "web");
  EXPECT_EQ(api::GetString(set, {"status", "currentRevision"}), first_revision);
  // Two revisions, the newer one numbered 2.
  auto revisions = client_->List(R("apps", "controllerrevisions"), "default");
  ASSERT_TRUE(revisions.ok());
  ASSERT_EQ(revisions->at("items").as_array().size(), 2U);
  // Partition 0: web-0 too, and the rollout completes.
  Apply(3, "busybox:2", "Parallel", 0);
  ASSERT_TRUE(Eventually([&] {
    RunAll();
    auto s = MustGet(R("apps", "statefulsets"), "default", "web");
    return ImageOf("web-0") == "busybox:2" && StatusInt(s, "updatedReplicas") == 3 &&
           api::GetString(s, {"status", "currentRevision"}) ==
               api::GetString(s, {"status", "updateRevision"});
  }));
}

}  // namespace
}  // namespace kiso::controller
