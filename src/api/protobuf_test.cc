#include "api/protobuf.h"

#include <fmt/format.h>
#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <boost/json.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "api/openapi_proto.h"
#include "api/schema_model.h"

namespace kiso::api {
namespace {

namespace json = boost::json;
namespace pb = google::protobuf;
using schema::TypeRef;

TEST(Protobuf, EveryDeclaredTypeHasItsMessage) {
  EXPECT_TRUE(ProtobufSchemaErrors().empty()) << ProtobufSchemaErrors().front();
}

// ---- The declarations against the real kubectl's ----

// The real kubectl 1.32 (the dispatcher at /usr/bin/kubectl runs it).
std::string KubectlBinary() {
  std::error_code ec;
  auto dispatcher = std::filesystem::canonical("/usr/bin/kubectl", ec);
  if (ec) return "";
  return (dispatcher.parent_path() / "kubectl.1.32").string();
}

// Go programs built with gogo-protobuf carry each generated.proto as a
// gzipped FileDescriptorProto: every gzip stream in the binary that
// inflates to one is taken.
std::vector<pb::FileDescriptorProto> DescriptorsIn(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<pb::FileDescriptorProto> out;
  const std::string magic("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8);
  for (size_t at = data.find(magic); at != std::string::npos; at = data.find(magic, at + 1)) {
    z_stream z{};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) continue;
    std::string raw(1 << 20, '\0');
    z.next_in = reinterpret_cast<Bytef*>(data.data() + at);
    z.avail_in = static_cast<uInt>(std::min<size_t>(data.size() - at, 4 << 20));
    int rc = Z_OK;
    while (rc == Z_OK) {
      if (z.total_out == raw.size()) raw.resize(raw.size() * 2);
      z.next_out = reinterpret_cast<Bytef*>(raw.data() + z.total_out);
      z.avail_out = static_cast<uInt>(raw.size() - z.total_out);
      rc = inflate(&z, Z_NO_FLUSH);
    }
    raw.resize(z.total_out);
    inflateEnd(&z);
    pb::FileDescriptorProto file;
    if (rc == Z_STREAM_END && file.ParseFromString(raw) && file.name().ends_with(".proto"))
      out.push_back(std::move(file));
  }
  return out;
}

// Where kiso's type names are looked up, in order (the versions kiso serves).
const std::vector<std::string> kPackages = {"k8s.io.apimachinery.pkg.apis.meta.v1",
                                            "k8s.io.api.core.v1",
                                            "k8s.io.api.apps.v1",
                                            "k8s.io.api.batch.v1",
                                            "k8s.io.api.rbac.v1",
                                            "k8s.io.api.coordination.v1",
                                            "k8s.io.api.networking.v1",
                                            "k8s.io.api.policy.v1",
                                            "k8s.io.api.scheduling.v1",
                                            "k8s.io.api.autoscaling.v2",
                                            "k8s.io.api.autoscaling.v1",
                                            "k8s.io.api.authentication.v1",
                                            "k8s.io.api.authorization.v1",
                                            "k8s.io.api.certificates.v1",
                                            "k8s.io.api.admissionregistration.v1",
                                            "k8s.io.api.node.v1",
                                            "k8s.io.api.storage.v1",
                                            "k8s.io.api.discovery.v1",
                                            "k8s.io.metrics.pkg.apis.metrics.v1beta1"};

bool Compatible(const TypeRef& t, const pb::FieldDescriptorProto& f,
                const std::map<std::string, const pb::DescriptorProto*>& messages) {
  using FD = pb::FieldDescriptorProto;
  using K = TypeRef::Kind;
  const TypeRef* e = &t;
  if (t.kind == K::kList) {
    if (f.label() != FD::LABEL_REPEATED) return false;
    e = t.element.get();
  }
  std::string short_name = f.type_name().substr(f.type_name().rfind('.') + 1);
  if (t.kind == K::kMap) {
    auto it = messages.find(f.type_name().substr(1));
    return f.label() == FD::LABEL_REPEATED && it != messages.end() &&
           it->second->options().map_entry();
  }
  switch (e->kind) {
    case K::kString:
    case K::kEnum:
      return f.type() == FD::TYPE_STRING;
    case K::kInt32:
      return f.type() == FD::TYPE_INT32;
    case K::kInt64:
      return f.type() == FD::TYPE_INT64;
    case K::kBool:
      return f.type() == FD::TYPE_BOOL;
    case K::kFloat:
      return f.type() == FD::TYPE_DOUBLE;
    case K::kBytes:
      return f.type() == FD::TYPE_BYTES;
    case K::kQuantity:
      return short_name == "Quantity";
    case K::kIntOrString:
      return short_name == "IntOrString";
    case K::kTime:
      return short_name == "Time";
    case K::kMicroTime:
      return short_name == "MicroTime";
    case K::kDuration:
      return short_name == "Duration";
    case K::kRawJson:
      return short_name == "RawExtension" || short_name == "FieldsV1" || short_name == "JSON";
    case K::kStruct:
      return f.type() == FD::TYPE_MESSAGE;
    default:
      return false;
  }
}

TEST(Protobuf, FieldNumbersAndPointersAreTheRealKubectls) {
  std::string kubectl = KubectlBinary();
  ASSERT_TRUE(std::filesystem::exists(kubectl)) << "the real kubectl 1.32 is needed: " << kubectl;
  auto files = DescriptorsIn(kubectl);
  ASSERT_GT(files.size(), 50u) << "no gogo-protobuf descriptors found in " << kubectl;
  std::map<std::string, const pb::DescriptorProto*> messages;
  std::function<void(const std::string&, const pb::DescriptorProto&)> add =
      [&](const std::string& prefix, const pb::DescriptorProto& m) {
        messages[prefix + m.name()] = &m;
        for (const auto& n : m.nested_type()) add(prefix + m.name() + ".", n);
      };
  for (const auto& f : files) {
    for (const auto& m : f.message_type()) add(f.package() + ".", m);
  }
  std::vector<std::string> problems;
  int checked = 0;
  for (const auto& entry : schema::AllTypes()) {
    const std::string& name = entry.first;
    const schema::Type& type = entry.second;  // Not a structured binding: lambdas capture it.
    const pb::DescriptorProto* upstream = nullptr;
    // Name@group.version is that version's own message (k8s.io.api.group.version.Name).
    size_t at = name.find('@');
    std::vector<std::string> packages = kPackages;
    if (at != std::string::npos) packages = {"k8s.io.api." + name.substr(at + 1)};
    for (const auto& p : packages) {
      std::string full = p;
      full.append(".").append(type.GoName());
      if (auto it = messages.find(full); it != messages.end()) {
        upstream = it->second;
        break;
      }
    }
    // (A kind's metadata = 1 is implicit: kinds kubectl does not know, such
    // as kube-aggregator's APIService, have no other numbers.)
    bool numbered = std::any_of(type.fields.begin(), type.fields.end(), [&](const auto& f) {
      return f.number != 0 && !(type.top_level && f.name == "metadata");
    });
    if (upstream == nullptr) {
      if (numbered) problems.push_back(name + ": numbered, but kubectl has no such message");
      continue;
    }
    std::set<int> declared;
    for (const auto& f : type.fields) {
      if (f.number == 0) continue;
      declared.insert(f.number);
      const pb::FieldDescriptorProto* theirs = nullptr;
      for (const auto& u : upstream->field()) {
        if (u.number() == f.number) theirs = &u;
      }
      if (theirs == nullptr) {
        problems.push_back(
            fmt::format("{}.{} = {}: kubectl has no field {}", name, f.name, f.number, f.number));
        continue;
      }
      ++checked;
      // Upstream names a protobuf field as its Go tag's `name=` says, which is
      // the JSON name except here (`protobuf:"bytes,2,rep,name=Webhooks"` on a
      // field that is "webhooks" in JSON).
      static const std::set<std::string> kGoNamedInProtobuf = {
          "ValidatingWebhookConfiguration.webhooks", "MutatingWebhookConfiguration.webhooks"};
      std::string go_name = f.name;
      if (!go_name.empty()) go_name[0] = static_cast<char>(std::toupper(go_name[0]));
      bool go_named = kGoNamedInProtobuf.contains(name + "." + f.name) && theirs->name() == go_name;
      if (!f.inlined && theirs->name() != f.name && !go_named) {
        problems.push_back(fmt::format("{}.{} = {}: kubectl's field {} is {}", name, f.name,
                                       f.number, f.number, theirs->name()));
      }
      if (!Compatible(f.type, *theirs, messages)) {
        problems.push_back(fmt::format("{}.{}: type {} against kubectl's {} {}", name, f.name,
                                       f.type.GoName(), static_cast<int>(theirs->type()),
                                       theirs->type_name()));
      }
      // gogoproto.nullable (65001) = false marks a Go value; without it a scalar is a pointer.
      bool scalar = theirs->type() != pb::FieldDescriptorProto::TYPE_MESSAGE &&
                    theirs->label() != pb::FieldDescriptorProto::LABEL_REPEATED;
      bool nullable = true;
      const auto& options = theirs->options();
      const auto& unknown = options.GetReflection()->GetUnknownFields(options);
      for (int i = 0; i < unknown.field_count(); ++i) {
        if (unknown.field(i).number() == 65001 &&
            unknown.field(i).type() == pb::UnknownField::TYPE_VARINT &&
            unknown.field(i).varint() == 0)
          nullable = false;
      }
      if (scalar && nullable != f.pointer) {
        problems.push_back(fmt::format("{}.{}: {} in Go, {} here", name, f.name,
                                       nullable ? "a pointer" : "a value",
                                       f.pointer ? "a pointer" : "a value"));
      }
    }
    // Every field kubectl can send is declared: nothing would be refused as unknown.
    for (const auto& u : upstream->field()) {
      if (!declared.contains(u.number()) && !(type.top_level && u.name() == "metadata")) {
        problems.push_back(
            fmt::format("{}: kubectl's {} = {} is not declared", name, u.name(), u.number()));
      }
    }
  }
  EXPECT_GT(checked, 500);
  for (const auto& p : problems) ADD_FAILURE() << p;
}

// ---- Decoding and encoding ----

json::value RoundTrip(const json::value& v) {
  auto body = EncodeProtobuf(v);
  EXPECT_TRUE(body.ok()) << body.error().message;
  if (!body.ok()) return nullptr;
  EXPECT_TRUE(std::string_view(*body).starts_with(std::string_view("k8s\0", 4)));
  auto back = DecodeProtobuf(*body);
  EXPECT_TRUE(back.ok()) << back.error().message;
  return back.ok() ? *back : json::value();
}

TEST(Protobuf, ObjectsRoundTrip) {
  auto deployment = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"web","namespace":"default","labels":{"app":"web","b":""},
      "creationTimestamp":"2026-01-02T03:04:05Z","generation":3},
    "spec":{"replicas":0,"selector":{"matchLabels":{"app":"web"}},
      "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%","maxUnavailable":1}},
      "template":{"metadata":{"labels":{"app":"web"}},"spec":{
        "containers":[{"name":"c","image":"nginx","args":["a","b"],
          "ports":[{"containerPort":80,"protocol":"TCP"}],
          "env":[{"name":"K","valueFrom":{"configMapKeyRef":{"name":"cm","key":"k"}}}],
          "resources":{"limits":{"cpu":"500m","memory":"1Gi"}},
          "livenessProbe":{"httpGet":{"path":"/","port":"http"},"periodSeconds":5},
          "securityContext":{"privileged":false,"runAsUser":0}}],
        "volumes":[{"name":"v","configMap":{"name":"cm","defaultMode":420}},
                   {"name":"w","emptyDir":{}}],
        "terminationGracePeriodSeconds":30}}},
    "status":{"conditions":[{"type":"Available","status":"True",
      "lastUpdateTime":"2026-01-02T03:04:05Z"}]}})");
  EXPECT_EQ(RoundTrip(deployment), deployment);

  auto secret = json::parse(R"({"apiVersion":"v1","kind":"Secret",
    "metadata":{"name":"s"},"data":{"k":"aGVsbG8=","e":""},"type":"Opaque"})");
  EXPECT_EQ(RoundTrip(secret), secret);

  auto lease = json::parse(R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
    "metadata":{"name":"n"},"spec":{"renewTime":"2026-01-02T03:04:05.123456Z",
    "leaseDurationSeconds":40}})");
  EXPECT_EQ(RoundTrip(lease), lease);

  auto list = json::parse(R"({"apiVersion":"v1","kind":"ConfigMapList",
    "metadata":{"resourceVersion":"7","continue":"x"},
    "items":[{"metadata":{"name":"a"},"data":{"k":"v"}},{"metadata":{"name":"b"}}]})");
  EXPECT_EQ(RoundTrip(list), list);
}

