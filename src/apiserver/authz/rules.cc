// RBAC's rule semantics: matching a request, breaking rules down and
// covering them (escalation checks), and the 403 message.
#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

#include "api/object.h"
#include "apiserver/authz/authorizer.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

std::vector<std::string> Strings(const json::object& obj, std::string_view key) {
  std::vector<std::string> out;
  if (const auto* v = obj.if_contains(key); v && v->is_array()) {
    for (const auto& s : v->get_array())
      if (s.is_string()) out.emplace_back(s.get_string());
  }
  return out;
}

json::array Array(const std::vector<std::string>& v) {
  json::array out;
  for (const auto& s : v) out.emplace_back(s);
  return out;
}

bool Has(const std::vector<std::string>& list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

bool VerbMatches(const PolicyRule& r, std::string_view verb) {
  return Has(r.verbs, "*") || Has(r.verbs, verb);
}

bool GroupMatches(const PolicyRule& r, std::string_view group) {
  return Has(r.api_groups, "*") || Has(r.api_groups, group);
}

bool ResourceMatches(const PolicyRule& r, std::string_view resource, std::string_view subresource) {
  std::string combined(resource);
  if (!subresource.empty()) combined += "/" + std::string(subresource);
  for (const auto& rr : r.resources) {
    if (rr == "*" || rr == combined) return true;
    // "*/scale": that subresource of every resource.
    if (!subresource.empty() && rr.size() == subresource.size() + 2 && rr.starts_with("*/") &&
        rr.ends_with(subresource))
      return true;
  }
  return false;
}

bool NameMatches(const PolicyRule& r, std::string_view name) {
  return r.resource_names.empty() || (!name.empty() && Has(r.resource_names, name));
}

bool UrlMatches(const PolicyRule& r, std::string_view path) {
  for (const auto& u : r.non_resource_urls) {
    if (u == "*" || u == path) return true;
    if (u.ends_with('*') && path.starts_with(std::string_view(u).substr(0, u.size() - 1)))
      return true;
  }
  return false;
}

std::string Quoted(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += fmt::format("{}{:?}", out.empty() ? "" : " ", s);
  return "[" + out + "]";
}

// One permission of a rule: a rule with one verb, group, resource and name
// (or URL), as RBAC's BreakdownRule makes them.
std::vector<PolicyRule> Breakdown(const PolicyRule& r) {
  std::vector<PolicyRule> out;
  auto names = r.resource_names.empty() ? std::vector<std::string>{""} : r.resource_names;
  for (const auto& g : r.api_groups) {
    for (const auto& res : r.resources) {
      for (const auto& v : r.verbs) {
        for (const auto& n : names) {
          PolicyRule p;
          p.api_groups = {g};
          p.resources = {res};
          p.verbs = {v};
          if (!n.empty()) p.resource_names = {n};
          out.push_back(std::move(p));
        }
      }
    }
  }
  for (const auto& u : r.non_resource_urls) {
    for (const auto& v : r.verbs) {
      PolicyRule p;
      p.non_resource_urls = {u};
      p.verbs = {v};
      out.push_back(std::move(p));
    }
  }
  return out;
}

// Whether `owner` grants all of `one` (a broken-down rule).
bool RuleCovers(const PolicyRule& owner, const PolicyRule& one) {
  auto covers_list = [](const std::vector<std::string>& o, const std::vector<std::string>& s) {
    if (Has(o, "*")) return true;
    return std::all_of(s.begin(), s.end(), [&](const std::string& x) { return Has(o, x); });
  };
  if (!covers_list(owner.verbs, one.verbs)) return false;
  if (!one.non_resource_urls.empty()) {
    for (const auto& u : one.non_resource_urls) {
      bool ok = false;
      for (const auto& ou : owner.non_resource_urls) {
        ok |= ou == "*" || ou == u ||
              (ou.ends_with('*') && u.starts_with(std::string_view(ou).substr(0, ou.size() - 1)));
      }
      if (!ok) return false;
    }
    return true;
  }
  if (!covers_list(owner.api_groups, one.api_groups)) return false;
  for (const auto& res : one.resources) {
    bool ok = Has(owner.resources, "*") || Has(owner.resources, res);
    if (!ok && res.find('/') != std::string::npos) {
      std::string sub = res.substr(res.find('/'));
      ok = Has(owner.resources, "*" + sub);
    }
    if (!ok) return false;
  }
  if (owner.resource_names.empty()) return true;
  return !one.resource_names.empty() && covers_list(owner.resource_names, one.resource_names);
}

}  // namespace

