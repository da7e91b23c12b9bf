// The HorizontalPodAutoscaler controller on a fake clock against an in-process
// API server, with pod usage from the test: stabilization windows and
// scaling policies take no real time.
#include "controller/hpa_controller.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <mutex>

#include "api/object.h"
#include "controller/controller_fixture.h"

namespace kiso::controller {
namespace {

namespace json = boost::json;
using std::chrono::seconds;

class HpaTest : public ControllerFixture {
 protected:
  void SetUp() override {
    ControllerFixture::SetUp();
    json::object requests{{"requests", json::object{{"cpu", "100m"}}}};
    json::object container{{"name", "c"}, {"image", "x"}, {"resources", requests}};
    json::value deployment = json::object{
        {"apiVersion", "apps/v1"},
        {"kind", "Deployment"},
        {"metadata", json::object{{"name", "web"}}},
        {"spec",
         json::object{
             {"replicas", 2},
             {"selector", json::object{{"matchLabels", json::object{{"app", "web"}}}}},
             {"template", json::object{{"metadata", json::object{{"labels", {{"app", "web"}}}}},
                                       {"spec", json::object{{"containers", {container}}}}}}}}};
    ASSERT_TRUE(client_->Create(R("apps", "deployments"), "default", deployment).ok());
    for (const char* name : {"web-a", "web-b"}) {
      json::value pod =
          json::object{{"apiVersion", "v1"},
                       {"kind", "Pod"},
                       {"metadata", json::object{{"name", name}, {"labels", {{"app", "web"}}}}},
                       {"spec", json::object{{"containers", {container}}}}};
      ASSERT_TRUE(client_->Create(R("", "pods"), "default", pod).ok());
    }
    json::value hpa = json::parse(R"({"apiVersion":"autoscaling/v2",
      "kind":"HorizontalPodAutoscaler","metadata":{"name":"web"},"spec":{
      "scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},
      "minReplicas":1,"maxReplicas":10,"metrics":[{"type":"Resource","resource":{
      "name":"cpu","target":{"type":"Utilization","averageUtilization":50}}}]}})");
    ASSERT_TRUE(client_
                    ->Create(*api::FindResource("autoscaling", "v2", "horizontalpodautoscalers"),
                             "default", hpa)
                    .ok());
    HpaOptions options;
    options.workers = 0;  // The test reconciles, at the fake clock's times.
    // The custom and external metrics APIs: the test's answers by path.
    options.get_metrics =
        [this](
            const std::string& path,
            const std::vector<std::pair<std::string, std::string>>& query) -> Result<json::value> {
      std::lock_guard lock(mu_);
      asked_[path] = query;
      auto it = served_.find(path);
      if (it == served_.end()) return MakeStatus(Code::kNotFound, "the server could not find it");
      return it->second;
    };
    controller_ = std::make_unique<HorizontalPodAutoscalerController>(
        client_.get(), &clock_,
        [this](const std::string&) -> Result<PodMetrics> {
          std::lock_guard lock(mu_);
          return usage_;
        },
        options);
    controller_->Start();
  }
  void TearDown() override { controller_.reset(); }

  void Use(int64_t milli_each) {
    std::lock_guard lock(mu_);
    usage_ = {{"web-a", {{"c", {milli_each, 1 << 20}}}}, {"web-b", {{"c", {milli_each, 1 << 20}}}}};
  }
  int64_t Replicas() {
    auto d = client_->Get(R("apps", "deployments"), "default", "web");
    return d.ok() ? api::GetInt(*d, {"spec", "replicas"}, -1) : -1;
  }
  json::value Hpa() {
    return *client_->Get(*api::FindResource("autoscaling", "v2", "horizontalpodautoscalers"),
                         "default", "web");
  }
  // Reconciles (at the fake clock's time) until the Deployment has `want` replicas.
  bool ScalesTo(int64_t want) {
    return Eventually([&] {
      (void)controller_->ReconcileGuarded("default/web");
      return Replicas() == want;
    });
  }
  std::string Condition(const std::string& type) {
    json::value hpa = Hpa();  // Kept: the conditions are read from it.
    for (const auto& c : api::GetArray(hpa, {"status", "conditions"})) {
      if (api::GetString(c, {"type"}) == type)
        return fmt::format("{} {}", api::GetString(c, {"status"}), api::GetString(c, {"reason"}));
    }
    return "";
  }

