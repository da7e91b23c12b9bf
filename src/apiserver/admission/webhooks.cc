// Dynamic admission (admissionregistration.k8s.io/v1): the webhooks of every
// MutatingWebhookConfiguration run in the mutating phase, after the built-in
// plugins, each seeing the object as the ones before it left it (a JSONPatch
// in the response changes it); those of every ValidatingWebhookConfiguration
// in the validating phase. Configurations in name order, webhooks in order.
// A webhook is called when one of its rules matches the request (operation,
// group, version, resource or subresource, scope) and its namespaceSelector
// and objectSelector select it, with an AdmissionReview v1 over HTTPS (its
// clientConfig's url, or its Service — reached at a ready endpoint, the
// certificate checked for <service>.<namespace>.svc — verified against its
// caBundle) within timeoutSeconds (10 by default). A refusal answers as
// upstream does (`admission webhook "x" denied the request: why`, the
// webhook's code or 403); a webhook that cannot be called fails the request
// (500) under failurePolicy Fail and is skipped under Ignore. A dry run calls
// only webhooks without side effects and is refused by any other.
// Deletes are reviewed with the object as oldObject (validating webhooks;
// mutating ones have nothing to change). A mutating webhook whose
// reinvocationPolicy is IfNeeded is called once more, after the others, when
// a webhook after it changed the object (upstream's reinvocation: at most one
// more round). Not yet: matchConditions (CEL; refused at admission), CONNECT.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>

#include "api/object.h"
#include "api/patch.h"
#include "api/selector.h"
#include "api/validation.h"
#include "apiserver/admission/plugins.h"
#include "apiserver/admission/webhook_call.h"
#include "apiserver/authn/user.h"
#include "apiserver/service_resolver.h"
#include "apiserver/verbs/handlers.h"
#include "common/base64.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

constexpr std::string_view kGroup = "admissionregistration.k8s.io";

bool ListHas(const json::value* list, std::string_view v) {
  if (!list || !list->is_array()) return false;
  return std::any_of(list->get_array().begin(), list->get_array().end(), [&](const json::value& e) {
    return e.is_string() && (e.get_string() == "*" || e.get_string() == v);
  });
}

// Whether a rule's resource names the target: "pods", "pods/status", "pods/*",
// "*" (every main resource), "*/status", "*/*".
bool ResourceMatches(const json::value* resources, const Target& t) {
  if (!resources || !resources->is_array()) return false;
  for (const auto& r : resources->get_array()) {
    if (!r.is_string()) continue;
    std::string_view s = r.get_string();
    std::string_view res = s.substr(0, s.find('/'));
    std::string_view sub = s.find('/') == std::string_view::npos ? "" : s.substr(s.find('/') + 1);
    bool res_ok = res == "*" || res == t.type->plural;
    bool sub_ok = sub == "*" || sub == t.subresource;
    if (res_ok && sub_ok) return true;
  }
  return false;
}

bool RuleMatches(const json::value& rule, const Target& t, std::string_view operation) {
  if (!ListHas(api::Find(rule, {"operations"}), operation)) return false;
  if (!ListHas(api::Find(rule, {"apiGroups"}), t.type->group)) return false;
  if (!ListHas(api::Find(rule, {"apiVersions"}), t.type->version)) return false;
  if (!ResourceMatches(api::Find(rule, {"resources"}), t)) return false;
  std::string_view scope = api::GetString(rule, {"scope"});
  if (scope == "Cluster") return !t.type->namespaced;
  if (scope == "Namespaced") return t.type->namespaced;
  return true;
}

// A metav1.LabelSelector against labels; an absent selector selects everything.
bool Selects(const json::value* selector, const api::Labels& labels) {
  if (!selector) return true;
  auto parsed = api::LabelSelector::FromObject(*selector);
  return parsed.ok() && parsed->Matches(labels);
}

struct Call {
  const json::object* webhook;
  bool mutating;
};

class WebhookAdmission : public AdmissionPlugin {
 public:
  explicit WebhookAdmission(bool mutating) : mutating_(mutating) {}
  std::string_view name() const override {
    return mutating_ ? "MutatingAdmissionWebhook" : "ValidatingAdmissionWebhook";
  }

  api::ApiStatus Mutate(const AdmissionRequest& r, json::object& obj) const override {
    if (!mutating_) return std::nullopt;
    return Run(r, obj, &obj);
  }

