// Shared steps of every write: decoding bodies, identity checks, the
// create path, and kube-apiserver's GuaranteedUpdate loop.
#include <fmt/format.h>

#include <boost/json.hpp>

#include "api/custom_resource.h"
#include "api/managed_fields.h"
#include "api/object.h"
#include "api/protobuf.h"
#include "api/schema.h"
#include "api/structural.h"
#include "api/validation.h"
#include "api/warnings.h"
#include "apiserver/admission/admission.h"
#include "apiserver/admission/resource_quota.h"
#include "apiserver/service_allocations.h"
#include "apiserver/verbs/handlers.h"
#include "common/random.h"

namespace kiso::apiserver {

namespace json = boost::json;
using api::ApiError;
using api::ApiOr;
using api::ApiStatus;

Response JsonResponse(int status, std::string body) {
  Response r;
  r.status = status;
  if (body.empty() || body.back() != '\n') body += '\n';
  r.body = std::move(body);
  return r;
}

Response ErrorResponse(const ApiError& error) { return JsonResponse(error.code, error.ToJson()); }

Response ObjectResponse(int status, json::value obj) {
  Response r;
  r.status = status;
  r.object = std::make_shared<json::value>(std::move(obj));
  return r;
}

namespace {

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool WantsProtobufOnly(const Request& req) {
  std::string_view accept = req.Header("accept");
  bool protobuf = false;
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view item = TrimSpace(accept.substr(0, comma));
    std::string_view media = TrimSpace(item.substr(0, item.find(';')));
    if (media == api::kProtobufMediaType) {
      protobuf = true;
    } else if (!media.empty()) {
      return false;  // JSON, */* or anything else kiso answers in JSON.
    }
    if (comma == std::string_view::npos) break;
    accept.remove_prefix(comma + 1);
  }
  return protobuf;
}

void EncodeObject(Response& res, const Request& req) {
  bool json_body = res.content_type == "application/json" && !res.stream && !res.events;
  if (json_body && res.status < 300 && WantsProtobufOnly(req)) {
    api::ApiOr<std::string> body = api::NotAcceptable("");
    res.Flatten();
    if (res.object) {
      body = api::EncodeProtobuf(*res.object);
    } else if (auto v = api::ParseJson(res.body); v.ok()) {
      body = api::EncodeProtobuf(*v);
    }
    res.object.reset();
    if (body.ok()) {
      res.body = std::move(*body);
      res.content_type = std::string(api::kProtobufMediaType);
    } else {
      res = ErrorResponse(body.error());
    }
    return;
  }
  if (!res.object) return;
  res.body = json::serialize(*res.object);
  res.body += '\n';
  res.object.reset();
}

Result<json::value> ParseBody(const Request& req, bool yaml, bool strict) {
  if (req.object) return *req.object;
  return yaml ? api::ParseYaml(req.body) : api::ParseJson(req.body, strict);
}

ApiOr<std::string> EncodeForStore(const json::value& obj) {
  json::value copy = obj;
  if (auto* meta = copy.get_object().if_contains("metadata"); meta && meta->is_object())
    meta->get_object().erase("resourceVersion");
  std::string out = json::serialize(copy);
  if (out.size() > api::kMaxDocumentBytes) {
    return api::RequestEntityTooLarge(
        fmt::format("the object would be {} bytes, larger than the limit of {} bytes", out.size(),
                    api::kMaxDocumentBytes));
  }
  return out;
}

api::ApiError DecodeError(const Status& status, std::string_view prefix) {
  if (status.code() == Code::kResourceExhausted) {
    return api::RequestEntityTooLarge(std::string(prefix) + status.message());
  }
  return api::BadRequest(std::string(prefix) + status.message());
}

ApiOr<json::value> DecodeStored(const store::KeyValue& kv) {
  auto v = api::ParseJson(kv.value);
  if (!v.ok() || !v->is_object())
    return api::InternalError(fmt::format("stored object {} is corrupt", kv.key));
  api::Child(v->get_object(), "metadata")["resourceVersion"] = std::to_string(kv.mod_revision);
  return std::move(*v);
}

namespace {

ApiOr<json::value> DecodeCached(const CachedObject& cached) {
  auto v = api::ParseJson(cached.json);  // resourceVersion is the cached revision already.
  if (!v.ok() || !v->is_object())
    return api::InternalError(fmt::format("cached object {} is corrupt", cached.key));
  return std::move(*v);
}

}  // namespace

ApiOr<store::KeyValue> ReadObject(const Context& ctx, const Target& t) {
  auto kv = ctx.store->Get(t.type->StoreKey(t.ns, t.name));
  if (!kv.ok()) {
    if (kv.status().code() == Code::kNotFound) return api::NotFound(*t.type, t.name);
    return api::FromStatus(kv.status());
  }
  return std::move(*kv);
}

std::optional<json::object> ReadFromCache(const Context& ctx, const api::ResourceType& type,
                                          std::string_view ns, std::string_view name) {
  ObjectPtr obj = ctx.cache->Get(type.StoreKey(ns, name));
  if (!obj) return std::nullopt;
  auto v = api::ParseJson(obj->json);
  if (!v.ok() || !v->is_object()) return std::nullopt;
  return std::move(v->as_object());
}

std::vector<json::object> ListFromCache(const Context& ctx, const api::ResourceType& type,
                                        std::string_view ns) {
  std::string prefix = type.StorePrefix();
  if (type.namespaced && !ns.empty()) prefix += std::string(ns) + "/";
  std::vector<json::object> out;
  for (const auto& obj : ctx.cache->List(prefix).objects) {
    auto v = api::ParseJson(obj->json);
    if (v.ok() && v->is_object()) out.push_back(std::move(v->as_object()));
  }
  return out;
}

std::optional<json::object> ReadFromStore(const Context& ctx, const api::ResourceType& type,
                                          std::string_view ns, std::string_view name) {
  auto kv = ctx.store->Get(type.StoreKey(ns, name));
  if (!kv.ok()) return std::nullopt;
  auto v = api::ParseJson(kv->value);
  if (!v.ok() || !v->is_object()) return std::nullopt;
  return std::move(v->as_object());
}

bool DryRun(const Request& req) {
  for (const auto& v : req.QueryAll("dryRun")) {
    if (v == "All") return true;
  }
  return false;
}

std::string FieldManager(const Request& req) {
  if (auto m = req.Query("fieldManager"); m && !m->empty()) return std::string(*m);
  std::string_view ua = req.Header("user-agent");
  ua = ua.substr(0, ua.find('/'));
  return ua.empty() ? "unknown" : std::string(ua);
}

ApiOr<FieldValidation> FieldValidationOf(const Request& req) {
  auto v = req.Query("fieldValidation");
  if (!v || v->empty() || *v == "Warn") return FieldValidation::kWarn;
  if (*v == "Strict") return FieldValidation::kStrict;
  if (*v == "Ignore") return FieldValidation::kIgnore;
  return api::BadRequest(
      fmt::format("fieldValidation: Unsupported value: \"{}\": supported values: \"Ignore\", "
                  "\"Strict\", \"Warn\"",
                  *v));
}

ApiOr<json::value> DecodeBody(const Request& req, const Target& t) {
  std::string_view type = req.Header("content-type");
  type = type.substr(0, type.find(';'));
  auto mode = FieldValidationOf(req);
  if (!mode.ok()) return mode.error();
  bool strict = *mode == FieldValidation::kStrict;
  std::string cannot = fmt::format("{} in version \"{}\" cannot be handled as a {}: ", t.type->kind,
                                   t.type->version, t.type->kind);
  api::ApiOr<json::value> out = json::value();
  if (type == api::kProtobufMediaType && !req.object) {
    out = api::DecodeProtobuf(req.body);
    if (!out.ok()) return out;
  } else if (type == "application/yaml" || type == "application/apply-patch+yaml") {
    auto v = ParseBody(req, /*yaml=*/true);
    if (!v.ok()) return DecodeError(v.status());
    out = std::move(*v);
  } else if (type.empty() || type == "application/json" || type.ends_with("+json") ||
             type == "*/*") {
    auto v = ParseBody(req, /*yaml=*/false, strict);
    if (!v.ok()) {
      if (v.status().code() == Code::kAlreadyExists) {
        return api::BadRequest(cannot + "strict decoding error: " + v.status().message());
      }
      return api::BadRequest(cannot + v.status().message());
    }
    if (*mode == FieldValidation::kWarn && !req.object) {
      if (auto duplicate = api::FirstDuplicateKey(req.body))
        req.Warn(fmt::format("duplicate field \"{}\"", *duplicate));
    }
    out = std::move(*v);
  } else {
    return api::UnsupportedMediaType(fmt::format(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf"));
  }
  if (auto err = CheckUnknownFields(req, *mode, *t.type, *out, cannot)) return *err;
  return out;
}

std::vector<std::string> UnknownFieldsOf(const api::ResourceType& type, const json::value& obj) {
  if (!type.custom) return api::UnknownFields(type.Schema(), obj);
  // A custom kind's unknown fields: what its schema would prune.
  if (!type.custom->schema) return {};
  json::value copy = obj;
  return api::Prune(*type.custom->schema, copy);
}

ApiStatus CheckUnknownFields(const Request& req, FieldValidation mode,
                             const api::ResourceType& type, const json::value& obj,
                             std::string_view prefix) {
  if (mode == FieldValidation::kIgnore) return std::nullopt;
  // kiso's own requests (in process, no user) hear no warnings: spare them the walk.
  if (mode == FieldValidation::kWarn && !req.user) return std::nullopt;
  auto unknown = UnknownFieldsOf(type, obj);
  if (unknown.empty()) return std::nullopt;
  if (mode == FieldValidation::kWarn) {
    for (const auto& path : unknown) req.Warn(fmt::format("unknown field \"{}\"", path));
    return std::nullopt;
  }
  std::string message = std::string(prefix) + "strict decoding error: ";
  for (size_t i = 0; i < unknown.size(); ++i) {
    message += fmt::format("{}unknown field \"{}\"", i == 0 ? "" : ", ", unknown[i]);
  }
  return api::BadRequest(message);
}

ApiStatus CheckIdentity(const Target& t, json::object& obj) {
  const auto* av = obj.if_contains("apiVersion");
  const auto* kind = obj.if_contains("kind");
  std::string want_av = t.type->GroupVersion();
  if (av && av->is_string() && av->get_string() != want_av) {
    return api::BadRequest(
        fmt::format("the API version in the data ({}) does not match the expected API version ({})",
                    av->get_string().c_str(), want_av));
  }
  if (kind && kind->is_string() && kind->get_string() != t.type->kind) {
    return api::BadRequest(
        fmt::format("the kind in the data ({}) does not match the expected kind ({})",
                    kind->get_string().c_str(), t.type->kind));
  }
  // Normalise: apiVersion and kind first, as Go's TypeMeta serialises.
  json::object ordered;
  ordered["kind"] = t.type->kind;
  ordered["apiVersion"] = want_av;
  for (auto& [k, v] : obj) {
    if (k != "kind" && k != "apiVersion") ordered[k] = std::move(v);
  }
  obj = std::move(ordered);
  auto& meta = api::Child(obj, "metadata");
  if (t.type->namespaced) {
    const auto* ns = meta.if_contains("namespace");
    if (ns && ns->is_string() && !ns->get_string().empty() && ns->get_string() != t.ns) {
      return api::BadRequest(
          "the namespace of the provided object does not match the namespace sent on the request");
    }
    meta["namespace"] = t.ns;
  } else {
    meta.erase("namespace");
  }
  return std::nullopt;
}

namespace {

bool HasGeneration(const api::ResourceType& type) {
  if (type.custom) return true;  // Every custom object has one (bumped by spec changes).
  const std::string& k = type.kind;
  return k == "Deployment" || k == "ReplicaSet" || k == "StatefulSet" || k == "DaemonSet" ||
         k == "Job" || k == "ReplicationController" || k == "HorizontalPodAutoscaler";
}

// Everything but metadata and status: what the generation tracks.
json::object SpecPart(const json::object& obj) {
  json::object out;
  for (const auto& [k, v] : obj) {
    if (k != "metadata" && k != "status" && k != "kind" && k != "apiVersion") out[k] = v;
  }
  return out;
}

// A custom object: pruned, defaulted and validated by its version's schema
// (metadata by the same rules as every object's).
ApiStatus ValidateCustom(const Target& t, json::object& obj, const json::object* old) {
  api::ApplyDefaults(*t.type, obj);  // Metadata only, for a custom kind.
  auto causes = api::Validate(*t.type, obj, old);
  if (const auto& schema = t.type->custom->schema) {
    json::value whole(std::move(obj));
    api::Prune(*schema, whole);
    api::ApplySchemaDefaults(*schema, whole);
    auto found = api::ValidateSchema(*schema, whole);
    causes.insert(causes.end(), found.begin(), found.end());
    obj = std::move(whole.as_object());
  }
  if (!causes.empty()) {
    return api::Invalid(*t.type, std::string(api::GetString(obj, {"metadata", "name"})),
                        std::move(causes));
  }
  return std::nullopt;
}

ApiStatus ValidateAndDefault(const Target& t, json::object& obj, const json::object* old) {
  if (t.type->custom) return ValidateCustom(t, obj, old);
  // What Go's decoder would refuse comes first: defaults and validation read typed fields.
  api::SchemaFindings schema = api::CheckSchema(t.type->Schema(), obj);
  if (schema.type_error) {
    return api::BadRequest(fmt::format("{} in version \"{}\" cannot be handled as a {}: {}",
                                       t.type->kind, t.type->version, t.type->kind,
                                       *schema.type_error));
  }
  if (!schema.unknown_fields.empty()) api::DropUnknownFields(t.type->Schema(), obj);
  api::ApplyDefaults(*t.type, obj);
  auto causes = api::Validate(*t.type, obj, old);
  causes.insert(causes.begin(), schema.unsupported.begin(), schema.unsupported.end());
  if (!causes.empty()) {
    return api::Invalid(*t.type, std::string(api::GetString(obj, {"metadata", "name"})),
                        std::move(causes));
  }
  return std::nullopt;
}

// The namespace must exist and not be terminating (NamespaceLifecycle
// admission). As upstream's plugin asks its informer, the watch cache answers
// (its copy's status.phase, a field-selector value it keeps): no store read
// and no decode for each create. A namespace the cache has not seen (made a
// moment ago, maybe through another server) is looked up in the store, as
// upstream looks it up live. A namespace deleted a moment ago may still be
// Active in the cache for as long as it lags, as in upstream's informer.
ApiStatus CheckNamespace(const Context& ctx, const Target& t) {
  if (!t.type->namespaced) return std::nullopt;
  const api::ResourceType* ns_type = api::FindResource("", "v1", "namespaces");
  const std::string key = ns_type->StoreKey("", t.ns);
  bool terminating = false;
  if (ObjectPtr cached = ctx.cache != nullptr ? ctx.cache->Get(key) : nullptr) {
    const std::string* phase = cached->fields.Find("status.phase");
    terminating = phase != nullptr && *phase == "Terminating";
  } else {
    auto kv = ctx.store->Get(key);
    if (!kv.ok()) {
      if (kv.status().code() == Code::kNotFound) return api::NotFound(*ns_type, t.ns);
      return api::FromStatus(kv.status());
    }
    auto ns = api::ParseJson(kv->value);
    terminating = ns.ok() && api::GetString(*ns, {"status", "phase"}) == "Terminating";
  }
  if (terminating) {
    return api::Forbidden(
        *t.type, t.name,
        fmt::format("unable to create new content in namespace {} because it is being terminated",
                    t.ns));
  }
  return std::nullopt;
}

// Objects created together with `obj` in one transaction: a namespace's default ServiceAccount.
std::vector<std::pair<std::string, std::string>> Companions(const Target& t,
                                                            const json::object& obj) {
  std::vector<std::pair<std::string, std::string>> out;
  if (t.type->kind != "Namespace") return out;
  std::string ns(api::GetString(obj, {"metadata", "name"}));
  const api::ResourceType* sa_type = api::FindResource("", "v1", "serviceaccounts");
  json::object sa;
  sa["kind"] = "ServiceAccount";
  sa["apiVersion"] = "v1";
  sa["metadata"] = json::object{{"name", "default"},
                                {"namespace", ns},
                                {"uid", api::NewUid()},
                                {"creationTimestamp", api::NowRfc3339()}};
  out.emplace_back(sa_type->StoreKey(ns, "default"), json::serialize(sa));
  return out;
}

}  // namespace

ApiOr<json::value> CreateObject(const Context& ctx, const Target& t, const Request& req,
                                json::object obj) {
  if (t.type->custom && t.type->custom->terminating) {
    ApiError e;  // Upstream's answer while a definition's objects are being deleted.
    e.code = 405;
    e.reason = "MethodNotAllowed";
    e.message = "create not allowed while custom resource definition is terminating";
    return e;
  }
  if (auto err = CheckIdentity(t, obj)) return *err;
  auto& meta = api::Child(obj, "metadata");
  std::string generate_name;
  if (const auto* g = meta.if_contains("generateName"); g && g->is_string())
    generate_name = std::string(g->get_string());
  const auto* name = meta.if_contains("name");
  bool has_name = name && name->is_string() && !name->get_string().empty();
  if (!has_name && !generate_name.empty()) meta["name"] = generate_name + RandomNameSuffix();
  Target target = t;
  target.name = std::string(api::GetString(obj, {"metadata", "name"}));
  if (auto err = CheckNamespace(ctx, target)) return *err;
  meta.erase("resourceVersion");
  meta.erase("deletionTimestamp");
  meta.erase("deletionGracePeriodSeconds");
  meta["uid"] = api::NewUid();
  meta["creationTimestamp"] = api::NowRfc3339();
  if (HasGeneration(*t.type)) {
    meta["generation"] = 1;
  } else {
    meta.erase("generation");
  }
  // Status is the server's to set at creation, except a Node's, which its
  // kubelet registers in one POST (upstream nodeStrategy keeps it).
  if (t.type->has_status && t.type->kind != "Node") obj["status"] = json::object();
  if (t.type->kind == "Job") api::PrepareJobForCreate(obj);
  AdmissionRequest admission{&ctx, &target, &req, "CREATE", nullptr, DryRun(req)};
  if (ctx.admission) {
    if (auto err = ctx.admission->Mutate(admission, obj)) return *err;
  }
  if (auto err = ValidateAndDefault(target, obj, nullptr)) return *err;
  if (req.user) {  // kiso's own requests in process hear no warnings.
    for (auto& w : api::WarningsFor(*target.type, obj, nullptr)) req.Warn(std::move(w));
  }
  if (ctx.admission) {
    if (auto err = ctx.admission->Validate(admission, obj)) return *err;
  }
  // A create by server-side apply carries its Apply entry already.
  if (!req.Header("content-type").starts_with("application/apply-patch")) {
    api::RecordUpdate(*t.type, FieldManager(req), nullptr, obj);
  }
  if (DryRun(req)) {
    Reservation shown;  // What a real create would take, taken by nothing.
    if (auto err = AllocateServiceValues(ctx.service_cidr, *t.type, obj, nullptr, &shown))
      return *err;
    if (auto err = ChargeQuotas(ctx, target, obj, nullptr, nullptr)) return *err;
    return json::value(std::move(obj));
  }

  for (int attempt = 0;; ++attempt) {
    std::string key = t.type->StoreKey(t.ns, target.name);
    Reservation reservation;
    if (auto err = AllocateServiceValues(ctx.service_cidr, *t.type, obj, nullptr, &reservation))
      return *err;
    if (auto err = ChargeQuotas(ctx, target, obj, nullptr, &reservation)) return *err;
    store::TxnRequest txn;
    txn.compares.push_back(store::Compare::Missing(key));
    txn.compares.insert(txn.compares.end(), reservation.compares.begin(),
                        reservation.compares.end());
    auto encoded = EncodeForStore(obj);
    if (!encoded.ok()) return encoded.error();
    txn.success.push_back(store::TxnOp::Put(key, std::move(*encoded)));
    txn.success.insert(txn.success.end(), reservation.ops.begin(), reservation.ops.end());
    for (auto& [k, v] : Companions(target, obj)) {
      txn.success.push_back(store::TxnOp::Put(k, v));
    }
    auto res = ctx.store->Txn(txn);
    if (!res.ok()) return api::FromStatus(res.status());
    if (res->succeeded) {
      api::Child(obj, "metadata")["resourceVersion"] = std::to_string(res->revision);
      return json::value(std::move(obj));
    }
    if (attempt >= 16) return api::AlreadyExists(*t.type, target.name);
    auto existing = ctx.store->Get(key);
    if (!existing.ok() && RevisionsMoved(ctx, reservation.compares)) {
      continue;  // A quota was charged meanwhile: check it again.
    }
    if (existing.ok()) {
      // The name is taken; generateName tries another.
      if (generate_name.empty() || has_name) return api::AlreadyExists(*t.type, target.name);
      target.name = generate_name + RandomNameSuffix();
      api::Child(obj, "metadata")["name"] = target.name;
    } else {
      // An address or port was taken: 422 when the manifest named it, else pick another.
      bool taken = false;
      if (auto err = RecheckClaims(ctx.store, *t.type, obj, reservation, &taken)) return *err;
    }
  }
}

api::ApiOr<store::Revision> RemoveObject(const Context& ctx, const Target& t,
                                         const store::KeyValue& kv, const json::object& obj) {
  store::TxnRequest txn;
  txn.compares.push_back(store::Compare::ModRevisionIs(kv.key, kv.mod_revision));
  txn.success.push_back(store::TxnOp::Delete(store::KeyRange::Single(kv.key)));
  for (auto& key : OwnedKeys(ctx.service_cidr, *t.type, obj)) {
    txn.success.push_back(store::TxnOp::Delete(store::KeyRange::Single(key)));
  }
  auto res = ctx.store->Txn(txn);
  if (!res.ok()) return api::FromStatus(res.status());
  if (!res->succeeded) {
    // Changed or gone since it was read: the caller re-reads and decides again.
    return api::ModifiedConflict(*t.type, t.name);
  }
  return res->revision;
}

ApiStatus PrepareUpdate(const Context& ctx, const Target& t, const Request& req,
                        const json::object& old, json::object& obj) {
  if (auto err = CheckIdentity(t, obj)) return *err;
  const json::value old_v(old);
  auto& meta = api::Child(obj, "metadata");
  std::string_view name = api::GetString(obj, {"metadata", "name"});
  if (name.empty()) meta["name"] = t.name;
  if (!name.empty() && name != t.name) {
    return api::BadRequest(fmt::format(
        "the name of the object ({}) does not match the name on the URL ({})", name, t.name));
  }
  std::string_view uid = api::GetString(obj, {"metadata", "uid"});
  std::string_view old_uid = api::GetString(old_v, {"metadata", "uid"});
  if (!uid.empty() && uid != old_uid) {
    return api::Conflict(*t.type, t.name,
                         fmt::format("Precondition failed: UID in precondition: {}, UID in object "
                                     "meta: {}",
                                     uid, old_uid));
  }
  // Fields the server owns.
  const auto& old_meta = old.at("metadata").get_object();
  for (std::string_view f : {"uid", "creationTimestamp", "deletionTimestamp",
                             "deletionGracePeriodSeconds", "generation"}) {
    if (const auto* v = old_meta.if_contains(f)) {
      meta[f] = *v;
    } else {
      meta.erase(f);
    }
  }
  if (t.subresource == "finalize") {
    // Only spec.finalizers changes through /finalize (namespaces).
    json::object next = old;
    const auto* f = api::Find(obj, {"spec", "finalizers"});
    api::Child(next, "spec")["finalizers"] = f ? *f : json::array();
    obj = std::move(next);
    api::Child(obj, "metadata").erase("resourceVersion");
  } else if (t.subresource == "status") {
    // Only status changes through /status (ResetObjectMetaForStatus).
    json::object next = old;
    if (const auto* s = obj.if_contains("status")) {
      next["status"] = *s;
    } else {
      next.erase("status");
    }
    api::Child(next, "metadata")["resourceVersion"] = meta.contains("resourceVersion")
                                                          ? meta.at("resourceVersion")
                                                          : old_meta.at("resourceVersion");
    obj = std::move(next);
  } else if (t.subresource == "approval") {
    // Only status.conditions change through /approval (CertificateSigningRequests).
    json::object next = old;
    auto& status = api::Child(next, "status");
    if (const auto* c = api::Find(obj, {"status", "conditions"})) {
      status["conditions"] = *c;
    } else {
      status.erase("conditions");
    }
    api::Child(next, "metadata")["resourceVersion"] = meta.contains("resourceVersion")
                                                          ? meta.at("resourceVersion")
                                                          : old_meta.at("resourceVersion");
    obj = std::move(next);
  } else if (t.type->has_status && t.subresource != "binding") {
    if (const auto* s = old.if_contains("status")) {
      obj["status"] = *s;
    } else {
      obj.erase("status");
    }
  }
  if (t.type->kind == "Service") {
    // Allocated values carry over when the update leaves them out (patchAllocatedValues).
    auto& spec = api::Child(obj, "spec");
    for (std::string_view f : {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"}) {
      const auto* was = api::Find(old, {"spec", f});
      if (was && !spec.contains(f)) spec[f] = *was;
    }
  }
  if (HasGeneration(*t.type) && SpecPart(obj) != SpecPart(old)) {
    const auto* g = old_meta.if_contains("generation");
    api::Child(obj, "metadata")["generation"] = (g && g->is_int64() ? g->get_int64() : 0) + 1;
  }
  AdmissionRequest admission{&ctx, &t, &req, "UPDATE", &old, DryRun(req)};
  if (ctx.admission) {
    if (auto err = ctx.admission->Mutate(admission, obj)) return *err;
  }
  if (auto err = ValidateAndDefault(t, obj, &old)) return *err;
  if (req.user) {
    for (auto& w : api::WarningsFor(*t.type, obj, &old)) req.Warn(std::move(w));
  }
  if (ctx.admission) {
    if (auto err = ctx.admission->Validate(admission, obj)) return *err;
  }
  // Server-side apply records its own entry (api::Apply).
  if (!req.Header("content-type").starts_with("application/apply-patch")) {
    api::RecordUpdate(*t.type, FieldManager(req), &old, obj);
  }
  return std::nullopt;
}

namespace {

// Whether `a` and `b` are equal but for metadata.resourceVersion (no copies:
// every update asks this of the whole object).
bool SameIgnoringVersion(const json::object& a, const json::object& b) {
  auto same_metadata = [](const json::object& ma, const json::object& mb) {
    auto fields = [](const json::object& m) {
      return m.size() - (m.contains("resourceVersion") ? 1 : 0);
    };
    if (fields(ma) != fields(mb)) return false;
    for (const auto& [k, v] : ma) {
      if (k == "resourceVersion") continue;
      const auto* w = mb.if_contains(k);
      if (!w || *w != v) return false;
    }
    return true;
  };
  auto fields = [](const json::object& o) { return o.size() + (o.contains("metadata") ? 0 : 1); };
  if (fields(a) != fields(b)) return false;
  for (const auto& [k, v] : a) {
    const auto* w = b.if_contains(k);
    if (k == "metadata") {
      static const json::object kNone;
      const json::object& ma = v.is_object() ? v.get_object() : kNone;
      const json::object& mb = w && w->is_object() ? w->get_object() : kNone;
      if (!same_metadata(ma, mb)) return false;
    } else if (!w || *w != v) {
      return false;
    }
  }
  return true;
}

// Whether an object marked for deletion has nothing left holding it.
bool ReadyToRemove(const json::object& obj) {
  const json::value v(obj);
  if (api::GetString(v, {"metadata", "deletionTimestamp"}).empty()) return false;
  const auto* f = api::Find(v, {"metadata", "finalizers"});
  bool no_finalizers = !f || !f->is_array() || f->get_array().empty();
  if (!no_finalizers) return false;
  // A namespace also waits for its spec.finalizers (the namespace controller's "kubernetes").
  const auto* spec_f = api::Find(obj, {"spec", "finalizers"});
  if (obj.contains("kind") && obj.at("kind") == "Namespace" && spec_f && spec_f->is_array() &&
      !spec_f->get_array().empty())
    return false;
  // A pod bound to a node waits for the node to confirm termination (grace period > 0).
  if (obj.contains("kind") && obj.at("kind") == "Pod" &&
      !api::GetString(v, {"spec", "nodeName"}).empty()) {
    const auto* g = api::Find(v, {"metadata", "deletionGracePeriodSeconds"});
    return g && g->is_int64() && g->get_int64() == 0;
  }
  return true;
}

// What one attempt of GuaranteedUpdate came to.
struct UpdateAttempt {
  enum class Outcome {
    kStored,   // The store decided: written, or refused by the store itself.
    kDecided,  // Decided from the object read alone (refused, or nothing to change).
    kRetry,    // Someone else wrote first: read again.
  };
  Outcome outcome = Outcome::kRetry;
  ApiOr<json::value> result = json::value();
};

// One read-modify-write of the object `current` (at kv.mod_revision).
UpdateAttempt TryUpdate(const Context& ctx, const Target& t, const Request& req,
                        const Mutation& mutate, bool full, const std::string& key,
                        const store::KeyValue& kv, json::value current) {
  using Outcome = UpdateAttempt::Outcome;
  auto decided = [](ApiOr<json::value> r) {
    return UpdateAttempt{Outcome::kDecided, std::move(r)};
  };
  auto stored = [](ApiOr<json::value> r) { return UpdateAttempt{Outcome::kStored, std::move(r)}; };
  auto retry = [] { return UpdateAttempt{Outcome::kRetry}; };
  const json::object& old = current.get_object();
  json::object obj = old;
  // The mutation sees no resourceVersion: one present afterwards came from the
  // caller and is a precondition (optimistic concurrency).
  api::Child(obj, "metadata").erase("resourceVersion");
  if (auto err = mutate(obj)) return decided(*err);
  std::string want(api::GetString(obj, {"metadata", "resourceVersion"}));
  if (!want.empty() && want != std::to_string(kv.mod_revision))
    return decided(api::ModifiedConflict(*t.type, t.name));
  if (full) {
    if (auto err = PrepareUpdate(ctx, t, req, old, obj)) return decided(*err);
  }
  if (SameIgnoringVersion(obj, old)) return decided(std::move(current));
  if (DryRun(req)) {
    Reservation shown;
    if (auto err = AllocateServiceValues(ctx.service_cidr, *t.type, obj, &old, &shown))
      return decided(*err);
    if (auto err = ChargeQuotas(ctx, t, obj, &old, nullptr)) return decided(*err);
    return decided(json::value(std::move(obj)));
  }
  if (ReadyToRemove(obj)) {
    auto removed = RemoveObject(ctx, t, kv, obj);
    if (removed.ok()) {
      api::Child(obj, "metadata")["resourceVersion"] = std::to_string(*removed);
      return stored(json::value(std::move(obj)));
    }
    if (removed.error().code == 409) return retry();
    return stored(removed.error());
  }
  Reservation charge;
  if (auto err = AllocateServiceValues(ctx.service_cidr, *t.type, obj, &old, &charge))
    return decided(*err);
  auto encoded = EncodeForStore(obj);
  if (!encoded.ok()) return decided(encoded.error());
  if (full) {
    if (auto err = ChargeQuotas(ctx, t, obj, &old, &charge)) return decided(*err);
  }
  if (!charge.ops.empty()) {
    // The object and the quotas it now uses more of, in one transaction.
    store::TxnRequest txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(key, kv.mod_revision));
    txn.compares.insert(txn.compares.end(), charge.compares.begin(), charge.compares.end());
    txn.success.push_back(store::TxnOp::Put(key, std::move(*encoded)));
    txn.success.insert(txn.success.end(), charge.ops.begin(), charge.ops.end());
    auto res = ctx.store->Txn(txn);
    if (!res.ok()) return stored(api::FromStatus(res.status()));
    if (res->succeeded) {
      api::Child(obj, "metadata")["resourceVersion"] = std::to_string(res->revision);
      return stored(json::value(std::move(obj)));
    }
    bool taken = false;
    if (auto err = RecheckClaims(ctx.store, *t.type, obj, charge, &taken)) return stored(*err);
    if (!taken && !want.empty() && !RevisionsMoved(ctx, charge.compares))
      return stored(api::ModifiedConflict(*t.type, t.name));
    return retry();
  }
  auto updated = ctx.store->Update(key, *encoded, kv.mod_revision);
  if (updated.ok()) {
    api::Child(obj, "metadata")["resourceVersion"] = std::to_string(updated->mod_revision);
    return stored(json::value(std::move(obj)));
  }
  if (updated.status().code() == Code::kNotFound) return stored(api::NotFound(*t.type, t.name));
  if (updated.status().code() != Code::kConflict) return stored(api::FromStatus(updated.status()));
  // Someone else wrote first: a caller that pinned the version loses, others retry.
  if (!want.empty()) return stored(api::ModifiedConflict(*t.type, t.name));
  return retry();
}

}  // namespace

ApiOr<json::value> GuaranteedUpdate(const Context& ctx, const Target& t, const Request& req,
                                    const Mutation& mutate, UpdateChecks checks) {
  const bool full = checks == UpdateChecks::kFull;
  const std::string key = t.type->StoreKey(t.ns, t.name);
  for (int attempt = 0; attempt < 16; ++attempt) {
    // The first attempt starts from the watch cache's copy, as kube-apiserver's
    // cacher hands its cached object down to the storage's GuaranteedUpdate: the
    // write is a compare-and-swap on that copy's revision, so a copy the cache
    // has not yet brought up to date costs a retry, never a lost write. Whatever
    // the copy alone decides (a failed mutation, precondition, validation, quota
    // or allocation; nothing to change) is decided again from the store.
    ObjectPtr cached =
        attempt == 0 && ctx.cache != nullptr && !DryRun(req) ? ctx.cache->Get(key) : nullptr;
    const bool from_cache = cached != nullptr;
    ApiOr<store::KeyValue> kv = store::KeyValue{};
    ApiOr<json::value> current = json::value();
    if (from_cache) {
      kv->key = key;
      kv->mod_revision = cached->revision;
      current = DecodeCached(*cached);
    } else {
      kv = ReadObject(ctx, t);
      if (!kv.ok()) return kv.error();
      current = DecodeStored(*kv);
    }
    if (!current.ok()) return current.error();
    UpdateAttempt done = TryUpdate(ctx, t, req, mutate, full, key, *kv, std::move(*current));
    using Outcome = UpdateAttempt::Outcome;
    if (done.outcome == Outcome::kRetry) continue;
    if (done.outcome == Outcome::kDecided && from_cache) continue;
    return std::move(done.result);
  }
  return api::ModifiedConflict(*t.type, t.name);
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) out.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

std::string RequestVerb(const Request& req, bool named) {
  const std::string& m = req.method;
  if (m == "GET") return req.QueryBool("watch") ? "watch" : (named ? "get" : "list");
  if (m == "POST") return "create";
  if (m == "PUT") return "update";
  if (m == "PATCH") return "patch";
  if (m == "DELETE") return named ? "delete" : "deletecollection";
  return "unknown";
}

}  // namespace kiso::apiserver
