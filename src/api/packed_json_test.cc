#include "api/packed_json.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <boost/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "api/object.h"

namespace kiso::api {
namespace {

namespace json = boost::json;

// A pod as the watch cache holds it (as stored, with managedFields).
constexpr std::string_view kPod = R"({"kind":"Pod","apiVersion":"v1","metadata":{
  "name":"web-5d7f8c9b6d-x2x4k","namespace":"default","uid":"3771609e-2e1a-44f5-976b-a6e6fba258be",
  "resourceVersion":"82","creationTimestamp":"2026-12-07T03:26:13Z",
  "labels":{"app":"web","pod-template-hash":"5d7f8c9b6d"},
  "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-5d7f8c9b6d",
    "uid":"cd76c07d-e060-4fcf-8a16-6a788be6094a","controller":true,"blockOwnerDeletion":true}],
  "managedFields":[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1",
    "time":"2026-12-07T03:26:13Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{}}}]},
  "spec":{"containers":[{"name":"app","image":"registry.local/app:1.0",
    "ports":[{"containerPort":8080,"protocol":"TCP"}],
    "resources":{"requests":{"cpu":"100m","memory":"64Mi"}},
    "terminationMessagePath":"/dev/termination-log","imagePullPolicy":"IfNotPresent"}],
    "restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst",
    "schedulerName":"default-scheduler","priority":0,"enableServiceLinks":true,
    "tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists",
      "effect":"NoExecute","tolerationSeconds":300}]},
  "status":{"phase":"Pending","qosClass":"Burstable","ratio":0.25,"conditions":[
    {"type":"PodScheduled","status":"False","lastTransitionTime":"2026-12-07T03:26:13Z",
     "reason":"Unschedulable","message":"0/0 nodes are available: no nodes."}]}})";

json::value Pod() { return json::parse(kPod); }

TEST(PackedJsonTest, CopyEqualsTheOriginal) {
  json::value pod = Pod();
  auto packed = PackedCopy(pod);
  EXPECT_EQ(*packed, pod);
  EXPECT_EQ(json::serialize(*packed), json::serialize(pod));
  json::value empty;
  EXPECT_EQ(*PackedCopy(empty), empty);
  EXPECT_EQ(*PackedCopy(json::value("a string longer than the inline buffer of one")),
            json::value("a string longer than the inline buffer of one"));
}

TEST(PackedJsonTest, TakesLessMemoryThanAHeapCopy) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "glibc's malloc statistics do not see ThreadSanitizer's allocator";
#endif
  json::value pod = Pod();
  constexpr int kCopies = 500;
  auto in_use = [] { return mallinfo2().uordblks; };
  std::vector<std::shared_ptr<const json::value>> kept;
  kept.reserve(kCopies);
  size_t before = in_use();
  for (int i = 0; i < kCopies; ++i) kept.push_back(std::make_shared<const json::value>(pod));
  size_t heap = in_use() - before;
  kept.clear();
  before = in_use();
  for (int i = 0; i < kCopies; ++i) kept.push_back(PackedCopy(pod));
  size_t packed = in_use() - before;
  // One block each, sized exactly, against an allocation per node with malloc's overhead.
  EXPECT_LT(packed * 10, heap * 8) << "packed " << packed << " B, heap " << heap << " B";
}

TEST(PackedJsonTest, CopiesMadeFromItAreOrdinaryAndOutliveIt) {
  auto packed = PackedCopy(Pod());
  json::value copy = *packed;  // Shares the packed storage, as boost::json copies do.
  copy.as_object()["metadata"].as_object()["name"] = "renamed-to-something-rather-long-0123456789";
  copy.as_object()["spec"].as_object().erase("tolerations");
  copy.as_object()["status"].as_object()["conditions"].as_array().emplace_back("more");
  EXPECT_EQ(GetString(*packed, {"metadata", "name"}), "web-5d7f8c9b6d-x2x4k");
  packed.reset();  // The copy keeps the block alive.
  EXPECT_EQ(GetString(copy, {"metadata", "name"}), "renamed-to-something-rather-long-0123456789");
  EXPECT_EQ(GetString(copy, {"spec", "containers"}), "");
  EXPECT_EQ(GetArray(copy, {"status", "conditions"}).size(), 2u);
}

// Readers on many threads copy and change what they copied (the controllers'
// way with informer objects); ThreadSanitizer checks the shared storage.
TEST(PackedJsonTest, SharedBetweenThreads) {
  auto packed = PackedCopy(Pod());
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([packed, t] {
      for (int i = 0; i < 200; ++i) {
        json::value copy = *packed;
        copy.as_object()["metadata"].as_object()["name"] =
            std::to_string(t * 1000 + i) + "-a-name-longer-than-inline-storage";
        json::object labels = packed->at("metadata").at("labels").as_object();
        labels["round"] = std::to_string(i);
        ASSERT_EQ(labels.size(), 3u);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(*packed, Pod());
}

TEST(PackedJsonTest, DecodeDropsManagedFieldsAndKeepsParseJsonsBounds) {
  auto pod = PackedDecode(kPod);
  ASSERT_TRUE(pod.ok()) << pod.status().ToString();
  json::value want = Pod();
  DropManagedFields(want);
  EXPECT_EQ(**pod, want);
  EXPECT_EQ(Find(**pod, {"metadata", "managedFields"}), nullptr);

  auto broken = PackedDecode(R"({"kind":"Pod",)");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), Code::kInvalidArgument);

  std::string deep(kMaxDepth + 1, '[');
  deep += std::string(kMaxDepth + 1, ']');
  auto too_deep = PackedDecode(deep);
  ASSERT_FALSE(too_deep.ok());
  EXPECT_NE(too_deep.status().message().find(std::to_string(kMaxDepth)), std::string::npos);
}

}  // namespace
}  // namespace kiso::api