TEST(Protobuf, ValueScalarsAtZeroAreLeftOutAndPointersKept) {
  // Go writes every value field, zero or not: a port's hostPort 0 is on the
  // wire, and JSON would leave it out; a pointer's 0 (replicas) stays.
  auto in = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
    "spec":{"replicas":0,"template":{"spec":{"containers":[{"name":"c","stdin":false,
    "ports":[{"containerPort":80,"hostPort":0}]}]}}}})");
  auto out = RoundTrip(in);
  const auto& c = out.at("spec").at("template").at("spec").at("containers").at(0);
  EXPECT_FALSE(c.as_object().contains("stdin"));
  EXPECT_FALSE(c.at("ports").at(0).as_object().contains("hostPort"));
  EXPECT_EQ(out.at("spec").at("replicas"), 0);
}

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  return out + static_cast<char>(v);
}
std::string Bytes(int number, const std::string& payload) {
  return Varint(static_cast<uint64_t>(number) << 3 | 2) + Varint(payload.size()) + payload;
}
// "k8s\0" + Unknown{typeMeta{apiVersion, kind}, raw}.
std::string Body(const std::string& api_version, const std::string& kind, const std::string& raw) {
  std::string type_meta = Bytes(1, api_version) + Bytes(2, kind);
  return std::string("k8s\0", 4) + Bytes(1, type_meta) + Bytes(2, raw);
}

