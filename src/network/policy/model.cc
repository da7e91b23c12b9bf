#include "network/policy/model.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>

#include "api/selector.h"
#include "common/cidr.h"

namespace kiso::network::policy {

namespace json = boost::json;

Result<uint32_t> ParseIp(std::string_view text) {
  auto ip = ParseIpv4(text);
  if (!ip) return MakeStatus(Code::kInvalidArgument, "{:?} is not an IPv4 address", text);
  return *ip;
}

std::string FormatIp(uint32_t ip) { return FormatIpv4(ip); }

Result<IpRange> ParseCidr(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos)
    return MakeStatus(Code::kInvalidArgument, "{:?} is not a CIDR (address/bits)", text);
  KISO_ASSIGN_OR_RETURN(uint32_t ip, ParseIp(text.substr(0, slash)));
  std::string_view bits_text = text.substr(slash + 1);
  unsigned bits = 0;
  auto [end, ec] = std::from_chars(bits_text.data(), bits_text.data() + bits_text.size(), bits);
  if (ec != std::errc() || end != bits_text.data() + bits_text.size() || bits > 32 ||
      bits_text.empty())
    return MakeStatus(Code::kInvalidArgument, "{:?} is not a CIDR (address/bits)", text);
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return IpRange{ip & mask, (ip & mask) | ~mask};
}

IpRanges Merge(std::vector<IpRange> ranges) {
  std::sort(ranges.begin(), ranges.end());
  IpRanges out;
  for (const auto& r : ranges) {
    if (!out.empty() && (out.back().last == UINT32_MAX || r.first <= out.back().last + 1)) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

IpRanges Subtract(const IpRanges& from, const IpRanges& minus) {
  IpRanges out;
  for (IpRange r : from) {
    bool left = true;
    for (const auto& m : minus) {
      if (m.last < r.first || m.first > r.last) continue;
      if (m.first > r.first) out.push_back({r.first, m.first - 1});
      if (m.last >= r.last) {
        left = false;
        break;
      }
      r.first = m.last + 1;
    }
    if (left) out.push_back(r);
  }
  return out;
}

bool Contains(const IpRanges& ranges, uint32_t ip) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), ip,
                             [](uint32_t v, const IpRange& r) { return v < r.first; });
  return it != ranges.begin() && std::prev(it)->last >= ip;
}

std::optional<uint8_t> ParseProtocol(std::string_view name) {
  if (name.empty() || name == "TCP") return kTcp;
  if (name == "UDP") return kUdp;
  if (name == "SCTP") return kSctp;
  return std::nullopt;
}

std::string_view ProtocolName(uint8_t protocol) {
  switch (protocol) {
    case kTcp:
      return "tcp";
    case kUdp:
      return "udp";
    case kSctp:
      return "sctp";
    default:
      return "?";
  }
}

bool Ports::Matches(uint32_t dst, uint8_t protocol, uint16_t port) const {
  if (any) return true;
  for (const auto& r : ranges)
    if (r.protocol == protocol && port >= r.first && port <= r.last) return true;
  return std::binary_search(named.begin(), named.end(), PodPort{dst, protocol, port});
}

std::optional<Pod> PodOf(const json::value& pod, std::string_view node_name) {
  const json::value* spec = api::Find(pod, {"spec"});
  if (!spec) return std::nullopt;
  if (const auto* h = api::Find(*spec, {"hostNetwork"}); h && h->is_bool() && h->get_bool())
    return std::nullopt;
  std::string_view phase = api::GetString(pod, {"status", "phase"});
  if (phase == "Succeeded" || phase == "Failed") return std::nullopt;
  auto ip = ParseIp(api::GetString(pod, {"status", "podIP"}));
  if (!ip.ok()) return std::nullopt;
  Pod out;
  out.ns = std::string(api::GetString(pod, {"metadata", "namespace"}));
  out.labels = api::GetLabels(pod);
  out.ip = *ip;
  out.local = !node_name.empty() && api::GetString(*spec, {"nodeName"}) == node_name;
  for (const char* list : {"initContainers", "containers"}) {
    for (const auto& c : api::GetArray(*spec, {list})) {
      for (const auto& p : api::GetArray(c, {"ports"})) {
        std::string_view name = api::GetString(p, {"name"});
        int64_t number = api::GetInt(p, {"containerPort"});
        auto protocol = ParseProtocol(api::GetString(p, {"protocol"}));
        if (name.empty() || number <= 0 || number > 65535 || !protocol) continue;
        out.ports.emplace(std::string(name), std::pair{*protocol, static_cast<uint16_t>(number)});
      }
    }
  }
  return out;
}

