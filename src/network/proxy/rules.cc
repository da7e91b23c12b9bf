#include "network/proxy/rules.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/hash.h"
#include "network/proxy/maglev.h"

namespace kiso::network::proxy {

namespace {

std::string Hash(std::string_view s) { return fmt::format("{:016x}", Fnv1a64(s)); }

constexpr std::string_view kMasquerade = "mark-for-masquerade";

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

std::string RuleText(const Rule& r) {
  return std::visit(
      Overloaded{
          [](const rule::JumpIfSource& x) {
            return fmt::format("ip saddr {} jump {}", x.ip, x.chain);
          },
          [](const rule::JumpIfLocalSource& x) {
            return fmt::format("fib saddr type local jump {}", x.chain);
          },
          [](const rule::Jump& x) { return "jump " + x.chain; },
          [](const rule::Goto& x) { return "goto " + x.chain; },
          [](const rule::RememberSource& x) {
            return fmt::format("update @{} {{ ip saddr }}", x.set);
          },
          [](const rule::GotoIfRemembered& x) {
            return fmt::format("ip saddr @{} goto {}", x.set, x.chain);
          },
          [](const rule::Dnat& x) {
            return fmt::format("meta l4proto {} dnat to {}:{}", x.protocol, x.ip, x.port);
          },
          [](const rule::Pick& x) {
            std::string out =
                x.by == rule::Pick::By::kSourceHash
                    ? fmt::format("jhash ip saddr mod {} seed {:#x}", x.modulus, kHashSeed)
                : x.by == rule::Pick::By::kMark
                    ? fmt::format("meta mark and {:#x}", kBalancerMarkMask)
                    : fmt::format("numgen {} mod {}",
                                  x.by == rule::Pick::By::kRandom ? "random" : "inc", x.modulus);
            out += " vmap { ";
            for (size_t i = 0; i < x.slots.size(); ++i) {
              const auto& slot = x.slots[i];
              out += i == 0 ? "" : ", ";
              out += x.by == rule::Pick::By::kMark ? fmt::format("{:#x}", slot.first)
                     : slot.first == slot.last     ? std::to_string(slot.first)
                                                   : fmt::format("{}-{}", slot.first, slot.last);
              out += " : goto " + slot.chain;
            }
            return out + " }";
          },
      },
      r);
}

namespace {

std::string KeyText(const MapElement& e) {
  return e.ip.empty() ? fmt::format("{} . {}", e.protocol, e.port)
                      : fmt::format("{} . {} . {}", e.ip, e.protocol, e.port);
}

}  // namespace

std::string Script(std::string_view t, const Transaction& tx) {
  std::string out;
  for (const auto& e : tx.removed)
    out += fmt::format("delete element ip {} {} {{ {} }}\n", t, e.map, KeyText(e));
  for (const auto& s : tx.sets) {
    out +=
        fmt::format("add set ip {} {} {{ type ipv4_addr; flags dynamic,timeout; timeout {}s; }}\n",
                    t, s.name, s.timeout_seconds);
  }
  for (const auto& c : tx.chains)
    out += fmt::format("add chain ip {0} {1}\nflush chain ip {0} {1}\n", t, c.name);
  for (const auto& c : tx.chains) {
    for (const auto& r : c.rules)
      out += fmt::format("add rule ip {} {} {}\n", t, c.name, RuleText(r));
  }
  for (const auto& e : tx.added) {
    out += fmt::format("add element ip {} {} {{ {} : goto {} }}\n", t, e.map, KeyText(e), e.chain);
  }
  for (const auto& c : tx.gone_chains) out += fmt::format("flush chain ip {} {}\n", t, c);
  for (const auto& c : tx.gone_chains) out += fmt::format("delete chain ip {} {}\n", t, c);
  for (const auto& s : tx.gone_sets) out += fmt::format("delete set ip {} {}\n", t, s);
  return out;
}

// The endpoints a path uses: local ones only under a Local policy; the ready
// ones, or when none is ready the serving terminating ones (upstream's
// fallback, so connections still land while a rollout drains).
std::vector<const Endpoint*> UsableEndpoints(const ServicePort& p, bool local_only) {
  std::vector<const Endpoint*> ready, draining;
  for (const auto& e : p.endpoints) {
    if (local_only && !e.local) continue;
    if (e.ready) {
      ready.push_back(&e);
    } else if (e.serving && e.terminating) {
      draining.push_back(&e);
    }
  }
  return ready.empty() ? draining : ready;
}

bool BalancedInSockets(const ServicePort& port) {
  return port.algorithm == Algorithm::kLeastConnections && port.protocol == "tcp" &&
         port.affinity_seconds == 0;
}

std::optional<Algorithm> ParseAlgorithm(std::string_view name) {
  if (name.empty()) return Algorithm::kRandom;
  if (name == "round-robin") return Algorithm::kRoundRobin;
  if (name == "least-connections") return Algorithm::kLeastConnections;
  if (name == "source-ip-hash") return Algorithm::kSourceIpHash;
  if (name == "weighted-round-robin") return Algorithm::kWeightedRoundRobin;
  if (name == "consistent-hash") return Algorithm::kConsistentHash;
  return std::nullopt;
}

struct Ruleset::Parts {
  std::vector<MapElement> elements;
  std::vector<RuleChain> chains;
  std::vector<AffinitySet> sets;
};

Ruleset::Parts Ruleset::PartsOf(const std::string& name, const ServicePort& p) const {
  Parts parts;
  const std::string h = Hash(name);
  auto ep_chain = [&](const Endpoint& e) {
    return fmt::format("ep-{}", Hash(fmt::format("{}@{}:{}", name, e.ip, e.port)));
  };
  auto aff_set = [&](const Endpoint& e) {
    return fmt::format("aff-{}-{}", Hash(fmt::format("{}@{}:{}", name, e.ip, e.port)),
                       p.affinity_seconds);
  };
  // The rules that pick one of `eps`; `outside`: for connections from
  // elsewhere (external IPs, node ports).
  auto dispatch = [&](const std::vector<const Endpoint*>& eps, bool outside) {
    std::vector<Rule> rules;
    if (p.affinity_seconds > 0) {
      for (const auto* e : eps)
        rules.emplace_back(rule::GotoIfRemembered{aff_set(*e), ep_chain(*e)});
    }
    if (eps.size() == 1) {
      rules.emplace_back(rule::Goto{ep_chain(*eps[0])});
      return rules;
    }
    // Least connections from other nodes: the endpoint the tc program chose
    // (socket_balancer.h; the same ports and endpoints it has entries for).
    if (outside && BalancedInSockets(p) && eps.size() <= kBalancerMaxBackends) {
      rule::Pick marked;
      marked.by = rule::Pick::By::kMark;
      for (size_t i = 0; i < eps.size(); ++i) {
        const uint32_t mark = kBalancerMark | (static_cast<uint32_t>(i) << kBalancerMarkShift);
        marked.slots.push_back({mark, mark, ep_chain(*eps[i])});
      }
      rules.emplace_back(std::move(marked));
    }
    rule::Pick pick;
    auto add = [&](uint32_t first, uint32_t last, const Endpoint& e) {
      pick.slots.push_back({first, last, ep_chain(e)});
    };
    switch (p.algorithm) {
      case Algorithm::kRandom:
      case Algorithm::kRoundRobin:
      case Algorithm::kLeastConnections:  // Live counts: socket_balancer.h and the mark
                                          // above; here only what they miss.
      case Algorithm::kSourceIpHash: {
        for (size_t i = 0; i < eps.size(); ++i)
          add(static_cast<uint32_t>(i), static_cast<uint32_t>(i), *eps[i]);
        pick.by = p.algorithm == Algorithm::kRandom         ? rule::Pick::By::kRandom
                  : p.algorithm == Algorithm::kSourceIpHash ? rule::Pick::By::kSourceHash
                                                            : rule::Pick::By::kCounter;
        pick.modulus = static_cast<uint32_t>(eps.size());
        break;
      }
      case Algorithm::kWeightedRoundRobin: {
        // Each endpoint a run of `weight` consecutive connection numbers;
        // weights scaled down alike where their sum leaves 32 bits.
        uint64_t sum = 0;
        for (const auto* e : eps) sum += static_cast<uint64_t>(std::max<int64_t>(e->weight, 1));
        const uint64_t scale = sum / (uint64_t{1} << 31) + 1;
        uint32_t total = 0;
        for (const auto* e : eps) {
          auto w = static_cast<uint32_t>(std::max<uint64_t>(
              static_cast<uint64_t>(std::max<int64_t>(e->weight, 1)) / scale, 1));
          add(total, total + w - 1, *e);
          total += w;
        }
        pick.by = rule::Pick::By::kCounter;
        pick.modulus = total;
        break;
      }
      case Algorithm::kConsistentHash: {
        std::vector<std::string> names;
        names.reserve(eps.size());
        for (const auto* e : eps) names.push_back(fmt::format("{}:{}", e->ip, e->port));
        auto table = MaglevTable(names);
        // Runs of slots with one backend as intervals.
        for (size_t i = 0; i < table.size();) {
          size_t j = i;
          while (j + 1 < table.size() && table[j + 1] == table[i]) ++j;
          add(static_cast<uint32_t>(i), static_cast<uint32_t>(j), *eps[table[i]]);
          i = j + 1;
        }
        pick.by = rule::Pick::By::kSourceHash;
        pick.modulus = static_cast<uint32_t>(table.size());
        break;
      }
    }
    rules.emplace_back(std::move(pick));
    return rules;
  };

  auto internal = UsableEndpoints(p, p.internal_local);
  auto external = UsableEndpoints(p, p.external_local);
  const bool has_external = p.node_port != 0 || !p.external_ips.empty();
  // Endpoint chains: one per endpoint either path uses.
  std::vector<const Endpoint*> used = internal;
  if (has_external) {
    for (const auto* e : external)
      if (std::find(used.begin(), used.end(), e) == used.end()) used.push_back(e);
  }
  const std::string masq(kMasquerade);
  for (const auto* e : used) {
    RuleChain c{ep_chain(*e), {rule::JumpIfSource{e->ip, masq}}};
    if (p.affinity_seconds > 0) {
      c.rules.emplace_back(rule::RememberSource{aff_set(*e)});
      parts.sets.push_back({aff_set(*e), p.affinity_seconds});
    }
    c.rules.emplace_back(rule::Dnat{p.protocol, e->ip, e->port});
    parts.chains.push_back(std::move(c));
  }
  if (!p.cluster_ip.empty()) {
    if (internal.empty()) {
      parts.elements.push_back(
          {"no-endpoint-services", p.cluster_ip, p.protocol, p.port, "reject-chain"});
    } else {
      parts.chains.push_back({"svc-" + h, dispatch(internal, false)});
      parts.elements.push_back({"service-ips", p.cluster_ip, p.protocol, p.port, "svc-" + h});
    }
  }
  if (has_external) {
    if (external.empty()) {
      for (const auto& ip : p.external_ips)
        parts.elements.push_back({"no-endpoint-services", ip, p.protocol, p.port, "reject-chain"});
      if (p.node_port != 0) {
        parts.elements.push_back(
            {"no-endpoint-nodeports", "", p.protocol, p.node_port, "reject-chain"});
      }
    } else {
      // From outside: masqueraded (so replies come back through this node),
      // except under a Local policy, which keeps the client's address; the
      // node's own connections are masqueraded either way.
      RuleChain ext{"ext-" + h, {}};
      if (p.external_local) {
        ext.rules.emplace_back(rule::JumpIfLocalSource{masq});
      } else {
        ext.rules.emplace_back(rule::Jump{masq});
      }
      for (auto& r : dispatch(external, true)) ext.rules.push_back(std::move(r));
      parts.chains.push_back(std::move(ext));
      for (const auto& ip : p.external_ips)
        parts.elements.push_back({"external-ips", ip, p.protocol, p.port, "ext-" + h});
      if (p.node_port != 0)
        parts.elements.push_back({"service-nodeports", "", p.protocol, p.node_port, "ext-" + h});
    }
  }
  return parts;
}

std::string Ruleset::Full(const ServicePorts& ports) const {
  const auto& o = options_;
  std::string out = fmt::format("add table ip {0}\ndelete table ip {0}\n", o.table);
  out += fmt::format(R"(table ip {table} {{
  map service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map external-ips {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map service-nodeports {{ type inet_proto . inet_service : verdict; }}
  map no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map no-endpoint-nodeports {{ type inet_proto . inet_service : verdict; }}
  chain mark-for-masquerade {{
    meta mark set meta mark or 0x4000
  }}
  chain reject-chain {{
    reject
  }}
  chain external-services {{
    ip daddr . meta l4proto . th dport vmap @external-ips
    fib daddr type local meta l4proto . th dport vmap @service-nodeports
  }}
  chain nat-prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname "{bridge}" ip daddr . meta l4proto . th dport vmap @service-ips
    jump external-services
  }}
  chain nat-output {{
    type nat hook output priority -100; policy accept;
    ip daddr . meta l4proto . th dport vmap @service-ips
    jump external-services
  }}
  chain nat-postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    meta mark and 0x4000 != 0 meta mark set meta mark xor 0x4000 masquerade fully-random
    ip saddr {pods} ip daddr {pods} return
    ip saddr {pods} ip daddr {cluster} return
    ip saddr {pods} masquerade fully-random
    oifname "{bridge}" ip saddr 127.0.0.0/8 masquerade fully-random
  }}
  chain endpoints-check {{
    ip daddr . meta l4proto . th dport vmap @no-endpoint-services
    fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports
  }}
  chain filter-input {{
    type filter hook input priority filter - 5; policy accept;
    ct state new jump endpoints-check
  }}
  chain filter-forward {{
    type filter hook forward priority filter - 5; policy accept;
    ct state new jump endpoints-check
  }}
  chain filter-output {{
    type filter hook output priority filter - 5; policy accept;
    ct state new jump endpoints-check
  }}
}}
)",
                     fmt::arg("table", o.table), fmt::arg("bridge", o.bridge),
                     fmt::arg("pods", o.pod_cidr), fmt::arg("cluster", o.cluster_cidr));
  std::set<std::string> changed;
  for (const auto& [name, port] : ports) changed.insert(name);
  out += Script(o.table, Update({}, ports, changed));
  return out;
}