TEST(Protobuf, WhatCannotBeDecodedIsRefusedByName) {
  // A namespace as `kubectl create namespace dev` sends it.
  auto ok = DecodeProtobuf(
      Body("v1", "Namespace", Bytes(1, Bytes(1, "dev")) + Bytes(2, "") + Bytes(3, "")));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok, json::parse(R"({"apiVersion":"v1","kind":"Namespace",
      "metadata":{"name":"dev"},"spec":{},"status":{}})"));

  auto unknown =
      DecodeProtobuf(Body("v1", "Namespace", Bytes(1, Bytes(1, "dev") + Bytes(99, "x"))));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, 400);
  EXPECT_NE(unknown.error().message.find("metadata: field number 99 of ObjectMeta is not a field"),
            std::string::npos)
      << unknown.error().message;

  auto no_magic = DecodeProtobuf("\x0a\x00");
  ASSERT_FALSE(no_magic.ok());
  EXPECT_EQ(no_magic.error().code, 400);

  auto kind = DecodeProtobuf(Body("v1", "Nonsense", ""));
  ASSERT_FALSE(kind.ok());
  EXPECT_EQ(kind.error().message, "no kind \"Nonsense\" is registered for version \"v1\"");

  // Truncated: a length running past the end.
  auto truncated = DecodeProtobuf(Body("v1", "Namespace", Varint(1 << 3 | 2) + Varint(50) + "ab"));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().code, 400);

  // A wire type the field does not have (a varint for metadata).
  auto wire = DecodeProtobuf(Body("v1", "Namespace", Varint(1 << 3 | 0) + Varint(5)));
  ASSERT_FALSE(wire.ok());
  EXPECT_EQ(wire.error().code, 400);

  // Strings that are not UTF-8 (protobuf carries any bytes; JSON may not), in
  // the object and in its kind (found by fuzz_protobuf: a message quoting it aborted).
  auto bytes = DecodeProtobuf(Body("v1", "Namespace", Bytes(1, Bytes(1, "d\xffv"))));
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().message, "the protobuf body holds a string that is not UTF-8");
  auto kind_bytes = DecodeProtobuf(Body("v1", "Deploymen\xf4", ""));
  ASSERT_FALSE(kind_bytes.ok());
  EXPECT_EQ(kind_bytes.error().code, 400);
}

