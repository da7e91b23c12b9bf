// OpenAPI v3, one document per group-version: the schema of every kind
// served there and of every type it reaches (from the declared types,
// api/schema_model.h: what validation and protobuf read too), which
// `kubectl explain` walks; and the PATCH operation of every kind with the
// fieldValidation parameter, so kubectl create/apply/replace send
// fieldValidation=Strict and leave validation to the server. The patch content
// types deliberately omit strategic merge, so kubectl builds its SMP from its
// compiled-in types rather than from these schemas (see
// ../shared/notes/kube-api-surface.md §3). The schemas carry no descriptions:
// kiso does not ship upstream's documentation text.
#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <functional>

#include "api/custom_resource.h"
#include "api/openapi_proto.h"
#include "api/protobuf.h"
#include "api/schema_model.h"
#include "apiserver/verbs/handlers.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

constexpr std::string_view kHash = "kiso-0002";

using api::schema::TypeRef;

// io.k8s.kiso.Deployment; a version's own type (Kind@group.version) as
// io.k8s.kiso.group.version.Kind.
std::string SchemaName(const api::schema::Type& type) {
  size_t at = type.name.find('@');
  if (at == std::string::npos) return "io.k8s.kiso." + type.name;
  return fmt::format("io.k8s.kiso.{}.{}", type.name.substr(at + 1), type.GoName());
}

// The two forms kiso publishes: OpenAPI v3 (one document per group-version,
// components/schemas) and v2 (one document, definitions).
struct Dialect {
  bool v3 = true;
  std::string Prefix() const { return v3 ? "#/components/schemas/" : "#/definitions/"; }
};

json::object Ref(const api::schema::Type& type, const Dialect& d) {
  // v3 wraps a reference (siblings of $ref are ignored there); v2 refers directly.
  json::object ref{{"$ref", d.Prefix() + SchemaName(type)}};
  if (!d.v3) return ref;
  return json::object{{"allOf", json::array{std::move(ref)}}};
}

void AddType(const api::schema::Type& type, json::object& schemas, const Dialect& d);

// A field's schema; struct types are added to `schemas` and referred to.
json::object SchemaOf(const TypeRef& ref, json::object& schemas, const Dialect& d) {
  switch (ref.kind) {
    case TypeRef::Kind::kString:
    case TypeRef::Kind::kQuantity:
    case TypeRef::Kind::kDuration:
      return json::object{{"type", "string"}};
    case TypeRef::Kind::kBytes:
      return json::object{{"type", "string"}, {"format", "byte"}};
    case TypeRef::Kind::kTime:
    case TypeRef::Kind::kMicroTime:
      return json::object{{"type", "string"}, {"format", "date-time"}};
    case TypeRef::Kind::kInt32:
      return json::object{{"type", "integer"}, {"format", "int32"}};
    case TypeRef::Kind::kInt64:
      return json::object{{"type", "integer"}, {"format", "int64"}};
    case TypeRef::Kind::kBool:
      return json::object{{"type", "boolean"}};
    case TypeRef::Kind::kFloat:
      return json::object{{"type", "number"}, {"format", "double"}};
    case TypeRef::Kind::kIntOrString:
      // v2 has no anyOf: upstream's v2 names the format instead.
      if (!d.v3) return json::object{{"type", "string"}, {"format", "int-or-string"}};
      return json::object{{"x-kubernetes-int-or-string", true},
                          {"anyOf", json::array{json::object{{"type", "integer"}},
                                                json::object{{"type", "string"}}}}};
    case TypeRef::Kind::kEnum: {
      json::array values;
      for (const auto& v : ref.values) values.emplace_back(v);
      return json::object{{"type", "string"}, {"enum", std::move(values)}};
    }
    case TypeRef::Kind::kList:
      return json::object{
          {"type", "array"},
          {"items", ref.element ? SchemaOf(*ref.element, schemas, d) : json::object()}};
    case TypeRef::Kind::kMap:
      return json::object{{"type", "object"},
                          {"additionalProperties",
                           ref.element ? SchemaOf(*ref.element, schemas, d) : json::object()}};
    case TypeRef::Kind::kStruct:
      if (ref.type == nullptr) break;
      AddType(*ref.type, schemas, d);
      return Ref(*ref.type, d);
    case TypeRef::Kind::kRawJson:
    case TypeRef::Kind::kAny:
      break;
  }
  return json::object{{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}};
}

