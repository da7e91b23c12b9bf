#include "apiserver/service_allocations.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <set>

#include "api/object.h"
#include "common/random.h"

namespace kiso::apiserver {

namespace json = boost::json;

namespace {

// Outside /registry/: not API objects, so the watch cache never sees them.
constexpr std::string_view kIpPrefix = "/kiso/serviceips/";
constexpr std::string_view kPortPrefix = "/kiso/nodeports/";
constexpr int64_t kFirstNodePort = 30000;
constexpr int64_t kLastNodePort = 32767;

// A cluster IP the range can hand out: not its network or broadcast address.
bool InRange(const Ipv4Cidr& range, std::string_view ip) {
  auto a = ParseIpv4(ip);
  return a && range.Contains(*a) && *a != range.base &&
         *a != range.base + static_cast<uint32_t>(range.Size() - 1);
}

bool PortInRange(int64_t port) { return port >= kFirstNodePort && port <= kLastNodePort; }

std::string PortKey(int64_t port) { return fmt::format("{}{}", kPortPrefix, port); }

int64_t IntAt(const json::value& v, std::string_view field) {
  const auto* f = v.is_object() ? v.get_object().if_contains(field) : nullptr;
  return f && f->is_int64() ? f->get_int64() : 0;
}

// The node ports a Service of this shape has: NodePort, and LoadBalancer
// unless spec.allocateLoadBalancerNodePorts is false.
bool HasNodePorts(const json::object& spec) {
  std::string_view type = api::GetString(spec, {"type"});
  if (type == "NodePort") return true;
  if (type != "LoadBalancer") return false;
  const auto* allocate = spec.if_contains("allocateLoadBalancerNodePorts");
  return !(allocate && allocate->is_bool() && !allocate->get_bool());
}

bool HasHealthCheckPort(const json::object& spec) {
  return api::GetString(spec, {"type"}) == "LoadBalancer" &&
         api::GetString(spec, {"externalTrafficPolicy"}) == "Local";
}

api::Cause Taken(const Claim& c, const json::object& obj) {
  const json::value v(obj);
  if (c.port_index == Claim::kClusterIp) {
    std::string ip(api::GetString(v, {"spec", "clusterIP"}));
    return {"FieldValueInvalid",
            fmt::format("Invalid value: []string{{\"{}\"}}: failed to allocate IP {}: provided IP "
                        "is already allocated",
                        ip, ip),
            "spec.clusterIPs"};
  }
  if (c.port_index == Claim::kHealthCheck) {
    return {"FieldValueInvalid",
            fmt::format("Invalid value: {}: provided port is already allocated",
                        IntAt(v.at("spec"), "healthCheckNodePort")),
            "spec.healthCheckNodePort"};
  }
  const auto& port = v.at("spec").at("ports").at(static_cast<size_t>(c.port_index));
  return {
      "FieldValueInvalid",
      fmt::format("Invalid value: {}: provided port is already allocated", IntAt(port, "nodePort")),
      fmt::format("spec.ports[{}].nodePort", c.port_index)};
}

std::string OutOfRange(int64_t port) {
  return fmt::format(
      "Invalid value: {}: provided port is not in the valid range. The range of valid ports is "
      "{}-{}",
      port, kFirstNodePort, kLastNodePort);
}

}  // namespace

api::ApiStatus AllocateServiceValues(const Ipv4Cidr& range, const api::ResourceType& type,
                                     json::object& obj, const json::object* old, Reservation* out) {
  if (type.kind != "Service") return std::nullopt;
  const std::string name(api::GetString(obj, {"metadata", "name"}));
  const std::string owner =
      fmt::format("{}/{}", api::GetString(obj, {"metadata", "namespace"}), name);
  const json::object no_spec;
  const json::object& old_spec = old && old->contains("spec") && old->at("spec").is_object()
                                     ? old->at("spec").get_object()
                                     : no_spec;
  const std::vector<std::string> held =
      old ? OwnedKeys(range, type, *old) : std::vector<std::string>{};
  auto is_held = [&](const std::string& key) {
    return std::find(held.begin(), held.end(), key) != held.end();
  };
  std::vector<api::Cause> causes;
  auto& spec = api::Child(obj, "spec");
  std::set<std::string> keys;  // Everything `obj` holds once written.
  auto claim = [&](std::string key, int port_index, bool user_chosen) {
    if (!keys.insert(key).second || is_held(key)) return;
    out->compares.push_back(store::Compare::Missing(key));
    out->ops.push_back(store::TxnOp::Put(key, owner));
    out->claims.push_back({std::move(key), port_index, user_chosen});
  };

  // The cluster IP.
  std::string_view svc_type = api::GetString(spec, {"type"});
  std::string ip(api::GetString(spec, {"clusterIP"}));
  if (svc_type == "ExternalName") {
    // Turned into an ExternalName Service, it gives back what it held (dropTypeDependentFields).
    if (!ip.empty() && ip == api::GetString(old_spec, {"clusterIP"})) {
      spec.erase("clusterIP");
      spec.erase("clusterIPs");
    }
  } else if (ip == "None") {
    spec["clusterIPs"] = json::array{"None"};
  } else {
    bool chosen = !ip.empty() && ip != api::GetString(old_spec, {"clusterIP"});
    if (chosen && !InRange(range, ip)) {
      causes.push_back({"FieldValueInvalid",
                        fmt::format("Invalid value: \"{}\": provided IP is not in the valid "
                                    "range. The range of valid IPs is {}",
                                    ip, range.ToString()),
                        "spec.clusterIPs"});
    } else {
      if (ip.empty()) {
        // Picked above the first 16 addresses, which Services kiso seeds name
        // (the kubernetes Service's first, the cluster DNS's tenth).
        uint64_t low = std::min<uint64_t>(16, range.Size() / 2);
        ip = range.Address(low + RandomBelow(range.Size() - 1 - low));
      }
      spec["clusterIP"] = ip;
      spec["clusterIPs"] = json::array{json::string(ip)};
      if (!spec.contains("ipFamilies")) spec["ipFamilies"] = json::array{"IPv4"};
      if (!spec.contains("ipFamilyPolicy")) spec["ipFamilyPolicy"] = "SingleStack";
      if (InRange(range, ip)) claim(std::string(kIpPrefix) + ip, Claim::kClusterIp, chosen);
    }
  }

  // Node ports: the ones named, then the ones carried over, then new ones.
  const bool wants_ports = HasNodePorts(spec);
  std::set<int64_t> in_use;
  // A health-check port the manifest names is taken before any is picked at random.
  if (HasHealthCheckPort(spec) && IntAt(spec, "healthCheckNodePort") != 0)
    in_use.insert(IntAt(spec, "healthCheckNodePort"));
  std::set<std::pair<int64_t, std::string>> named;  // (node port, protocol)
  std::vector<json::object*> unset;
  if (auto* ports = spec.if_contains("ports"); ports && ports->is_array()) {
    auto& list = ports->get_array();
    for (size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_object()) continue;
      auto& port = list[i].get_object();
      int64_t np = IntAt(port, "nodePort");
      std::string field = fmt::format("spec.ports[{}].nodePort", i);
      // The same port and protocol in the old Service: what it held.
      int64_t was = 0;
      if (const auto* old_ports = old_spec.if_contains("ports");
          old_ports && old_ports->is_array()) {
        for (const auto& o : old_ports->get_array()) {
          if (IntAt(o, "port") == IntAt(port, "port") &&
              api::GetString(o, {"protocol"}) == api::GetString(port, {"protocol"}))
            was = IntAt(o, "nodePort");
        }
      }
      if (!wants_ports) {
        if (np == 0) continue;
        if (np == was) {
          port.erase("nodePort");  // Left over from the type it had.
          continue;
        }
        if (svc_type != "LoadBalancer") {
          causes.push_back({"FieldValueForbidden",
                            fmt::format("Forbidden: may not be used when `type` is '{}'",
                                        svc_type.empty() ? "ClusterIP" : svc_type),
                            field});
          continue;
        }
      }
      if (np == 0) {
        if (was != 0) {
          port["nodePort"] = was;
          np = was;
        } else {
          unset.push_back(&port);
          continue;
        }
      }
      if (np != was && !PortInRange(np)) {
        causes.push_back({"FieldValueInvalid", OutOfRange(np), field});
        continue;
      }
      if (!named.emplace(np, api::GetString(port, {"protocol"})).second) {
        causes.push_back({"FieldValueDuplicate", fmt::format("Duplicate value: {}", np), field});
        continue;
      }
      in_use.insert(np);
      if (PortInRange(np)) claim(PortKey(np), static_cast<int>(i), np != was);
    }
    for (auto* port : unset) {
      int64_t np = 0;
      do {
        np = kFirstNodePort + static_cast<int64_t>(RandomBelow(
                                  static_cast<uint64_t>(kLastNodePort - kFirstNodePort + 1)));
      } while (in_use.count(np));
      in_use.insert(np);
      (*port)["nodePort"] = np;
      for (size_t i = 0; i < list.size(); ++i) {
        if (&list[i].get_object() == port) claim(PortKey(np), static_cast<int>(i), false);
      }
    }
  }

