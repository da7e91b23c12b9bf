#include "api/structural.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/conversion.h"
#include "api/custom_resource.h"
#include "api/object.h"

namespace kiso::api {
namespace {

namespace json = boost::json;

json::value J(std::string_view text) { return *ParseJson(text); }

// The schema of the upstream documentation's CronTab, with a few more keywords.
const char* kSchema = R"({
  "type": "object",
  "properties": {
    "spec": {
      "type": "object",
      "required": ["cronSpec"],
      "properties": {
        "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
        "image": {"type": "string", "maxLength": 20},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
        "mode": {"type": "string", "enum": ["a", "b"]},
        "port": {"x-kubernetes-int-or-string": true},
        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                     "properties": {"spec": {"type": "object"}}}
      }
    },
    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
  }
})";

std::vector<std::string> Messages(const std::vector<Cause>& causes) {
  std::vector<std::string> out;
  out.reserve(causes.size());
  for (const auto& c : causes) out.push_back(c.field + ": " + c.message);
  return out;
}

TEST(Structural, PrunesWhatTheSchemaDoesNotDeclareAndKeepsWhatItPreserves) {
  auto schema = J(kSchema);
  auto obj = J(R"({"apiVersion":"x/v1","kind":"CronTab","metadata":{"name":"a"},
    "spec":{"cronSpec":"* * * * */5","extra":1,"labels":{"k":"v"},"free":{"any":{"thing":1}},
            "template":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"x":1},"junk":2}},
    "other":true})");
  auto pruned = Prune(schema, obj);
  // An object typed without properties keeps nothing (template.spec.x), as upstream prunes.
  EXPECT_EQ(pruned, (std::vector<std::string>{"spec.extra", "spec.template.spec.x",
                                              "spec.template.junk", "other"}));
  EXPECT_EQ(obj, J(R"({"apiVersion":"x/v1","kind":"CronTab","metadata":{"name":"a"},
    "spec":{"cronSpec":"* * * * */5","labels":{"k":"v"},"free":{"any":{"thing":1}},
            "template":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{}}}})"));
}

TEST(Structural, AppliesDefaultsToAbsentFields) {
  auto schema = J(kSchema);
  auto obj = J(R"({"spec":{"cronSpec":"x"}})");
  ApplySchemaDefaults(schema, obj);
  EXPECT_EQ(obj, J(R"({"spec":{"cronSpec":"x","replicas":1}})"));
  auto set = J(R"({"spec":{"replicas":5}})");
  ApplySchemaDefaults(schema, set);
  EXPECT_EQ(set, J(R"({"spec":{"replicas":5}})"));
}

// NOLINTBEGIN(bugprone-suspicious-missing-comma): long messages split over lines.
TEST(Structural, ValidatesWithUpstreamsMessages) {
  auto schema = J(kSchema);
  EXPECT_TRUE(ValidateSchema(schema, J(R"({"spec":{"cronSpec":"* * * * */5","replicas":3,
      "port":"http","tags":["a","b"],"mode":"a"}})"))
                  .empty());
  EXPECT_EQ(Messages(ValidateSchema(schema, J(R"({"spec":{"replicas":"three"}})"))),
            (std::vector<std::string>{
                "spec.cronSpec: Required value",
                "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type "
                "integer: \"string\""}));
  EXPECT_EQ(Messages(ValidateSchema(schema, J(R"({"spec":{"cronSpec":"bad","replicas":20,
      "image":"a-very-long-image-name:latest","mode":"c","port":1.5,"tags":["a","a"]}})"))),
            (std::vector<std::string>{
                "spec.cronSpec: Invalid value: \"bad\": spec.cronSpec in body should match "
                "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'",
                "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or "
                "equal to 10",
                "spec.image: Too long: may not be more than 20 bytes",
                "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"",
                "spec.port: Invalid value: \"number\": spec.port in body must be of type "
                "integer,string: \"number\"",
                "spec.tags[1]: Duplicate value: \"a\""}));
  EXPECT_EQ(Messages(ValidateSchema(schema, J(R"({"spec":{"cronSpec":"* * * * *",
      "template":{"metadata":{}}}})"))),
            (std::vector<std::string>{"spec.template.apiVersion: Required value",
                                      "spec.template.kind: Required value"}));
}

// NOLINTEND(bugprone-suspicious-missing-comma)

TEST(Structural, NumbersPastInt64AreComparedNotConverted) {
  // A schema or value may hold any JSON number; one past int64's range is
  // neither truncated nor undefined behaviour (found by fuzz_structural).
  auto schema = J(R"({"type":"object","properties":{
      "n":{"type":"integer","maximum":1e19},
      "s":{"type":"string","maxLength":1e52,"minLength":-1e60}}})");
  EXPECT_TRUE(ValidateSchema(schema, J(R"({"n":1e18,"s":"x"})")).empty());
  EXPECT_EQ(Messages(ValidateSchema(schema, J(R"({"n":1e52})"))),
            (std::vector<std::string>{
                "n: Invalid value: 1e+52: n in body should be less than or equal to 1e+19"}));
}

