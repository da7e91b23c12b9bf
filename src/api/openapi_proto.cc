#include "api/openapi_proto.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include <boost/json.hpp>

namespace kiso::api {

namespace json = boost::json;
namespace pb = google::protobuf;
using WFL = pb::internal::WireFormatLite;

namespace {

// One message's fields, written in the order given.
class Message {
 public:
  Message() : stream_(&out_), coded_(std::make_unique<pb::io::CodedOutputStream>(&stream_)) {}

  void String(int field, std::string_view value) {
    WFL::WriteString(field, std::string(value), coded_.get());
  }
  void Bool(int field, bool value) { WFL::WriteBool(field, value, coded_.get()); }
  void Double(int field, double value) { WFL::WriteDouble(field, value, coded_.get()); }
  void Int64(int field, int64_t value) { WFL::WriteInt64(field, value, coded_.get()); }
  void Sub(int field, const std::string& bytes) { WFL::WriteBytes(field, bytes, coded_.get()); }

  std::string Take() {
    coded_.reset();  // Flushes into out_.
    return std::move(out_);
  }

 private:
  std::string out_;
  pb::io::StringOutputStream stream_;
  std::unique_ptr<pb::io::CodedOutputStream> coded_;
};

// openapi.v2.Any: the value as YAML (JSON is YAML).
std::string Any(const json::value& v) {
  Message m;
  m.String(2, json::serialize(v));
  return m.Take();
}

// openapi.v2.NamedAny, a vendor extension.
std::string NamedAny(std::string_view name, const json::value& v) {
  Message m;
  m.String(1, name);
  m.Sub(2, Any(v));
  return m.Take();
}

std::string Schema(const json::object& s, int depth);

// A schema nested in `s` at `key`, or "" when there is none (or it is too deep).
std::string SchemaAt(const json::value& v, int depth) {
  return v.is_object() && depth < 64 ? Schema(v.get_object(), depth + 1) : std::string();
}

std::string Schema(const json::object& s, int depth) {
  Message m;
  auto number = [](const json::value& v) { return v.is_number() ? v.to_number<double>() : 0.0; };
  auto integer = [](const json::value& v) -> int64_t {
    return v.is_int64() ? v.get_int64() : v.is_uint64() ? static_cast<int64_t>(v.get_uint64()) : 0;
  };
  static const std::vector<std::pair<std::string_view, int>> kStrings = {
      {"$ref", 1},        {"format", 2},   {"title", 3},
      {"description", 4}, {"pattern", 13}, {"discriminator", 26}};
  for (const auto& [key, field] : kStrings) {
    if (const auto* v = s.if_contains(key); v && v->is_string()) m.String(field, v->get_string());
  }
  if (const auto* v = s.if_contains("default")) m.Sub(5, Any(*v));
  static const std::vector<std::pair<std::string_view, int>> kDoubles = {
      {"multipleOf", 6}, {"maximum", 7}, {"minimum", 9}};
  for (const auto& [key, field] : kDoubles) {
    if (const auto* v = s.if_contains(key); v && v->is_number()) m.Double(field, number(*v));
  }
  static const std::vector<std::pair<std::string_view, int>> kBools = {
      {"exclusiveMaximum", 8}, {"exclusiveMinimum", 10}, {"uniqueItems", 16}, {"readOnly", 27}};
  for (const auto& [key, field] : kBools) {
    if (const auto* v = s.if_contains(key); v && v->is_bool()) m.Bool(field, v->get_bool());
  }
  static const std::vector<std::pair<std::string_view, int>> kIntegers = {
      {"maxLength", 11}, {"minLength", 12},     {"maxItems", 14},
      {"minItems", 15},  {"maxProperties", 17}, {"minProperties", 18}};
  for (const auto& [key, field] : kIntegers) {
    if (const auto* v = s.if_contains(key); v && v->is_number()) m.Int64(field, integer(*v));
  }
  if (const auto* v = s.if_contains("required"); v && v->is_array()) {
    for (const auto& r : v->get_array()) {
      if (r.is_string()) m.String(19, r.get_string());
    }
  }
  if (const auto* v = s.if_contains("enum"); v && v->is_array()) {
    for (const auto& e : v->get_array()) m.Sub(20, Any(e));
  }
  if (const auto* v = s.if_contains("additionalProperties")) {
    Message item;  // AdditionalPropertiesItem: a schema, or a boolean.
    if (v->is_bool()) {
      item.Bool(2, v->get_bool());
    } else {
      item.Sub(1, SchemaAt(*v, depth));
    }
    m.Sub(21, item.Take());
  }
  if (const auto* v = s.if_contains("type")) {
    Message type;  // TypeItem
    if (v->is_string()) type.String(1, v->get_string());
    if (v->is_array()) {
      for (const auto& t : v->get_array()) {
        if (t.is_string()) type.String(1, t.get_string());
      }
    }
    m.Sub(22, type.Take());
  }
  if (const auto* v = s.if_contains("items")) {
    Message items;  // ItemsItem
    if (v->is_array()) {
      for (const auto& i : v->get_array()) items.Sub(1, SchemaAt(i, depth));
    } else {
      items.Sub(1, SchemaAt(*v, depth));
    }
    m.Sub(23, items.Take());
  }
  if (const auto* v = s.if_contains("allOf"); v && v->is_array()) {
    for (const auto& a : v->get_array()) m.Sub(24, SchemaAt(a, depth));
  }
  if (const auto* v = s.if_contains("properties"); v && v->is_object()) {
    Message properties;  // Properties: NamedSchema each.
    for (const auto& [name, schema] : v->get_object()) {
      Message named;
      named.String(1, name);
      named.Sub(2, SchemaAt(schema, depth));
      properties.Sub(1, named.Take());
    }
    m.Sub(25, properties.Take());
  }
  if (const auto* v = s.if_contains("example")) m.Sub(30, Any(*v));
  for (const auto& [key, value] : s) {
    if (key.starts_with("x-")) m.Sub(31, NamedAny(key, value));
  }
  return m.Take();
}

// openapi.v2.Operation: its id, media types, responses (with their schemas) and extensions.
std::string Operation(const json::object& op) {
  Message m;
  if (const auto* v = op.if_contains("description"); v && v->is_string())
    m.String(3, v->get_string());
  if (const auto* v = op.if_contains("operationId"); v && v->is_string())
    m.String(5, v->get_string());
  for (auto [key, field] : {std::pair{"produces", 6}, std::pair{"consumes", 7}}) {
    if (const auto* v = op.if_contains(key); v && v->is_array()) {
      for (const auto& t : v->get_array()) {
        if (t.is_string()) m.String(field, t.get_string());
      }
    }
  }
  if (const auto* v = op.if_contains("responses"); v && v->is_object()) {
    Message responses;
    for (const auto& [code, r] : v->get_object()) {
      if (!r.is_object()) continue;
      Message response;  // Response
      if (const auto* d = r.get_object().if_contains("description"); d && d->is_string())
        response.String(1, d->get_string());
      if (const auto* s = r.get_object().if_contains("schema"); s && s->is_object()) {
        Message item;  // SchemaItem
        item.Sub(1, Schema(s->get_object(), 0));
        response.Sub(2, item.Take());
      }
      Message value;  // ResponseValue
      value.Sub(1, response.Take());
      Message named;  // NamedResponseValue
      named.String(1, code);
      named.Sub(2, value.Take());
      responses.Sub(1, named.Take());
    }
    m.Sub(9, responses.Take());
  }
  for (const auto& [key, value] : op) {
    if (key.starts_with("x-")) m.Sub(13, NamedAny(key, value));
  }
  return m.Take();
}

}  // namespace

ApiOr<std::string> EncodeOpenApiV2(const json::object& doc) {
  Message m;
  if (const auto* v = doc.if_contains("swagger"); v && v->is_string()) m.String(1, v->get_string());
  if (const auto* v = doc.if_contains("info"); v && v->is_object()) {
    Message info;
    for (auto [key, field] : {std::pair{"title", 1}, std::pair{"version", 2}}) {
      if (const auto* t = v->get_object().if_contains(key); t && t->is_string())
        info.String(field, t->get_string());
    }
    m.Sub(2, info.Take());
  }
  if (const auto* v = doc.if_contains("paths"); v && v->is_object()) {
    Message paths;
    // PathItem's operations by field number.
    static const std::vector<std::pair<std::string_view, int>> kOperations = {
        {"get", 2},     {"put", 3},  {"post", 4}, {"delete", 5},
        {"options", 6}, {"head", 7}, {"patch", 8}};
    for (const auto& [path, item] : v->get_object()) {
      if (!item.is_object()) continue;
      Message path_item;
      for (const auto& [verb, field] : kOperations) {
        if (const auto* op = item.get_object().if_contains(verb); op && op->is_object())
          path_item.Sub(field, Operation(op->get_object()));
      }
      Message named;  // NamedPathItem
      named.String(1, path);
      named.Sub(2, path_item.Take());
      paths.Sub(2, named.Take());
    }
    m.Sub(8, paths.Take());
  }
  if (const auto* v = doc.if_contains("definitions"); v && v->is_object()) {
    Message definitions;
    for (const auto& [name, schema] : v->get_object()) {
      if (!schema.is_object())
        return InternalError("a definition of the OpenAPI document is not an object");
      Message named;  // NamedSchema
      named.String(1, name);
      named.Sub(2, Schema(schema.get_object(), 0));
      definitions.Sub(1, named.Take());
    }
    m.Sub(9, definitions.Take());
  }
  return m.Take();
}

}  // namespace kiso::api

KISO_PLUGIN_ENTRY void KisoEncodeOpenApiV2(const boost::json::object* doc,
                                           kiso::api::ApiOr<std::string>* out) {
  *out = kiso::api::EncodeOpenApiV2(*doc);
}