  // The health-check node port of a LoadBalancer Service with local traffic only.
  int64_t hc = IntAt(spec, "healthCheckNodePort");
  int64_t hc_was = IntAt(old_spec, "healthCheckNodePort");
  if (HasHealthCheckPort(spec)) {
    const bool chosen = hc != 0 && hc != hc_was;
    if (hc == 0) {
      hc = hc_was;
      while (hc == 0 || in_use.count(hc)) {
        hc = kFirstNodePort + static_cast<int64_t>(RandomBelow(
                                  static_cast<uint64_t>(kLastNodePort - kFirstNodePort + 1)));
      }
      spec["healthCheckNodePort"] = hc;
    }
    if (chosen && !PortInRange(hc)) {
      causes.push_back({"FieldValueInvalid", OutOfRange(hc), "spec.healthCheckNodePort"});
    } else if (PortInRange(hc)) {
      claim(PortKey(hc), Claim::kHealthCheck, chosen);
    }
  } else if (hc != 0) {
    if (hc == hc_was) {
      spec.erase("healthCheckNodePort");
    } else {
      causes.push_back({"FieldValueInvalid",
                        fmt::format("Invalid value: {}: may only be set when `type` is "
                                    "'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
                                    hc),
                        "spec.healthCheckNodePort"});
    }
  }
  if (!causes.empty()) return api::Invalid(type, name, std::move(causes));