TEST(Structural, ValidationWorkIsBounded) {
  // Work is the value's size times its schema's: 2,000 items, each tried
  // against 1,000 alternatives that all fail, would take 2,000,000 steps.
  json::array branches;
  for (int i = 0; i < 1000; ++i)
    branches.push_back(json::object{{"type", "string"}, {"maxLength", 0}});
  json::object items{{"anyOf", std::move(branches)}};
  json::value schema = json::object{
      {"type", "object"},
      {"properties", json::object{{"a", json::object{{"type", "array"}, {"items", items}}}}}};
  json::array values;
  for (int i = 0; i < 2000; ++i) values.emplace_back("x");
  auto causes = ValidateSchema(schema, json::object{{"a", std::move(values)}});
  ASSERT_FALSE(causes.empty());
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes.front().message, "Forbidden: validation needs more than 1000000 steps");
}

// NOLINTBEGIN(bugprone-suspicious-missing-comma)
TEST(Structural, RefusesSchemasThatAreNotStructural) {
  auto causes = CheckStructural(J(R"({"type":"object","properties":{
      "a":{"properties":{}},
      "b":{"type":"array"},
      "c":{"type":"object","properties":{},"additionalProperties":{"type":"string"}},
      "d":{"type":"string","pattern":"("},
      "e":{"type":"strin"},
      "f":{"$ref":"#/x","type":"string"},
      "g":{"type":"integer","default":"x"},
      "h":{"type":"string","x-kubernetes-validations":[{"rule":"self.size() > 1"}]}}})"),
                                "s");
  EXPECT_EQ(Messages(causes),
            (std::vector<std::string>{
                "s.properties[a].type: Required value: must not be empty for specified object "
                "fields",
                "s.properties[b].items: Required value: must be specified",
                "s.properties[c].additionalProperties: Forbidden: additionalProperties and "
                "properties are mutual exclusive",
                "s.properties[d].pattern: Invalid value: \"(\": must be a valid regular "
                "expression, but isn't: missing ): (",
                "s.properties[e].type: Unsupported value: \"strin\": supported values: \"array\", "
                "\"boolean\", \"integer\", \"number\", \"object\", \"string\"",
                "s.properties[f].$ref: Forbidden: not supported in a structural schema",
                "s.properties[g].default: Invalid value: \"string\": default in body must be of "
                "type integer: \"string\"",
                "s.properties[h].x-kubernetes-validations: Forbidden: CEL validation rules are not "
                "supported by kiso yet"}));
  EXPECT_TRUE(CheckStructural(J(kSchema), "s").empty());
  // Nested past the limit.
  json::value deep = json::object{{"type", "string"}};
  for (int i = 0; i < kMaxSchemaDepth + 5; ++i) {
    deep = json::object{{"type", "object"}, {"properties", json::object{{"a", deep}}}};
  }
  EXPECT_FALSE(CheckStructural(deep, "s").empty());
}

// NOLINTEND(bugprone-suspicious-missing-comma)