Transaction Ruleset::Update(const ServicePorts& from, const ServicePorts& to,
                            const std::set<std::string>& changed) const {
  std::vector<Parts> before, after;
  for (const auto& name : changed) {
    if (auto it = from.find(name); it != from.end()) before.push_back(PartsOf(name, it->second));
    if (auto it = to.find(name); it != to.end()) after.push_back(PartsOf(name, it->second));
  }
  Transaction tx;
  std::set<std::string> new_chains, new_sets;
  for (auto& p : after) {
    for (auto& c : p.chains) {
      new_chains.insert(c.name);
      tx.chains.push_back(std::move(c));
    }
    for (auto& s : p.sets) {
      new_sets.insert(s.name);
      tx.sets.push_back(std::move(s));
    }
    for (auto& e : p.elements) tx.added.push_back(std::move(e));
  }
  std::set<std::string> gone_sets;
  for (auto& p : before) {
    for (auto& e : p.elements) tx.removed.push_back(std::move(e));
    for (auto& c : p.chains) {
      if (!new_chains.count(c.name)) tx.gone_chains.push_back(std::move(c.name));
    }
    for (auto& s : p.sets) {
      if (!new_sets.count(s.name)) gone_sets.insert(std::move(s.name));
    }
  }
  tx.gone_sets.assign(gone_sets.begin(), gone_sets.end());
  return tx;
}

std::string Ruleset::Delete() const { return fmt::format("delete table ip {}\n", options_.table); }

}  // namespace kiso::network::proxy

namespace kiso::network::proxy {

std::string TableFor(std::string_view bridge) {
  return bridge == "kiso0" ? std::string("kiso") : fmt::format("kiso-{}", bridge);
}

}  // namespace kiso::network::proxy
