#include "api/patch.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace kiso::api {
namespace {

namespace json = boost::json;

json::value J(std::string_view s) { return json::parse(s); }

TEST(JsonPatch, Rfc6902Operations) {
  auto doc = J(R"({"a":{"b":[1,2]},"c":"x"})");
  auto out = ApplyJsonPatch(doc, J(R"([
    {"op":"add","path":"/a/b/-","value":3},
    {"op":"add","path":"/a/b/0","value":0},
    {"op":"replace","path":"/c","value":"y"},
    {"op":"copy","from":"/c","path":"/d"},
    {"op":"move","from":"/d","path":"/e"},
    {"op":"remove","path":"/a/b/1"},
    {"op":"test","path":"/e","value":"y"},
    {"op":"add","path":"/k~1l","value":true}])"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, J(R"({"a":{"b":[0,2,3]},"c":"y","e":"y","k/l":true})"));
  EXPECT_EQ(doc, J(R"({"a":{"b":[1,2]},"c":"x"})"));  // Input untouched.
}

TEST(JsonPatch, FailuresChangeNothing) {
  auto doc = J(R"({"a":1})");
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"([{"op":"remove","path":"/missing"}])")).ok());
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"([{"op":"test","path":"/a","value":2}])")).ok());
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"([{"op":"add","path":"/x/y","value":2}])")).ok());
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"([{"op":"bogus","path":"/a"}])")).ok());
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"({"op":"add"})")).ok());
  EXPECT_FALSE(
      ApplyJsonPatch(J(R"({"l":[1]})"), J(R"([{"op":"add","path":"/l/05","value":1}])")).ok());
}

TEST(MergePatch, Rfc7386) {
  auto out = ApplyMergePatch(J(R"({"a":"b","c":{"d":"e","f":"g"},"l":[1,2]})"),
                             J(R"({"a":"z","c":{"f":null},"l":[3],"n":{"x":null}})"));
  EXPECT_EQ(out, J(R"({"a":"z","c":{"d":"e"},"l":[3],"n":{}})"));
}

TEST(StrategicMerge, MergesContainersByNameAndServicePortsByPort) {
  auto pod =
      J(R"({"spec":{"containers":[{"name":"a","image":"x:1","env":[{"name":"K","value":"1"}]},
                                          {"name":"b","image":"y:1"}]}})");
  auto out = ApplyStrategicMergePatch(
      pod, J(R"({"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],
                         "containers":[{"name":"a","image":"x:2","env":[{"name":"L","value":"2"}]}]}})"),
      "Pod");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(
      *out,
      J(R"({"spec":{"containers":[{"name":"a","image":"x:2","env":[{"name":"K","value":"1"},{"name":"L","value":"2"}]},
                                               {"name":"b","image":"y:1"}]}})"));
  auto svc = ApplyStrategicMergePatch(J(R"({"spec":{"ports":[{"port":80}]}})"),
                                      J(R"({"spec":{"ports":[{"port":8080}]}})"), "Service");
  ASSERT_TRUE(svc.ok());
  EXPECT_EQ(*svc, J(R"({"spec":{"ports":[{"port":80},{"port":8080}]}})"));
  // The same list in a Deployment's pod template.
  auto dep = ApplyStrategicMergePatch(
      J(R"({"spec":{"template":{"spec":{"containers":[{"name":"a","image":"1"}]}}}})"),
      J(R"({"spec":{"template":{"spec":{"containers":[{"name":"a","image":"2"}]}}}})"),
      "Deployment");
  ASSERT_TRUE(dep.ok());
  EXPECT_EQ(*dep, J(R"({"spec":{"template":{"spec":{"containers":[{"name":"a","image":"2"}]}}}})"));
}