json::value Crd() {
  return J(std::string(R"({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
    "metadata":{"name":"crontabs.stable.example.com","uid":"u1"},
    "spec":{"group":"stable.example.com","scope":"Namespaced",
      "names":{"plural":"crontabs","singular":"crontab","kind":"CronTab","shortNames":["ct"]},
      "versions":[
        {"name":"v1beta1","served":true,"storage":false,"schema":{"openAPIV3Schema":{"type":"object"}}},
        {"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":)") +
           kSchema + R"(},
         "subresources":{"status":{},"scale":{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas"}},
         "additionalPrinterColumns":[{"name":"Spec","type":"string","jsonPath":".spec.cronSpec"}]},
        {"name":"v2","served":false,"storage":false,"schema":{"openAPIV3Schema":{"type":"object"}}}]}})");
}

TEST(CustomResource, ADefinitionServesAKindPerServedVersion) {
  auto crd = Crd();
  DefaultCrd(crd.get_object());
  EXPECT_EQ(GetString(crd, {"spec", "names", "listKind"}), "CronTabList");
  EXPECT_TRUE(ValidateCrd(crd.get_object()).empty());
  auto types = CustomResourceTypes(crd);
  ASSERT_EQ(types.size(), 2u);
  EXPECT_EQ(types[1].GroupVersion(), "stable.example.com/v1");
  EXPECT_EQ(types[1].kind, "CronTab");
  EXPECT_TRUE(types[1].namespaced);
  EXPECT_TRUE(types[1].has_status);
  EXPECT_EQ(types[1].short_names, std::vector<std::string>{"ct"});
  ASSERT_NE(types[1].FindSubresource("scale"), nullptr);
  EXPECT_EQ(types[1].custom->storage_version, "v1");
  ASSERT_EQ(types[1].custom->columns.size(), 1u);
  EXPECT_EQ(types[1].custom->columns[0].json_path, ".spec.cronSpec");
  EXPECT_EQ(types[0].custom->columns[0].name, "Age");  // The default column.
  EXPECT_EQ(types[1].StorePrefix(), "/registry/stable.example.com/crontabs/");
}

TEST(CustomResource, ValidationNamesEachBadField) {
  auto crd = Crd();
  auto& spec = crd.get_object()["spec"].get_object();
  spec["group"] = "example";
  spec["scope"] = "Global";
  spec["versions"].get_array()[0].get_object()["storage"] = true;
  auto messages = Messages(ValidateCrd(crd.get_object()));
  EXPECT_EQ(messages,
            (std::vector<std::string>{
                "metadata.name: Invalid value: \"crontabs.stable.example.com\": must be "
                "spec.names.plural+\".\"+spec.group",
                "spec.group: Invalid value: \"example\": should be a domain with at least one dot",
                "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", "
                "\"Namespaced\"",
                "spec.versions: Invalid value: 2 storage versions: must have exactly one version "
                "marked as storage version"}));
  EXPECT_TRUE(CustomResourceTypes(crd).empty());
}

TEST(CustomResource, PublishedTypesAreFoundAndKeepTheirAddress) {
  auto types = CustomResourceTypes(Crd());
  PublishCustomResources(types);
  const ResourceType* t = FindResource("stable.example.com", "v1", "crontabs");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(FindKind("stable.example.com/v1beta1", "CronTab")->version, "v1beta1");
  PublishCustomResources(types);  // The same definition: the same type.
  EXPECT_EQ(FindResource("stable.example.com", "v1", "crontabs"), t);
  bool listed = false;
  for (const auto* r : AllResources()) listed |= r == t;
  EXPECT_TRUE(listed);
  std::vector<std::string> versions;
  for (const auto& gv : ServedGroupVersions()) {
    if (gv.group == "stable.example.com") versions.push_back(gv.version);
  }
  EXPECT_EQ(versions, (std::vector<std::string>{"v1", "v1beta1"}));
  PublishCustomResources({});
  EXPECT_EQ(FindResource("stable.example.com", "v1", "crontabs"), nullptr);
  EXPECT_EQ(t->kind, "CronTab");  // Still there for whoever held it.
}

TEST(CustomResource, OtherVersionsAreStoredAtTheStorageVersionWithNoneConversion) {
  auto types = CustomResourceTypes(Crd());
  PublishCustomResources(types);
  const ResourceType* beta = FindResource("stable.example.com", "v1beta1", "crontabs");
  const ResourceType* v1 = FindResource("stable.example.com", "v1", "crontabs");
  ASSERT_NE(beta, nullptr);
  ASSERT_NE(v1, nullptr);
  EXPECT_EQ(&beta->Storage(), v1);
  EXPECT_EQ(&v1->Storage(), v1);
  // Written at v1beta1: only apiVersion changes on the way to storage.
  auto obj = J(R"({"apiVersion":"stable.example.com/v1beta1","kind":"CronTab",
    "metadata":{"name":"a"},"spec":{"cronSpec":"* * * * *"}})")
                 .as_object();
  ASSERT_FALSE(ConvertToStorage(*beta, obj));
  EXPECT_EQ(GetString(obj, {"apiVersion"}), "stable.example.com/v1");
  EXPECT_EQ(GetString(obj, {"spec", "cronSpec"}), "* * * * *");
  // Read back at v1beta1, from the storage version or from an older one: its
  // schema names no field, so spec is pruned (metadata stays).
  for (std::string_view stored : {"stable.example.com/v1", "stable.example.com/v0"}) {
    json::object copy = obj;
    copy["apiVersion"] = stored;
    ConvertFromStorage(*beta, copy);
    EXPECT_EQ(GetString(copy, {"apiVersion"}), "stable.example.com/v1beta1");
    EXPECT_EQ(copy.if_contains("spec"), nullptr);
    EXPECT_EQ(GetString(copy, {"metadata", "name"}), "a");
  }
  // Another group's object is left alone.
  obj["apiVersion"] = "other.example.com/v1";
  ConvertFromStorage(*beta, obj);
  EXPECT_EQ(GetString(obj, {"apiVersion"}), "other.example.com/v1");
  PublishCustomResources({});
}

TEST(CustomResource, VersionPriorityAndJsonPaths) {
  std::vector<std::string> v = {"v1alpha1", "foo", "v2beta1", "v1", "v1beta2", "v2", "v10", "bar"};
  std::sort(v.begin(), v.end(),
            [](const auto& a, const auto& b) { return VersionPreferred(a, b); });
  EXPECT_EQ(v, (std::vector<std::string>{"v10", "v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "bar",
                                         "foo"}));
  auto obj = J(R"({"spec":{"items":[{"name":"a"},{"name":"b"}],"n":3}})");
  EXPECT_EQ(*AtJsonPath(obj, ".spec.n"), json::value(3));
  EXPECT_EQ(*AtJsonPath(obj, ".spec.items[1].name"), json::value("b"));
  EXPECT_EQ(AtJsonPath(obj, ".spec.items[2].name"), nullptr);
  EXPECT_EQ(AtJsonPath(obj, "spec"), nullptr);
}

}  // namespace
}  // namespace kiso::api