TEST(Protobuf, DecodingIsBoundedInMemory) {
  // 1.5 million empty containers in 3 MiB: each would be a message of 30
  // fields decoded. Refused before any is.
  std::string containers;
  for (int i = 0; i < 1'500'000; ++i) containers += Bytes(2, "");
  std::string pod = Bytes(2, containers);  // PodSpec.containers, in Pod.spec.
  auto r = DecodeProtobuf(Body("v1", "Pod", pod));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, 413);

  // A deep chain of bytes under a field number the type does not have is
  // skipped by the scan, not recursed into, and refused as unknown.
  std::string deep = Bytes(1, "");
  for (int i = 0; i < 200; ++i) deep = Bytes(99, deep);
  auto d = DecodeProtobuf(Body("v1", "ConfigMap", deep));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, 400);
}

TEST(Protobuf, WatchEventsAreLengthDelimited) {
  auto event = EncodeProtobufWatchEvent(
      "ADDED", json::parse(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}})"));
  ASSERT_TRUE(event.ok());
  ASSERT_GT(event->size(), 4u);
  uint32_t length = (static_cast<uint8_t>((*event)[0]) << 24) |
                    (static_cast<uint8_t>((*event)[1]) << 16) |
                    (static_cast<uint8_t>((*event)[2]) << 8) | static_cast<uint8_t>((*event)[3]);
  EXPECT_EQ(length, event->size() - 4);
  EXPECT_NE(event->find(std::string("k8s\0", 4)), std::string::npos);
}