namespace {

// A selector field as upstream reads it: absent is nullopt (not given), `{}`
// selects everything.
Result<std::optional<api::LabelSelector>> SelectorAt(const json::value& v, std::string_view key) {
  const json::value* s = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  if (!s || s->is_null()) return std::optional<api::LabelSelector>();
  KISO_ASSIGN_OR_RETURN(auto selector, api::LabelSelector::FromObject(*s));
  return std::optional<api::LabelSelector>(std::move(selector));
}

// The pods a peer (podSelector / namespaceSelector / both) selects.
template <typename Fn>
void ForEachPeerPod(const Cluster& cluster, std::string_view policy_ns,
                    const std::optional<api::LabelSelector>& pods,
                    const std::optional<api::LabelSelector>& namespaces, Fn&& fn) {
  static const api::Labels kNone;
  for (const auto& [key, pod] : cluster.pods) {
    if (namespaces) {
      auto ns = cluster.namespaces.find(pod.ns);
      if (!namespaces->Matches(ns == cluster.namespaces.end() ? kNone : ns->second)) continue;
    } else if (pod.ns != policy_ns) {
      continue;
    }
    if (pods && !pods->Matches(pod.labels)) continue;
    fn(pod);
  }
}

struct PortSpec {
  uint8_t protocol = kTcp;
  std::optional<std::string> name;  // A named port.
  uint16_t first = 0, last = 65535;
};

Result<std::vector<PortSpec>> PortsOf(const json::value& rule, std::string_view where) {
  std::vector<PortSpec> out;
  for (const auto& p : api::GetArray(rule, {"ports"})) {
    PortSpec s;
    auto protocol = ParseProtocol(api::GetString(p, {"protocol"}));
    if (!protocol) {
      return MakeStatus(Code::kInvalidArgument, "{}.ports: protocol {:?} is not TCP, UDP or SCTP",
                        where, api::GetString(p, {"protocol"}));
    }
    s.protocol = *protocol;
    const json::value* port = api::Find(p, {"port"});
    if (port && port->is_string()) {
      s.name = std::string(port->get_string());
    } else if (port && port->is_int64()) {
      int64_t n = port->get_int64();
      int64_t end = api::GetInt(p, {"endPort"}, n);
      if (n < 1 || n > 65535 || end < n || end > 65535) {
        return MakeStatus(Code::kInvalidArgument, "{}.ports: port {} to {} is not a port range",
                          where, n, end);
      }
      s.first = static_cast<uint16_t>(n);
      s.last = static_cast<uint16_t>(end);
    } else if (port && !port->is_null()) {
      return MakeStatus(Code::kInvalidArgument, "{}.ports: port must be a number or a name", where);
    }
    out.push_back(std::move(s));
  }
  return out;
}

// One rule (`ingress[i]` with `from`, `egress[i]` with `to`) at the node.
Result<Rule> CompileRule(const json::value& r, bool ingress, std::string_view policy_ns,
                         const std::vector<const Pod*>& selected, const Cluster& cluster,
                         std::string_view where) {
  Rule rule;
  KISO_ASSIGN_OR_RETURN(auto ports, PortsOf(r, where));
  // The destination pods a named port resolves at: the selected pods for
  // ingress, the peer pods for egress.
  std::vector<const Pod*> peer_pods;
  std::vector<IpRange> peers;
  const auto& list = api::GetArray(r, {ingress ? "from" : "to"});
  rule.any_peer = list.empty();
  for (const auto& peer : list) {
    if (const json::value* block = api::Find(peer, {"ipBlock"}); block && !block->is_null()) {
      // An IPv6 block holds none of the cluster's (IPv4) addresses.
      if (api::GetString(*block, {"cidr"}).find(':') != std::string_view::npos) continue;
      KISO_ASSIGN_OR_RETURN(IpRange cidr, ParseCidr(api::GetString(*block, {"cidr"})));
      std::vector<IpRange> except;
      for (const auto& e : api::GetArray(*block, {"except"})) {
        KISO_ASSIGN_OR_RETURN(IpRange x, ParseCidr(e.is_string() ? e.get_string() : ""));
        except.push_back(x);
      }
      IpRanges allowed = Subtract({cidr}, Merge(std::move(except)));
      peers.insert(peers.end(), allowed.begin(), allowed.end());
      if (!ingress) {  // A named port at a pod inside the block.
        for (const auto& [key, pod] : cluster.pods)
          if (Contains(allowed, pod.ip)) peer_pods.push_back(&pod);
      }
      continue;
    }
    KISO_ASSIGN_OR_RETURN(auto pod_selector, SelectorAt(peer, "podSelector"));
    KISO_ASSIGN_OR_RETURN(auto ns_selector, SelectorAt(peer, "namespaceSelector"));
    if (!pod_selector && !ns_selector) {
      return MakeStatus(Code::kInvalidArgument,
                        "{}: a peer needs podSelector, namespaceSelector or ipBlock", where);
    }
    ForEachPeerPod(cluster, policy_ns, pod_selector, ns_selector, [&](const Pod& pod) {
      peers.push_back({pod.ip, pod.ip});
      peer_pods.push_back(&pod);
    });
  }
  rule.peers = Merge(std::move(peers));
  if (ports.empty()) return rule;
  rule.ports.any = false;
  std::vector<const Pod*> destinations;
  if (ingress) {
    destinations = selected;
  } else if (rule.any_peer) {
    for (const auto& [key, pod] : cluster.pods) destinations.push_back(&pod);
  } else {
    destinations = peer_pods;
  }
  for (const auto& p : ports) {
    if (!p.name) {
      rule.ports.ranges.push_back({p.protocol, p.first, p.last});
      for (const Pod* d : destinations) {
        for (const auto& [from, to] : d->aliases) {
          if (from >= p.first && from <= p.last)
            rule.ports.named.push_back({d->ip, p.protocol, to});
        }
      }
      continue;
    }
    for (const Pod* d : destinations) {
      auto it = d->ports.find(*p.name);
      if (it != d->ports.end() && it->second.first == p.protocol)
        rule.ports.named.push_back({d->ip, p.protocol, it->second.second});
    }
  }
  auto unique = [](auto& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  };
  unique(rule.ports.ranges);
  unique(rule.ports.named);
  return rule;
}

}  // namespace