  api::ApiStatus Validate(const AdmissionRequest& r, const json::object& obj) const override {
    if (mutating_) return std::nullopt;
    return Run(r, obj, nullptr);
  }

 private:
  // `obj` as it stands; `out` the same object when webhooks may change it
  // (mutating), null when they only judge it.
  api::ApiStatus Run(const AdmissionRequest& r, const json::object& obj, json::object* out) const {
    const Target& t = *r.target;
    // Webhooks do not admit changes to webhook configurations (upstream's rule,
    // so that a broken webhook can always be removed).
    if (t.type->group == kGroup) return std::nullopt;
    const api::ResourceType* type = api::FindResource(
        std::string(kGroup), "v1",
        mutating_ ? "mutatingwebhookconfigurations" : "validatingwebhookconfigurations");
    auto configs = ListFromCache(*r.ctx, *type, "");
    if (configs.empty()) return std::nullopt;
    std::sort(configs.begin(), configs.end(), [](const json::object& a, const json::object& b) {
      return api::GetString(a, {"metadata", "name"}) < api::GetString(b, {"metadata", "name"});
    });
    std::optional<api::Labels> ns_labels;
    // Reinvocation (mutating only): the IfNeeded webhooks called since the
    // object last changed, and those a later change calls again.
    std::vector<const json::object*> invoked;
    std::vector<const json::object*> again;
    for (int round = 0; round < 2; ++round) {
      if (round == 1 && again.empty()) break;
      for (const auto& config : configs) {
        const auto* hooks = config.if_contains("webhooks");
        if (!hooks || !hooks->is_array()) continue;
        for (const auto& hook_v : hooks->get_array()) {
          if (!hook_v.is_object()) continue;
          const json::object& hook = hook_v.get_object();
          if (round == 1 && std::find(again.begin(), again.end(), &hook) == again.end()) continue;
          if (!Matches(r, hook, obj, ns_labels)) continue;
          bool changed = false;
          if (auto err = CallOne(r, hook, obj, out, &changed)) return err;
          if (round == 1) continue;
          if (changed) {
            again.insert(again.end(), invoked.begin(), invoked.end());
            invoked.clear();
          }
          if (api::GetString(hook, {"reinvocationPolicy"}) == "IfNeeded") invoked.push_back(&hook);
        }
      }
    }
    return std::nullopt;
  }

  bool Matches(const AdmissionRequest& r, const json::object& hook, const json::object& obj,
               std::optional<api::Labels>& ns_labels) const {
    const Target& t = *r.target;
    const auto* rules = hook.if_contains("rules");
    if (!rules || !rules->is_array()) return false;
    bool any =
        std::any_of(rules->get_array().begin(), rules->get_array().end(),
                    [&](const json::value& rule) { return RuleMatches(rule, t, r.operation); });
    if (!any) return false;
    // objectSelector: the object's labels, or the old object's.
    const auto* object_selector = hook.if_contains("objectSelector");
    if (!Selects(object_selector, api::GetLabels(obj)) &&
        !(r.old && Selects(object_selector, api::GetLabels(*r.old))))
      return false;
    // namespaceSelector: the labels of the object's namespace (a Namespace's
    // own); cluster-scoped objects are always selected.
    const auto* ns_selector = hook.if_contains("namespaceSelector");
    if (!ns_selector) return true;
    if (t.type->group.empty() && t.type->plural == "namespaces")
      return Selects(ns_selector, api::GetLabels(obj));
    if (!t.type->namespaced) return true;
    if (!ns_labels) {
      const api::ResourceType* namespaces = api::FindResource("", "v1", "namespaces");
      auto ns = ReadFromCache(*r.ctx, *namespaces, "", t.ns);
      ns_labels = ns ? api::GetLabels(*ns) : api::Labels{};
    }
    return Selects(ns_selector, *ns_labels);
  }