TEST(StrategicMerge, Directives) {
  auto doc = J(R"({"metadata":{"finalizers":["a","b"],"ownerReferences":[{"uid":"1"},{"uid":"2"}]},
                   "spec":{"containers":[{"name":"a"},{"name":"b"}],"args":["x"],"m":{"k":"v","j":"w"}}})");
  auto out = ApplyStrategicMergePatch(
      doc, J(R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"],"finalizers":["c"],
                             "ownerReferences":[{"$patch":"delete","uid":"1"}]},
                 "spec":{"containers":[{"name":"b","$patch":"delete"}],"args":["y"],
                         "m":{"$patch":"replace","z":"1"}}})"),
      "Pod");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, J(R"({"metadata":{"finalizers":["b","c"],"ownerReferences":[{"uid":"2"}]},
                        "spec":{"containers":[{"name":"a"}],"args":["y"],"m":{"z":"1"}}})"));
  auto retained = ApplyStrategicMergePatch(
      J(R"({"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}})"),
      J(R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})"), "Deployment");
  ASSERT_TRUE(retained.ok());
  EXPECT_EQ(*retained, J(R"({"spec":{"strategy":{"type":"Recreate"}}})"));
  auto replaced = ApplyStrategicMergePatch(
      J(R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]}})"),
      J(R"({"spec":{"containers":[{"$patch":"replace"},{"name":"c"}]}})"), "Pod");
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(*replaced, J(R"({"spec":{"containers":[{"name":"c"}]}})"));
}

TEST(StrategicMerge, RejectsElementsWithoutMergeKey) {
  auto out = ApplyStrategicMergePatch(J(R"({"spec":{"containers":[{"name":"a"}]}})"),
                                      J(R"({"spec":{"containers":[{"image":"x"}]}})"), "Pod");
  EXPECT_EQ(out.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(ApplyStrategicMergePatch(J("{}"), J("[1]"), "Pod").ok());
}

TEST(JsonPatch, WorkIsBoundedAsUpstreamBoundsIt) {
  json::array many;
  for (size_t i = 0; i <= kMaxJsonPatchOperations; ++i)
    many.push_back(J(R"({"op":"test","path":"/a","value":1})"));
  auto out = ApplyJsonPatch(J(R"({"a":1})"), many);
  EXPECT_EQ(out.status().message(),
            "The allowed maximum operations in a JSON patch is 10000, got 10001");
  // Copies of a 1 MiB value: the fourth passes the 3 MiB limit.
  json::array doubling;
  for (int i = 0; i < 12; ++i) {
    doubling.push_back(
        json::object{{"op", "copy"}, {"from", "/a"}, {"path", "/a" + std::to_string(i)}});
  }
  json::value doc = json::object{{"a", std::string(1 << 20, 'x')}};
  out = ApplyJsonPatch(doc, doubling);
  EXPECT_EQ(out.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(out.status().message(),
            "Unable to apply JSON patch: copy operations would duplicate more than the limit of "
            "3145728 bytes");
  // Within the limit, copies are made.
  out = ApplyJsonPatch(J(R"({"a":[1]})"), J(R"([{"op":"copy","from":"/a","path":"/b"}])"));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, J(R"({"a":[1],"b":[1]})"));
}

TEST(StrategicMerge, LongListsMergeByIndexNotBySearch) {
  // 100,000 elements on each side: a search of the list per element would take
  // ten billion comparisons; the index makes it linear.
  constexpr int kN = 100000;
  json::array containers, patch_containers, finalizers, patch_finalizers;
  for (int i = 0; i < kN; ++i) {
    containers.push_back(json::object{{"name", "c" + std::to_string(i)}, {"image", "a"}});
    patch_containers.push_back(
        json::object{{"name", "c" + std::to_string(i + kN / 2)}, {"image", "b"}});
    finalizers.emplace_back("f" + std::to_string(i));
    patch_finalizers.emplace_back("f" + std::to_string(i + kN / 2));
  }
  json::value doc = json::object{{"metadata", json::object{{"finalizers", finalizers}}},
                                 {"spec", json::object{{"containers", containers}}}};
  json::value patch = json::object{{"metadata", json::object{{"finalizers", patch_finalizers}}},
                                   {"spec", json::object{{"containers", patch_containers}}}};
  auto out = ApplyStrategicMergePatch(doc, patch, "Pod");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const auto& merged = out->at("spec").at("containers").as_array();
  ASSERT_EQ(merged.size(), size_t{kN + kN / 2});
  EXPECT_EQ(merged[0], J(R"({"name":"c0","image":"a"})"));
  EXPECT_EQ(merged[kN / 2], J(R"({"name":"c50000","image":"b"})"));
  EXPECT_EQ(merged[kN], J(R"({"name":"c100000","image":"b"})"));
  EXPECT_EQ(out->at("metadata").at("finalizers").as_array().size(), size_t{kN + kN / 2});
}

}  // namespace
}  // namespace kiso::api