// gnostic's openapiv2/OpenAPIv2.proto as the real kubectl carries it: a
// plain (not gzipped) FileDescriptorProto, its fields read up to the first
// byte that cannot continue it.
std::optional<pb::FileDescriptorProto> OpenApiV2DescriptorIn(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string name = "openapiv2/OpenAPIv2.proto";
  size_t at = data.find(std::string("\x0a\x19") + name);
  if (at == std::string::npos) return std::nullopt;
  pb::io::CodedInputStream stream(reinterpret_cast<const uint8_t*>(data.data() + at),
                                  static_cast<int>(std::min<size_t>(data.size() - at, 1 << 20)));
  int end = 0;
  for (;;) {
    uint32_t tag = stream.ReadTag();
    int field = static_cast<int>(tag >> 3);
    uint32_t length = 0;
    // FileDescriptorProto's length-delimited fields: name, package, dependency,
    // message_type, enum_type, options, syntax.
    if ((tag & 7) != 2 || !std::set<int>{1, 2, 3, 4, 5, 8, 12}.contains(field) ||
        !stream.ReadVarint32(&length) || !stream.Skip(static_cast<int>(length)))
      break;
    end = stream.CurrentPosition();
  }
  pb::FileDescriptorProto file;
  if (!file.ParseFromArray(data.data() + at, end)) return std::nullopt;
  return file;
}