  // Where the webhook is, as a URL for messages and a target to dial.
  std::optional<WebhookTarget> Resolve(const AdmissionRequest& r, const json::object& hook,
                                       std::string* url, std::string* error) const {
    WebhookTarget target;
    const auto* config = hook.if_contains("clientConfig");
    if (!config || !config->is_object()) {
      *error = "the webhook has no clientConfig";
      return std::nullopt;
    }
    if (const auto* bundle = api::Find(*config, {"caBundle"}); bundle && bundle->is_string()) {
      auto pem = Base64Decode(bundle->get_string());
      if (!pem) {
        *error = "its caBundle is not base64";
        return std::nullopt;
      }
      target.ca_pem = std::move(*pem);
    }
    std::string timeout = fmt::format("timeout={}s", TimeoutSeconds(hook));
    if (auto u = api::GetString(*config, {"url"}); !u.empty()) {
      // https://host[:port][/path]
      std::string_view rest = u;
      if (!rest.starts_with("https://")) {
        *error = fmt::format("url {:?} is not https", u);
        return std::nullopt;
      }
      rest.remove_prefix(8);
      std::string_view authority = rest.substr(0, rest.find('/'));
      std::string_view path = rest.substr(authority.size());
      std::string_view host = authority;
      if (size_t colon = authority.rfind(':');
          colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
        host = authority.substr(0, colon);
        target.port = std::atoi(std::string(authority.substr(colon + 1)).c_str());
      }
      if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
      target.host = std::string(host);
      target.server_name = target.host;
      target.path = std::string(path.empty() ? "/" : path);
      target.path += (target.path.find('?') == std::string::npos ? "?" : "&") + timeout;
      *url = fmt::format("https://{}{}", authority, target.path);
      return target;
    }
    const auto* svc = api::Find(*config, {"service"});
    if (!svc) {
      *error = "its clientConfig has neither url nor service";
      return std::nullopt;
    }
    std::string ns(api::GetString(*svc, {"namespace"}));
    std::string name(api::GetString(*svc, {"name"}));
    int64_t port = 443;
    if (const auto* p = api::Find(*svc, {"port"}); p && p->is_int64()) port = p->get_int64();
    std::string path(api::GetString(*svc, {"path"}));
    target.server_name = fmt::format("{}.{}.svc", name, ns);
    target.path = (path.empty() ? "/" : path) + "?" + timeout;
    *url = fmt::format("https://{}:{}{}", target.server_name, port, target.path);
    auto endpoint = ResolveServiceEndpoint(*r.ctx, ns, name, port);
    if (!endpoint.ok()) {
      *error = endpoint.status().message();
      return std::nullopt;
    }
    target.host = std::move(endpoint->address);
    target.port = endpoint->port;
    return target;
  }

  static int64_t TimeoutSeconds(const json::object& hook) {
    const auto* t = hook.if_contains("timeoutSeconds");
    if (t && t->is_int64() && t->get_int64() >= 1 && t->get_int64() <= 30) return t->get_int64();
    return 10;
  }

  json::object Review(const AdmissionRequest& r, const json::object& obj,
                      const std::string& uid) const {
    const Target& t = *r.target;
    json::object kind{
        {"group", t.type->group}, {"version", t.type->version}, {"kind", t.type->kind}};
    json::object resource{
        {"group", t.type->group}, {"version", t.type->version}, {"resource", t.type->plural}};
    json::object request{
        {"uid", uid},
        {"kind", kind},
        {"resource", resource},
        {"requestKind", kind},
        {"requestResource", resource},
        {"name", api::GetString(obj, {"metadata", "name"})},
        {"operation", r.operation},
        {"object", r.operation == "DELETE" ? json::value(nullptr) : json::value(obj)},
        {"oldObject", r.old ? json::value(*r.old) : json::value(nullptr)},
        {"dryRun", r.dry_run}};
    if (!t.subresource.empty()) {
      request["subResource"] = t.subresource;
      request["requestSubResource"] = t.subresource;
    }
    if (t.type->namespaced) request["namespace"] = t.ns;
    UserInfo user;
    if (const UserInfo* u = r.user()) {
      user = *u;
    } else {
      user.name = "system:apiserver";  // kiso's own controllers, in process.
      user.groups = {std::string(kMastersGroup)};
    }
    request["userInfo"] = user.ToJson();
    std::string_view options = r.operation == "CREATE"   ? "CreateOptions"
                               : r.operation == "DELETE" ? "DeleteOptions"
                                                         : "UpdateOptions";
    request["options"] = json::object{{"kind", options}, {"apiVersion", "meta.k8s.io/v1"}};
    return json::object{{"apiVersion", "admission.k8s.io/v1"},
                        {"kind", "AdmissionReview"},
                        {"request", std::move(request)}};
  }