Result<Compiled> Compile(const json::value& policy, const Cluster& cluster) {
  const json::value* spec = api::Find(policy, {"spec"});
  if (!spec || !spec->is_object())
    return MakeStatus(Code::kInvalidArgument, "spec: a NetworkPolicy needs one");
  std::string ns(api::GetString(policy, {"metadata", "namespace"}));
  KISO_ASSIGN_OR_RETURN(auto selector, SelectorAt(*spec, "podSelector"));
  std::vector<const Pod*> selected_pods;
  std::vector<uint32_t> selected;
  for (const auto& [key, pod] : cluster.pods) {
    if (pod.local && pod.ns == ns && (!selector || selector->Matches(pod.labels))) {
      selected_pods.push_back(&pod);
      selected.push_back(pod.ip);
    }
  }
  std::sort(selected.begin(), selected.end());
  selected.erase(std::unique(selected.begin(), selected.end()), selected.end());
  // policyTypes: as given, or Ingress plus Egress when egress rules exist.
  bool ingress = false, egress = false;
  const auto& types = api::GetArray(*spec, {"policyTypes"});
  if (types.empty()) {
    ingress = true;
    egress = !api::GetArray(*spec, {"egress"}).empty();
  }
  for (const auto& t : types) {
    std::string_view type = t.is_string() ? std::string_view(t.get_string()) : "";
    if (type == "Ingress") {
      ingress = true;
    } else if (type == "Egress") {
      egress = true;
    } else {
      return MakeStatus(Code::kInvalidArgument, "spec.policyTypes: {:?} is not Ingress or Egress",
                        type);
    }
  }
  Compiled out;
  for (bool in : {true, false}) {
    if (!(in ? ingress : egress)) continue;
    Direction d;
    d.pods = selected;
    // Rules decide nothing here for a policy that isolates none of the
    // node's pods (a pod of its joining makes it compiled anew).
    if (selected.empty()) {
      (in ? out.ingress : out.egress) = std::move(d);
      continue;
    }
    const auto& rules = api::GetArray(*spec, {in ? "ingress" : "egress"});
    for (size_t i = 0; i < rules.size(); ++i) {
      KISO_ASSIGN_OR_RETURN(Rule r,
                            CompileRule(rules[i], in, ns, selected_pods, cluster,
                                        fmt::format("spec.{}[{}]", in ? "ingress" : "egress", i)));
      d.rules.push_back(std::move(r));
    }
    (in ? out.ingress : out.egress) = std::move(d);
  }
  return out;
}

bool Allowed(const Model& model, uint32_t src, uint32_t dst, uint8_t protocol, uint16_t port,
             bool from_node) {
  if (from_node) return true;
  for (bool ingress : {false, true}) {
    const uint32_t self = ingress ? dst : src;
    const uint32_t peer = ingress ? src : dst;
    bool isolated = false, allowed = false;
    for (const auto& [key, c] : model) {
      const auto& d = ingress ? c.ingress : c.egress;
      if (!d || !std::binary_search(d->pods.begin(), d->pods.end(), self)) continue;
      isolated = true;
      for (const auto& r : d->rules) {
        if ((r.any_peer || Contains(r.peers, peer)) && r.ports.Matches(dst, protocol, port)) {
          allowed = true;
          break;
        }
      }
      if (allowed) break;
    }
    if (isolated && !allowed) return false;
  }
  return true;
}

std::set<uint32_t> Isolated(const Model& model, bool ingress) {
  std::set<uint32_t> out;
  for (const auto& [key, c] : model) {
    const auto& d = ingress ? c.ingress : c.egress;
    if (d) out.insert(d->pods.begin(), d->pods.end());
  }
  return out;
}

}  // namespace kiso::network::policy