  // Replaces the HPA's metrics with `metrics` (JSON) and waits until the controller saw it.
  void SetMetrics(const std::string& metrics) {
    PatchSpec(json::object{{"metrics", json::parse(metrics)}});
  }
  // Merges `spec` into the HPA's and waits until the controller has acted on it.
  void PatchSpec(json::object spec) {
    json::value patch = json::object{{"spec", std::move(spec)}};
    ASSERT_TRUE(client_
                    ->Patch(*api::FindResource("autoscaling", "v2", "horizontalpodautoscalers"),
                            "default", "web", client::PatchType::kMerge, patch)
                    .ok());
    ASSERT_TRUE(Eventually([&] {
      (void)controller_->ReconcileGuarded("default/web");
      json::value hpa = Hpa();
      return api::GetInt(hpa, {"status", "observedGeneration"}, 0) ==
             api::GetInt(hpa, {"metadata", "generation"}, -1);
    }));
  }
  void Serve(const std::string& path, const std::string& list) {
    std::lock_guard lock(mu_);
    served_[path] = json::parse(list);
  }
  std::vector<std::pair<std::string, std::string>> Asked(const std::string& path) {
    std::lock_guard lock(mu_);
    return asked_[path];
  }

  FakeClock clock_;
  std::mutex mu_;
  PodMetrics usage_;
  std::map<std::string, json::value> served_;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> asked_;
  std::unique_ptr<HorizontalPodAutoscalerController> controller_;
};

TEST_F(HpaTest, ScalesUpAtOnceAndDownAfterTheStabilizationWindow) {
  clock_.SetWall(std::chrono::system_clock::time_point(std::chrono::hours(490000)));
  Use(150);  // 150% of the request, target 50%: 2 × 3 = 6.
  ASSERT_TRUE(ScalesTo(6));
  json::value hpa = Hpa();
  EXPECT_EQ(api::GetInt(hpa, {"status", "desiredReplicas"}, 0), 6);
  const auto& metrics = api::GetArray(hpa, {"status", "currentMetrics"});
  ASSERT_EQ(metrics.size(), 1u);
  EXPECT_EQ(api::GetInt(metrics[0], {"resource", "current", "averageUtilization"}, 0), 150);
  EXPECT_EQ(Condition("ScalingActive"), "True ValidMetricFound");
  // Idle: 10% wants 1 replica, but the scale-down window (300 s) remembers 6.
  Use(10);
  clock_.SetWall(clock_.WallNow() + seconds(60));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(controller_->ReconcileGuarded("default/web").ok());
  EXPECT_EQ(Replicas(), 6);
  clock_.SetWall(clock_.WallNow() + seconds(241));
  ASSERT_TRUE(ScalesTo(1));
  EXPECT_EQ(Condition("AbleToScale"), "True SucceededRescale");
  // Within the tolerance (10%) nothing moves: 52% against 50%.
  Use(52);
  clock_.SetWall(clock_.WallNow() + seconds(30));
  ASSERT_TRUE(controller_->ReconcileGuarded("default/web").ok());
  EXPECT_EQ(Replicas(), 1);
}

TEST_F(HpaTest, PoliciesLimitTheRateAndMaxReplicasTheSize) {
  clock_.SetWall(std::chrono::system_clock::time_point(std::chrono::hours(490000)));
  // No usage yet: nothing scales while the controller takes the patched HPA in.
  PatchSpec(json::parse(R"({"maxReplicas":4,"behavior":{"scaleUp":{
      "policies":[{"type":"Pods","value":1,"periodSeconds":60}]}}})")
                .as_object());
  Use(150);
  ASSERT_TRUE(ScalesTo(3));  // 2 → 3: one pod per minute.
  clock_.SetWall(clock_.WallNow() + seconds(30));
  ASSERT_TRUE(controller_->ReconcileGuarded("default/web").ok());
  EXPECT_EQ(Replicas(), 3);  // Still within the minute.
  EXPECT_EQ(Condition("ScalingLimited"), "True ScaleUpLimit");
  clock_.SetWall(clock_.WallNow() + seconds(31));
  ASSERT_TRUE(ScalesTo(4));  // The next minute: one more, and 4 is the most.
  clock_.SetWall(clock_.WallNow() + seconds(61));
  ASSERT_TRUE(controller_->ReconcileGuarded("default/web").ok());
  EXPECT_EQ(Replicas(), 4);
  EXPECT_EQ(Condition("ScalingLimited"), "True TooManyReplicas");
}