  // Calls one webhook; `*changed` says whether its patch changed the object.
  api::ApiStatus CallOne(const AdmissionRequest& r, const json::object& hook,
                         const json::object& obj, json::object* out, bool* changed) const {
    std::string name(api::GetString(hook, {"name"}));
    std::string_view side_effects = api::GetString(hook, {"sideEffects"});
    if (r.dry_run && side_effects != "None" && side_effects != "NoneOnDryRun") {
      return api::BadRequest(fmt::format("admission webhook {:?} does not support dry run", name));
    }
    bool ignore = api::GetString(hook, {"failurePolicy"}) == "Ignore";
    auto failed = [&](const std::string& url, const std::string& why) -> api::ApiStatus {
      std::string message = url.empty()
                                ? fmt::format("failed calling webhook {:?}: {}", name, why)
                                : fmt::format(
                                      "failed calling webhook {:?}: failed to call webhook: Post "
                                      "{:?}: {}",
                                      name, url, why);
      if (ignore) {
        spdlog::warn("admission: {} (failurePolicy Ignore)", message);
        return std::nullopt;
      }
      return api::InternalError(message);
    };
    std::string url, error;
    auto target = Resolve(r, hook, &url, &error);
    if (!target) return failed("", error);
    if (out) api::ApplyDefaults(*r.target->type, *out);  // What the webhook sees upstream.
    std::string uid = api::NewUid();
    auto reply = PostWebhook(*target, json::serialize(Review(r, obj, uid)),
                             std::chrono::seconds(TimeoutSeconds(hook)));
    if (!reply.ok()) return failed(url, std::string(reply.status().message()));
    if (reply->status != 200)
      return failed(url, fmt::format("the server responded with status {}", reply->status));
    auto parsed = api::ParseJson(reply->body);
    const json::value* response = parsed.ok() ? api::Find(*parsed, {"response"}) : nullptr;
    if (!response || !response->is_object())
      return failed(url, "the response has no AdmissionReview response");
    if (api::GetString(*response, {"uid"}) != uid) {
      return failed(url, fmt::format("expected response.uid={:?}, got {:?}", uid,
                                     api::GetString(*response, {"uid"})));
    }
    if (const auto* warnings = api::Find(*response, {"warnings"});
        warnings && warnings->is_array()) {
      for (const auto& w : warnings->get_array()) {
        if (w.is_string()) r.req->Warn(std::string(w.get_string()));
      }
    }
    const auto* allowed = api::Find(*response, {"allowed"});
    if (!allowed || !allowed->is_bool() || !allowed->get_bool()) {
      api::ApiError e;
      const auto* code = api::Find(*response, {"status", "code"});
      e.code = code && code->is_int64() && code->get_int64() >= 400 && code->get_int64() < 600
                   ? static_cast<int>(code->get_int64())
                   : 403;
      std::string_view why = api::GetString(*response, {"status", "message"});
      e.message =
          why.empty()
              ? fmt::format("admission webhook {:?} denied the request without explanation", name)
              : fmt::format("admission webhook {:?} denied the request: {}", name, why);
      e.reason = api::GetString(*response, {"status", "reason"});
      if (e.reason.empty() && e.code == 403) e.reason = "Forbidden";
      return e;
    }
    const auto* patch = api::Find(*response, {"patch"});
    if (!patch) return std::nullopt;
    if (!out) return failed(url, "a validating webhook may not return a patch");
    if (api::GetString(*response, {"patchType"}) != "JSONPatch")
      return failed(url, "the patch has no patchType JSONPatch");
    auto decoded = patch->is_string() ? Base64Decode(patch->get_string()) : std::nullopt;
    auto ops = decoded ? api::ParseJson(*decoded)
                       : Result<json::value>(MakeStatus(Code::kInvalidArgument, "not base64"));
    if (!ops.ok()) return failed(url, "the patch is not base64 JSON");
    auto patched = api::ApplyJsonPatch(json::value(obj), *ops);
    if (!patched.ok() || !patched->is_object()) {
      return failed(url, fmt::format("the patch does not apply: {}",
                                     patched.ok() ? "not an object" : patched.status().message()));
    }
    *changed = patched->get_object() != obj;
    *out = std::move(patched->get_object());
    return std::nullopt;
  }

  bool mutating_;
};

}  // namespace

std::unique_ptr<AdmissionPlugin> NewMutatingWebhooks() {
  return std::make_unique<WebhookAdmission>(true);
}
std::unique_ptr<AdmissionPlugin> NewValidatingWebhooks() {
  return std::make_unique<WebhookAdmission>(false);
}

}  // namespace kiso::apiserver
