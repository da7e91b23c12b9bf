// The API server's handlers, one verb per file (get.cc, list.cc, watch.cc,
// create.cc, update.cc, patch.cc, delete.cc), plus discovery.cc, openapi.cc
// and table.cc. Each takes the parsed request and returns the response.
#pragma once

#include <boost/json/value.hpp>
#include <functional>
#include <string>

#include "api/errors.h"
#include "api/resources.h"
#include "apiserver/http/http.h"
#include "apiserver/watch_cache.h"
#include "common/cidr.h"
#include "store/store.h"

namespace kiso::apiserver {

class Metrics;
class Authenticator;
class Authorizer;
class Rbac;
class TokenSigner;
class Admission;
class Aggregator;

struct Context {
  store::Store* store = nullptr;
  WatchCache* cache = nullptr;
  Metrics* metrics = nullptr;
  std::string server_address;  // host:port for discovery's serverAddressByClientCIDRs.
  const Authenticator* authn = nullptr;
  const Authorizer* authz = nullptr;  // The whole chain.
  const Rbac* rbac = nullptr;
  const TokenSigner* signer = nullptr;
  const Admission* admission = nullptr;    // Null: no admission beyond validation.
  const Aggregator* aggregator = nullptr;  // Null: no aggregated APIs in discovery.
  Ipv4Cidr service_cidr = *Ipv4Cidr::Parse("10.43.0.0/16");  // Services' cluster IPs.
};

// What the URL names: /api/v1/namespaces/ns/pods/name/status → pods, ns, name, status.
struct Target {
  const api::ResourceType* type = nullptr;
  std::string ns;
  std::string name;
  std::string subresource;
  std::string verb;  // get list watch create update patch delete deletecollection
};

// A path's segments, empty ones dropped: "/apis/apps/v1/" → apis, apps, v1.
std::vector<std::string> SplitPath(std::string_view path);

// The verb of a request for a resource, named or not, as kube-apiserver's
// request info reads it: get/list/watch, create, update, patch, delete,
// deletecollection, or "unknown".
std::string RequestVerb(const Request& req, bool named);

// ---- Responses ----
Response JsonResponse(int status, std::string body);  // body gets a trailing '\n' if missing.
Response ErrorResponse(const api::ApiError& error);
Response ObjectResponse(int status, boost::json::value obj);
// Serialises a response's pending object into its body for the wire: JSON,
// or protobuf when the request accepts only protobuf (a JSON body, too).
void EncodeObject(Response& res, const Request& req);
// True when the Accept header names protobuf and nothing kiso answers in JSON.
bool WantsProtobufOnly(const Request& req);
// The request body as a document: the in-process client's object as is, else
// the bytes parsed as YAML or JSON (strict: duplicate fields are an error).
Result<boost::json::value> ParseBody(const Request& req, bool yaml = false, bool strict = false);

// ---- Object encoding shared by the verbs ----

// The stored form of an object: JSON without metadata.resourceVersion. An
// object larger than a request body may be (api::kMaxDocumentBytes, which a
// patch or managedFields can pass) is 413 RequestEntityTooLarge: nothing a
// request builds may outgrow what a request may send.
api::ApiOr<std::string> EncodeForStore(const boost::json::value& obj);
// A decoding failure as served: 413 for a document past a size limit
// (ResourceExhausted), else 400 with `prefix` before the message.
api::ApiError DecodeError(const Status& status, std::string_view prefix = "");
// A stored value as served: resourceVersion = mod_revision.
api::ApiOr<boost::json::value> DecodeStored(const store::KeyValue& kv);
// Reads one object from the store (linearizable).
api::ApiOr<store::KeyValue> ReadObject(const Context& ctx, const Target& t);
// What a write does with unknown and duplicate fields (?fieldValidation):
// Ignore drops them, Warn (the default) drops them with a Warning header for
// each, Strict refuses the request (400). Unknown fields of built-in kinds are
// dropped as Go's decoder drops them; a custom kind's are pruned.
enum class FieldValidation { kIgnore, kWarn, kStrict };
api::ApiOr<FieldValidation> FieldValidationOf(const Request& req);
// Parses a request body as JSON (or YAML when the content type says so) into an object;
// fieldValidation=Strict turns duplicate and unknown fields into 400, Warn into warnings.
api::ApiOr<boost::json::value> DecodeBody(const Request& req, const Target& t);
// The fields of `obj` that `type` does not have ("spec.x"), in document order.
std::vector<std::string> UnknownFieldsOf(const api::ResourceType& type,
                                         const boost::json::value& obj);
// Applies `mode` to the unknown fields of a decoded write: Strict is 400
// ("strict decoding error: unknown field \"spec.x\"", with `prefix` before
// it), Warn records a warning for each on `req`.
api::ApiStatus CheckUnknownFields(const Request& req, FieldValidation mode,
                                  const api::ResourceType& type, const boost::json::value& obj,
                                  std::string_view prefix = "");
// Checks apiVersion/kind and namespace of a body against the URL.
api::ApiStatus CheckIdentity(const Target& t, boost::json::object& obj);
// The field manager for managedFields: ?fieldManager, else the User-Agent's program name.
std::string FieldManager(const Request& req);
bool DryRun(const Request& req);

// Validates and defaults `obj`; bumps generation against `old`; keeps the parts
// the endpoint may not change (status on the main resource, everything else on /status).
// Admission (ctx.admission) mutates before validation and validates after it.
api::ApiStatus PrepareUpdate(const Context& ctx, const Target& t, const Request& req,
                             const boost::json::object& old, boost::json::object& obj);

// Read-modify-write with optimistic concurrency (kube-apiserver's GuaranteedUpdate):
// `mutate` receives the current object and edits it in place, or fails. Retries
// on a concurrent write unless the caller pinned a resourceVersion. Returns the
// stored object and whether it was created (for apply on a missing object).
// kStorageOnly writes the object as `mutate` leaves it: no admission,
// defaulting, validation, managedFields or quota — what kube-apiserver's pod
// binding does, writing through its storage directly.
using Mutation = std::function<api::ApiStatus(boost::json::object& current)>;
enum class UpdateChecks { kFull, kStorageOnly };
api::ApiOr<boost::json::value> GuaranteedUpdate(const Context& ctx, const Target& t,
                                                const Request& req, const Mutation& mutate,
                                                UpdateChecks checks = UpdateChecks::kFull);

// Stores a new object (create and apply-create): defaults, validates, writes.
api::ApiOr<boost::json::value> CreateObject(const Context& ctx, const Target& t, const Request& req,
                                            boost::json::object obj);

// Deletes a stored object (and the keys it owns) if it is still at kv's
// revision; 409 when it changed, for the caller to re-read. Returns the deletion's revision.
api::ApiOr<store::Revision> RemoveObject(const Context& ctx, const Target& t,
                                         const store::KeyValue& kv, const boost::json::object& obj);

// Objects as the watch cache holds them, parsed (admission and authorization
// read these; they may trail the store by the cache's lag).
std::optional<boost::json::object> ReadFromCache(const Context& ctx, const api::ResourceType& type,
                                                 std::string_view ns, std::string_view name);
std::vector<boost::json::object> ListFromCache(const Context& ctx, const api::ResourceType& type,
                                               std::string_view ns);
// The object in the store (linearizable), parsed; nullopt when there is none.
std::optional<boost::json::object> ReadFromStore(const Context& ctx, const api::ResourceType& type,
                                                 std::string_view ns, std::string_view name);

// ---- Verbs ----
Response HandleGet(const Context& ctx, const Target& t, const Request& req);
Response HandleList(const Context& ctx, const Target& t, const Request& req);
Response HandleWatch(const Context& ctx, const Target& t, const Request& req);
Response HandleCreate(const Context& ctx, const Target& t, const Request& req);
Response HandleUpdate(const Context& ctx, const Target& t, const Request& req);
Response HandlePatch(const Context& ctx, const Target& t, const Request& req);
Response HandleDelete(const Context& ctx, const Target& t, const Request& req);
Response HandleDeleteCollection(const Context& ctx, const Target& t, const Request& req);
Response HandleScale(const Context& ctx, const Target& t, const Request& req);
Response HandleBinding(const Context& ctx, const Target& t, const Request& req);
// POST pods/<name>/eviction (policy/v1 Eviction): the pod is deleted unless the
// PodDisruptionBudget that selects it allows no more disruptions (429).
Response HandleEviction(const Context& ctx, const Target& t, const Request& req);
// A request at a version `t`'s kind is not stored at (convert.cc): its body
// converted to the storage version, `serve` answering it there, the answer
// converted back. Patches are applied at t's version.
Response ServeConverted(const Context& ctx, const Target& t, const Request& req,
                        const std::function<Response(const Target&, const Request&)>& serve);

// ---- Authentication and authorization APIs (authn/reviews.cc, authz/reviews.cc) ----
// POST serviceaccounts/<name>/token: a bound ServiceAccount token.
Response HandleTokenRequest(const Context& ctx, const Target& t, const Request& req);
// TokenReview, SelfSubjectReview, SubjectAccessReview, LocalSubjectAccessReview,
// SelfSubjectAccessReview, SelfSubjectRulesReview: answered, never stored.
Response HandleReview(const Context& ctx, const Target& t, const Request& req);
// /.well-known/openid-configuration and /openid/v1/jwks; nullopt for other paths.
std::optional<Response> HandleOidc(const Context& ctx, const Request& req);

// ---- Discovery and OpenAPI ----
// Answers /api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>; nullopt for other paths.
std::optional<Response> HandleDiscovery(const Context& ctx, const Request& req);
std::optional<Response> HandleOpenApi(const Request& req);

// ---- Tables (meta.k8s.io/v1) ----
// True when the Accept header asks for a Table.
bool WantsTable(const Request& req);
// A Table of `objects` (JSON strings) for `type`; includeObject per the request.
std::string RenderTable(const api::ResourceType& type, const std::vector<ObjectPtr>& objects,
                        const Request& req, const std::string& resource_version,
                        const std::string& continue_token, bool with_columns);

}  // namespace kiso::apiserver