TEST_F(HpaTest, PodsMetricsAverageOverTheSelectedPods) {
  clock_.SetWall(std::chrono::system_clock::time_point(std::chrono::hours(490000)));
  SetMetrics(R"([{"type":"Pods","pods":{"metric":{"name":"requests_per_second"},
      "target":{"type":"AverageValue","averageValue":"10"}}}])");
  EXPECT_EQ(Condition("ScalingActive"), "False FailedGetPodsMetric");  // Nothing served yet.
  EXPECT_EQ(Replicas(), 2);
  // web-a 25, web-b 35 (and a pod the selector does not pick): average 30 of 10 → 2 × 3 = 6.
  const std::string path =
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/pods/*/requests_per_second";
  Serve(path, R"({"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta2",
      "metadata":{},"items":[
      {"describedObject":{"kind":"Pod","namespace":"default","name":"web-a","apiVersion":"/v1"},
       "metric":{"name":"requests_per_second"},"value":"25"},
      {"describedObject":{"kind":"Pod","namespace":"default","name":"web-b","apiVersion":"/v1"},
       "metric":{"name":"requests_per_second"},"value":"35000m"},
      {"describedObject":{"kind":"Pod","namespace":"default","name":"other","apiVersion":"/v1"},
       "metric":{"name":"requests_per_second"},"value":"900"}]})");
  ASSERT_TRUE(ScalesTo(6));
  auto query = Asked(path);
  ASSERT_EQ(query.size(), 1u);
  EXPECT_EQ(query[0], std::make_pair(std::string("labelSelector"), std::string("app=web")));
  json::value hpa = Hpa();
  const auto& metrics = api::GetArray(hpa, {"status", "currentMetrics"});
  ASSERT_EQ(metrics.size(), 1u);
  EXPECT_EQ(api::GetString(metrics[0], {"type"}), "Pods");
  EXPECT_EQ(api::GetString(metrics[0], {"pods", "current", "averageValue"}), "30");
  EXPECT_EQ(api::GetString(metrics[0], {"pods", "metric", "name"}), "requests_per_second");
  EXPECT_EQ(Condition("ScalingActive"), "True ValidMetricFound");
}

TEST_F(HpaTest, ObjectAndExternalMetricsTheLargestWins) {
  clock_.SetWall(std::chrono::system_clock::time_point(std::chrono::hours(490000)));
  SetMetrics(R"([
      {"type":"Object","object":{"metric":{"name":"hits"},
       "describedObject":{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","name":"main"},
       "target":{"type":"Value","value":"100"}}},
      {"type":"External","external":{"metric":{"name":"queue_depth",
       "selector":{"matchLabels":{"queue":"jobs"}}},
       "target":{"type":"AverageValue","averageValue":"5"}}}])");
  // The Ingress: 150 of 100 → 2 × 1.5 = 3. The queue: 12 + 8 = 20 at 5 a pod → 4.
  Serve(
      "/apis/custom.metrics.k8s.io/v1beta2/namespaces/default/ingresses.networking.k8s.io/main/"
      "hits",
      R"({"items":[{"describedObject":{"kind":"Ingress","name":"main"},
            "metric":{"name":"hits"},"value":"150"}]})");
  const std::string external =
      "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_depth";
  Serve(external, R"({"items":[{"metricName":"queue_depth","value":"12"},
                               {"metricName":"queue_depth","value":"8"}]})");
  ASSERT_TRUE(ScalesTo(4));
  auto query = Asked(external);
  ASSERT_EQ(query.size(), 1u);
  EXPECT_EQ(query[0], std::make_pair(std::string("labelSelector"), std::string("queue=jobs")));
  json::value hpa = Hpa();
  const auto& metrics = api::GetArray(hpa, {"status", "currentMetrics"});
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(api::GetString(metrics[0], {"object", "current", "value"}), "150");
  EXPECT_EQ(api::GetString(metrics[0], {"object", "describedObject", "kind"}), "Ingress");
  EXPECT_EQ(api::GetString(metrics[1], {"external", "current", "averageValue"}), "10");
  // The queue grows to 40: 8 replicas, once the scale-up policies' 15 s have passed.
  Serve(external, R"({"items":[{"metricName":"queue_depth","value":"40"}]})");
  clock_.SetWall(clock_.WallNow() + seconds(16));
  ASSERT_TRUE(ScalesTo(8));
}

TEST_F(HpaTest, NoMetricsIsSaidAndChangesNothing) {
  ASSERT_TRUE(Eventually([&] {
    (void)controller_->ReconcileGuarded("default/web");
    return Condition("ScalingActive") == "False FailedGetResourceMetric";
  }));
  EXPECT_EQ(Replicas(), 2);
}

}  // namespace
}  // namespace kiso::controller