TEST(OpenApiV2, TheDocumentIsWhatKubectlsOwnDescriptorReads) {
  std::string kubectl = KubectlBinary();
  ASSERT_TRUE(std::filesystem::exists(kubectl)) << kubectl;
  auto file = OpenApiV2DescriptorIn(kubectl);
  ASSERT_TRUE(file) << "no openapiv2/OpenAPIv2.proto in " << kubectl;
  pb::DescriptorPool pool;
  pb::FileDescriptorProto any;
  pb::Any::descriptor()->file()->CopyTo(&any);
  ASSERT_NE(pool.BuildFile(any), nullptr);
  ASSERT_NE(pool.BuildFile(*file), nullptr);
  const pb::Descriptor* d = pool.FindMessageTypeByName("openapi.v2.Document");
  ASSERT_NE(d, nullptr);

  auto doc =
      json::parse(R"({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
    "paths": {"/api/v1/namespaces/{namespace}/pods/{name}": {"get": {"operationId": "readPod",
      "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.kiso.Pod"}}},
      "x-kubernetes-action": "get"}}},
    "definitions": {"io.k8s.kiso.Pod": {"type": "object", "required": ["spec"],
      "properties": {"spec": {"$ref": "#/definitions/io.k8s.kiso.PodSpec"},
                     "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                     "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                     "size": {"type": "integer", "format": "int64", "minimum": 1, "maxLength": 5}},
      "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]}}})")
          .as_object();
  auto bytes = EncodeOpenApiV2(doc);
  ASSERT_TRUE(bytes.ok());
  pb::DynamicMessageFactory factory(&pool);
  std::unique_ptr<pb::Message> message(factory.GetPrototype(d)->New());
  ASSERT_TRUE(message->ParseFromString(*bytes));
  EXPECT_EQ(message->GetReflection()->GetUnknownFields(*message).field_count(), 0);
  std::string text;
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  ASSERT_TRUE(pb::util::MessageToJsonString(*message, &text, options).ok());
  auto read = json::parse(text);
  EXPECT_EQ(read.at("swagger"), "2.0");
  EXPECT_EQ(read.at("info").at("version"), "v1.32.0");
  const auto& path = read.at("paths").at("path").at(0);
  EXPECT_EQ(path.at("name"), "/api/v1/namespaces/{namespace}/pods/{name}");
  const auto& get = path.at("value").at("get");
  EXPECT_EQ(get.at("operation_id"), "readPod");
  EXPECT_EQ(get.at("responses")
                .at("response_code")
                .at(0)
                .at("value")
                .at("response")
                .at("schema")
                .at("schema")
                .at("_ref"),
            "#/definitions/io.k8s.kiso.Pod");
  EXPECT_EQ(get.at("vendor_extension").at(0).at("value").at("yaml"), "\"get\"");
  const auto& pod = read.at("definitions").at("additional_properties").at(0);
  EXPECT_EQ(pod.at("name"), "io.k8s.kiso.Pod");
  const auto& schema = pod.at("value");
  EXPECT_EQ(schema.at("type").at("value").at(0), "object");
  EXPECT_EQ(schema.at("required").at(0), "spec");
  EXPECT_EQ(schema.at("vendor_extension").at(0).at("name"), "x-kubernetes-group-version-kind");
  EXPECT_EQ(json::parse(schema.at("vendor_extension").at(0).at("value").at("yaml").as_string()),
            json::parse(R"([{"group": "", "kind": "Pod", "version": "v1"}])"));
  std::map<std::string, json::value> properties;
  for (const auto& p : schema.at("properties").at("additional_properties").as_array())
    properties[std::string(p.at("name").as_string())] = p.at("value");
  EXPECT_EQ(properties.at("spec").at("_ref"), "#/definitions/io.k8s.kiso.PodSpec");
  EXPECT_EQ(properties.at("tags").at("items").at("schema").at(0).at("enum").at(1).at("yaml"),
            "\"b\"");
  EXPECT_EQ(
      properties.at("labels").at("additional_properties").at("schema").at("type").at("value").at(0),
      "string");
  EXPECT_EQ(properties.at("size").at("minimum").to_number<double>(), 1.0);
  EXPECT_EQ(properties.at("size").at("max_length"), "5");  // int64 in protobuf's JSON.
}

}  // namespace
}  // namespace kiso::api