void AddType(const api::schema::Type& type, json::object& schemas, const Dialect& d) {
  std::string name = SchemaName(type);
  if (schemas.contains(name)) return;
  schemas[name] = json::object();  // Placed first: a type may reach itself (JSONSchemaProps).
  json::object properties;
  for (const auto* f : type.json_fields) properties[f->name] = SchemaOf(f->type, schemas, d);
  schemas[name] = json::object{{"type", "object"}, {"properties", std::move(properties)}};
}

// A custom kind's schema name, as upstream names it (com.example.stable.v1.CronTab).
std::string CustomSchemaName(const api::ResourceType& t) {
  std::vector<std::string> labels;
  for (size_t start = 0; start <= t.group.size();) {
    size_t dot = std::min(t.group.find('.', start), t.group.size());
    labels.push_back(t.group.substr(start, dot - start));
    start = dot + 1;
  }
  std::string name;
  for (auto it = labels.rbegin(); it != labels.rend(); ++it) name += *it + ".";
  return name + t.version + "." + t.kind;
}

// Adds `t`'s kind to `schemas` with every type it reaches; returns its schema's name.
std::string AddKind(const api::ResourceType& t, json::object& schemas, const Dialect& d) {
  json::object gvk{{"group", t.group}, {"version", t.version}, {"kind", t.kind}};
  if (t.custom) {
    std::string name = CustomSchemaName(t);
    json::object s = t.custom->schema && t.custom->schema->is_object()
                         ? t.custom->schema->get_object()
                         : json::object{{"type", "object"}};
    json::object& props = s["properties"].is_object()
                              ? s["properties"].as_object()
                              : (s["properties"] = json::object()).as_object();
    props["apiVersion"] = json::object{{"type", "string"}};
    props["kind"] = json::object{{"type", "string"}};
    props["metadata"] = json::object{{"type", "object"}};
    s["x-kubernetes-group-version-kind"] = json::array{std::move(gvk)};
    schemas[name] = std::move(s);
    return name;
  }
  const api::schema::Type* type = api::schema::FindType(t.Schema());
  if (type == nullptr) return "";
  AddType(*type, schemas, d);
  json::object& s = schemas[SchemaName(*type)].as_object();
  json::object& props = s["properties"].as_object();
  props["apiVersion"] = json::object{{"type", "string"}};
  props["kind"] = json::object{{"type", "string"}};
  // One type may be a kind in more than one group-version: each is listed.
  json::value& kinds = s["x-kubernetes-group-version-kind"];
  if (!kinds.is_array()) kinds = json::array();
  if (std::find(kinds.as_array().begin(), kinds.as_array().end(), json::value(gvk)) ==
      kinds.as_array().end())
    kinds.as_array().push_back(std::move(gvk));
  return SchemaName(*type);
}

// The kinds served in a group-version, with every type they reach.
json::object Schemas(const std::string& group, const std::string& version) {
  json::object schemas;
  for (const auto* t : api::AllResources()) {
    if (t->group == group && t->version == version) AddKind(*t, schemas, Dialect{});
  }
  return schemas;
}

// What a client caches a group-version's document by: kiso's release for the
// built-in kinds, and the definitions for custom ones (a changed schema is a new hash).
std::string Hash(const std::string& group, const std::string& version) {
  std::string fingerprints;
  for (const auto* t : api::AllResources()) {
    if (t->group == group && t->version == version && t->custom)
      fingerprints += t->custom->fingerprint;
  }
  if (fingerprints.empty()) return std::string(kHash);
  return fmt::format("{}-{:016x}", kHash, std::hash<std::string>{}(fingerprints));
}

std::string GvPath(const std::string& group, const std::string& version) {
  return group.empty() ? "api/" + version : "apis/" + group + "/" + version;
}