PolicyRule PolicyRule::FromJson(const json::object& rule) {
  PolicyRule r;
  r.verbs = Strings(rule, "verbs");
  r.api_groups = Strings(rule, "apiGroups");
  r.resources = Strings(rule, "resources");
  r.resource_names = Strings(rule, "resourceNames");
  r.non_resource_urls = Strings(rule, "nonResourceURLs");
  return r;
}

json::object PolicyRule::ToJson() const {
  json::object out;
  out["verbs"] = Array(verbs);
  if (!api_groups.empty() || non_resource_urls.empty()) out["apiGroups"] = Array(api_groups);
  if (!resources.empty()) out["resources"] = Array(resources);
  if (!resource_names.empty()) out["resourceNames"] = Array(resource_names);
  if (!non_resource_urls.empty()) out["nonResourceURLs"] = Array(non_resource_urls);
  return out;
}

bool PolicyRule::Allows(const Attributes& a) const {
  if (!VerbMatches(*this, a.verb)) return false;
  if (!a.resource_request) return UrlMatches(*this, a.path);
  return GroupMatches(*this, a.api_group) && ResourceMatches(*this, a.resource, a.subresource) &&
         NameMatches(*this, a.name);
}

std::string PolicyRule::Compact() const {
  std::vector<std::string> parts;
  if (!api_groups.empty()) parts.push_back("APIGroups:" + Quoted(api_groups));
  if (!resources.empty()) parts.push_back("Resources:" + Quoted(resources));
  if (!resource_names.empty()) parts.push_back("ResourceNames:" + Quoted(resource_names));
  if (!non_resource_urls.empty()) parts.push_back("NonResourceURLs:" + Quoted(non_resource_urls));
  parts.push_back("Verbs:" + Quoted(verbs));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return "{" + out + "}";
}

std::vector<PolicyRule> RulesOf(const json::object& role) {
  std::vector<PolicyRule> out;
  if (const auto* rules = role.if_contains("rules"); rules && rules->is_array()) {
    for (const auto& r : rules->get_array())
      if (r.is_object()) out.push_back(PolicyRule::FromJson(r.get_object()));
  }
  return out;
}

bool Covers(const std::vector<PolicyRule>& owner, const std::vector<PolicyRule>& servant,
            std::vector<PolicyRule>* missing) {
  bool all = true;
  for (const auto& s : servant) {
    for (const auto& one : Breakdown(s)) {
      bool covered = std::any_of(owner.begin(), owner.end(),
                                 [&](const PolicyRule& o) { return RuleCovers(o, one); });
      if (!covered) {
        all = false;
        if (missing) missing->push_back(one);
      }
    }
  }
  return all;
}

AuthorizationResult AuthorizerChain::Authorize(const Attributes& a) const {
  if (a.user != nullptr && a.user->InGroup(kMastersGroup)) return {Decision::kAllow, ""};
  std::string reasons;
  for (const Authorizer* authorizer : chain_) {
    AuthorizationResult r = authorizer->Authorize(a);
    if (r.decision != Decision::kNoOpinion) return r;
    if (!r.reason.empty()) reasons += (reasons.empty() ? "" : ", ") + r.reason;
  }
  return {Decision::kDeny, reasons};
}

Attributes NonResourceAttributes(const UserInfo* user, std::string path, std::string_view method) {
  Attributes a;
  a.user = user;
  a.resource_request = false;
  a.path = std::move(path);
  a.verb.reserve(method.size());
  for (unsigned char c : method) a.verb += static_cast<char>(std::tolower(c));
  return a;
}

std::string ForbiddenMessage(const Attributes& a, const std::string& reason) {
  std::string user = a.user ? a.user->name : "";
  std::string why;
  if (!a.resource_request) {
    why = fmt::format("User {:?} cannot {} path {:?}", user, a.verb, a.path);
  } else {
    std::string resource = a.resource;
    if (!a.subresource.empty()) resource += "/" + a.subresource;
    why = a.ns.empty()
              ? fmt::format(
                    "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
                    user, a.verb, resource, a.api_group)
              : fmt::format(
                    "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
                    user, a.verb, resource, a.api_group, a.ns);
  }
  if (!reason.empty()) why += ": " + reason;
  if (!a.resource_request || a.resource.empty()) return "forbidden: " + why;
  std::string qualified = a.api_group.empty() ? a.resource : a.resource + "." + a.api_group;
  if (a.name.empty()) return fmt::format("{} is forbidden: {}", qualified, why);
  return fmt::format("{} {:?} is forbidden: {}", qualified, a.name, why);
}

}  // namespace kiso::apiserver