  // What `old` held and `obj` does not any more is given back.
  for (const auto& key : held) {
    if (!keys.count(key)) out->ops.push_back(store::TxnOp::Delete(store::KeyRange::Single(key)));
  }
  return std::nullopt;
}

api::ApiStatus RecheckClaims(store::Store* store, const api::ResourceType& type, json::object& obj,
                             const Reservation& r, bool* taken) {
  *taken = false;
  const std::string owner = fmt::format("{}/{}", api::GetString(obj, {"metadata", "namespace"}),
                                        api::GetString(obj, {"metadata", "name"}));
  std::vector<api::Cause> causes;
  std::vector<const Claim*> retake;
  for (const auto& c : r.claims) {
    auto kv = store->Get(c.key);
    if (!kv.ok() || kv->value == owner) continue;
    *taken = true;
    if (c.user_chosen) {
      causes.push_back(Taken(c, obj));
    } else {
      retake.push_back(&c);
    }
  }
  if (!causes.empty()) {
    return api::Invalid(type, std::string(api::GetString(obj, {"metadata", "name"})),
                        std::move(causes));
  }
  auto& spec = api::Child(obj, "spec");
  for (const auto* c : retake) {
    if (c->port_index == Claim::kClusterIp) {
      spec.erase("clusterIP");
      spec.erase("clusterIPs");
    } else if (c->port_index == Claim::kHealthCheck) {
      spec.erase("healthCheckNodePort");
    } else {
      spec.at("ports").at(static_cast<size_t>(c->port_index)).as_object().erase("nodePort");
    }
  }
  return std::nullopt;
}

std::vector<std::string> OwnedKeys(const Ipv4Cidr& range, const api::ResourceType& type,
                                   const json::object& obj) {
  std::vector<std::string> out;
  if (type.kind != "Service") return out;
  const json::value v(obj);
  std::string_view ip = api::GetString(v, {"spec", "clusterIP"});
  if (InRange(range, ip)) out.push_back(std::string(kIpPrefix) + std::string(ip));
  const auto* spec = api::Find(v, {"spec"});
  if (!spec || !spec->is_object()) return out;
  auto add = [&](int64_t port) {
    if (!PortInRange(port)) return;
    std::string key = PortKey(port);
    if (std::find(out.begin(), out.end(), key) == out.end()) out.push_back(std::move(key));
  };
  if (const auto* ports = spec->get_object().if_contains("ports"); ports && ports->is_array()) {
    for (const auto& p : ports->get_array()) add(IntAt(p, "nodePort"));
  }
  add(IntAt(*spec, "healthCheckNodePort"));
  return out;
}

}  // namespace kiso::apiserver