std::string Document(const std::string& group, const std::string& version) {
  json::object paths;
  for (const auto* type_of : api::AllResources()) {
    const api::ResourceType& t = *type_of;
    if (t.group != group || t.version != version) continue;
    std::string base = "/" + GvPath(group, version) + "/";
    std::string path = t.namespaced ? base + "namespaces/{namespace}/" + t.plural + "/{name}"
                                    : base + t.plural + "/{name}";
    json::object content{{"application/json-patch+json", json::object()},
                         {"application/merge-patch+json", json::object()},
                         {"application/apply-patch+yaml", json::object()}};
    json::object patch;
    patch["x-kubernetes-group-version-kind"] =
        json::object{{"group", group}, {"version", version}, {"kind", t.kind}};
    patch["parameters"] = json::array{
        json::object{{"name", "fieldValidation"},
                     {"in", "query"},
                     {"schema", json::object{{"type", "string"}}}},
        json::object{
            {"name", "dryRun"}, {"in", "query"}, {"schema", json::object{{"type", "string"}}}},
        json::object{{"name", "fieldManager"},
                     {"in", "query"},
                     {"schema", json::object{{"type", "string"}}}}};
    patch["requestBody"] = json::object{{"content", std::move(content)}};
    patch["responses"] = json::object();
    paths[path] = json::object{{"patch", std::move(patch)}};
  }
  json::object doc;
  doc["openapi"] = "3.0.0";
  doc["info"] = json::object{{"title", "Kubernetes"}, {"version", "v1.32.0"}};
  doc["paths"] = std::move(paths);
  doc["components"] = json::object{{"schemas", Schemas(group, version)}};
  return json::serialize(doc);
}

std::string GvPath(const api::ResourceType& t) { return GvPath(t.group, t.version); }

// Swagger 2.0: every kind served, in one document; each object's GET
// operation names its kind, as upstream's do.
json::object DocumentV2() {
  json::object definitions;
  json::object paths;
  Dialect v2{false};
  for (const auto* t : api::AllResources()) {
    std::string name = AddKind(*t, definitions, v2);
    if (name.empty() || !t->Allows("get")) continue;
    std::string base = "/" + GvPath(*t) + "/";
    std::string path = t->namespaced ? base + "namespaces/{namespace}/" + t->plural + "/{name}"
                                     : base + t->plural + "/{name}";
    json::object get{
        {"operationId", fmt::format("read{}", t->kind)},
        {"produces", json::array{"application/json", "application/yaml", api::kProtobufMediaType}},
        {"responses",
         json::object{
             {"200", json::object{{"description", "OK"},
                                  {"schema", json::object{{"$ref", "#/definitions/" + name}}}}}}},
        {"x-kubernetes-action", "get"},
        {"x-kubernetes-group-version-kind",
         json::object{{"group", t->group}, {"version", t->version}, {"kind", t->kind}}}};
    paths[path] = json::object{{"get", std::move(get)}};
  }
  return json::object{{"swagger", "2.0"},
                      {"info", json::object{{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
                      {"paths", std::move(paths)},
                      {"definitions", std::move(definitions)}};
}

// Whether the client takes the v2 document in gnostic's protobuf form (as client-go asks for it).
bool WantsOpenApiProtobuf(const Request& req) {
  std::string_view accept = req.Header("accept");
  return accept.find(api::kOpenApiV2ProtobufMediaType) != std::string_view::npos ||
         accept.find(api::kOpenApiV2ProtobufContentType) != std::string_view::npos;
}

}  // namespace

std::optional<Response> HandleOpenApi(const Request& req) {
  if (req.path == "/openapi/v2" || req.path == "/openapi/v2/") {
    json::object doc = DocumentV2();
    if (!WantsOpenApiProtobuf(req)) return JsonResponse(200, json::serialize(doc));
    auto body = api::EncodeOpenApiV2(doc);
    if (!body.ok()) return ErrorResponse(body.error());
    Response r;
    r.status = 200;
    r.content_type = std::string(api::kOpenApiV2ProtobufContentType);
    r.body = std::move(*body);
    return r;
  }
  if (req.path == "/openapi/v3" || req.path == "/openapi/v3/") {
    json::object paths;
    for (const auto& gv : api::ServedGroupVersions()) {
      std::string p = GvPath(gv.group, gv.version);
      paths[p] = json::object{{"serverRelativeURL", fmt::format("/openapi/v3/{}?hash={}", p,
                                                                Hash(gv.group, gv.version))}};
    }
    return JsonResponse(200, json::serialize(json::object{{"paths", std::move(paths)}}));
  }
  if (req.path.starts_with("/openapi/v3/")) {
    std::string rest = req.path.substr(12);
    for (const auto& gv : api::ServedGroupVersions()) {
      if (rest == GvPath(gv.group, gv.version)) {
        Response r = JsonResponse(200, Document(gv.group, gv.version));
        r.headers.emplace_back("Cache-Control", "public, immutable");
        return r;
      }
    }
  }
  return std::nullopt;
}

}  // namespace kiso::apiserver
