#include "network/proxy/rules.h"

#include <fmt/format.h>

#include <algorithm>

#include "network/proxy/maglev.h"

namespace kiso::network::proxy {

namespace {

constexpr std::string_view kHashSeed = "0x6b69736f";  // "kiso": every node hashes alike.

std::string Hash(std::string_view s) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

struct Element {
  std::string map;
  std::string key;
  std::string verdict;
};

struct Chain {
  std::string name;
  std::vector<std::string> rules;
};

}  // namespace

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
  std::vector<Element> elements;
  std::vector<Chain> chains;
  std::vector<std::string> sets;  // Affinity sets: "name { … }".
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
  // The rules that pick one of `eps`.
  auto dispatch = [&](const std::vector<const Endpoint*>& eps) {
    std::vector<std::string> rules;
    if (p.affinity_seconds > 0) {
      for (const auto* e : eps)
        rules.push_back(fmt::format("ip saddr @{} goto {}", aff_set(*e), ep_chain(*e)));
    }
    if (eps.size() == 1) {
      rules.push_back("goto " + ep_chain(*eps[0]));
      return rules;
    }
    std::string map;
    auto add = [&](std::string_view slots, const Endpoint& e) {
      map += fmt::format("{}{} : goto {}", map.empty() ? "" : ", ", slots, ep_chain(e));
    };
    std::string pick;
    switch (p.algorithm) {
      case Algorithm::kRandom:
      case Algorithm::kRoundRobin:
      case Algorithm::kLeastConnections:  // Live counts: socket_balancer.h; here only what it
                                          // misses.
      case Algorithm::kSourceIpHash: {
        for (size_t i = 0; i < eps.size(); ++i) add(std::to_string(i), *eps[i]);
        pick = p.algorithm == Algorithm::kRandom ? fmt::format("numgen random mod {}", eps.size())
               : p.algorithm == Algorithm::kSourceIpHash
                   ? fmt::format("jhash ip saddr mod {} seed {}", eps.size(), kHashSeed)
                   : fmt::format("numgen inc mod {}", eps.size());
        break;
      }
      case Algorithm::kWeightedRoundRobin: {
        // Each endpoint a run of `weight` consecutive connection numbers.
        int64_t total = 0;
        for (const auto* e : eps) {
          add(e->weight == 1 ? std::to_string(total)
                             : fmt::format("{}-{}", total, total + e->weight - 1),
              *e);
          total += e->weight;
        }
        pick = fmt::format("numgen inc mod {}", total);
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
          add(i == j ? std::to_string(i) : fmt::format("{}-{}", i, j), *eps[table[i]]);
          i = j + 1;
        }
        pick = fmt::format("jhash ip saddr mod {} seed {}", table.size(), kHashSeed);
        break;
      }
    }
    rules.push_back(fmt::format("{} vmap {{ {} }}", pick, map));
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
  for (const auto* e : used) {
    Chain c{ep_chain(*e), {fmt::format("ip saddr {} jump mark-for-masquerade", e->ip)}};
    if (p.affinity_seconds > 0) {
      c.rules.push_back(fmt::format("update @{} {{ ip saddr }}", aff_set(*e)));
      parts.sets.push_back(
          fmt::format("{} {{ type ipv4_addr; flags dynamic,timeout; timeout {}s; }}", aff_set(*e),
                      p.affinity_seconds));
    }
    c.rules.push_back(fmt::format("meta l4proto {} dnat to {}:{}", p.protocol, e->ip, e->port));
    parts.chains.push_back(std::move(c));
  }
  if (!p.cluster_ip.empty()) {
    std::string key = fmt::format("{} . {} . {}", p.cluster_ip, p.protocol, p.port);
    if (internal.empty()) {
      parts.elements.push_back({"no-endpoint-services", key, "goto reject-chain"});
    } else {
      parts.chains.push_back({"svc-" + h, dispatch(internal)});
      parts.elements.push_back({"service-ips", key, "goto svc-" + h});
    }
  }
  if (has_external) {
    if (external.empty()) {
      for (const auto& ip : p.external_ips) {
        parts.elements.push_back({"no-endpoint-services",
                                  fmt::format("{} . {} . {}", ip, p.protocol, p.port),
                                  "goto reject-chain"});
      }
      if (p.node_port != 0) {
        parts.elements.push_back({"no-endpoint-nodeports",
                                  fmt::format("{} . {}", p.protocol, p.node_port),
                                  "goto reject-chain"});
      }
    } else {
      // From outside: masqueraded (so replies come back through this node),
      // except under a Local policy, which keeps the client's address; the
      // node's own connections are masqueraded either way.
      Chain ext{"ext-" + h, {}};
      ext.rules.emplace_back(p.external_local ? "fib saddr type local jump mark-for-masquerade"
                                              : "jump mark-for-masquerade");
      for (auto& r : dispatch(external)) ext.rules.push_back(std::move(r));
      parts.chains.push_back(std::move(ext));
      for (const auto& ip : p.external_ips) {
        parts.elements.push_back(
            {"external-ips", fmt::format("{} . {} . {}", ip, p.protocol, p.port), "goto ext-" + h});
      }
      if (p.node_port != 0) {
        parts.elements.push_back({"service-nodeports",
                                  fmt::format("{} . {}", p.protocol, p.node_port),
                                  "goto ext-" + h});
      }
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
  out += Update({}, ports, changed);
  return out;
}

std::string Ruleset::Update(const ServicePorts& from, const ServicePorts& to,
                            const std::set<std::string>& changed) const {
  const std::string& t = options_.table;
  std::vector<Parts> before, after;
  for (const auto& name : changed) {
    if (auto it = from.find(name); it != from.end()) before.push_back(PartsOf(name, it->second));
    if (auto it = to.find(name); it != to.end()) after.push_back(PartsOf(name, it->second));
  }
  std::set<std::string> new_chains, new_sets;
  for (const auto& p : after) {
    for (const auto& c : p.chains) new_chains.insert(c.name);
    for (const auto& s : p.sets) new_sets.insert(s.substr(0, s.find(' ')));
  }
  std::string out;
  // 1. What pointed at the old chains goes.
  for (const auto& p : before) {
    for (const auto& e : p.elements)
      out += fmt::format("delete element ip {} {} {{ {} }}\n", t, e.map, e.key);
  }
  // 2. The new sets and chains, empty, then their rules (a rule's targets exist by then).
  for (const auto& p : after) {
    for (const auto& s : p.sets) out += fmt::format("add set ip {} {}\n", t, s);
    for (const auto& c : p.chains) {
      out += fmt::format("add chain ip {0} {1}\nflush chain ip {0} {1}\n", t, c.name);
    }
  }
  for (const auto& p : after) {
    for (const auto& c : p.chains) {
      for (const auto& r : c.rules) out += fmt::format("add rule ip {} {} {}\n", t, c.name, r);
    }
  }
  // 3. The maps point at them.
  for (const auto& p : after) {
    for (const auto& e : p.elements)
      out += fmt::format("add element ip {} {} {{ {} : {} }}\n", t, e.map, e.key, e.verdict);
  }
  // 4. Old chains and sets nothing uses any more: emptied first (they may refer to each other).
  std::vector<std::string> gone_chains;
  std::set<std::string> gone_sets;
  for (const auto& p : before) {
    for (const auto& c : p.chains) {
      if (!new_chains.count(c.name)) gone_chains.push_back(c.name);
    }
    for (const auto& s : p.sets) {
      std::string n = s.substr(0, s.find(' '));
      if (!new_sets.count(n)) gone_sets.insert(n);
    }
  }
  for (const auto& c : gone_chains) out += fmt::format("flush chain ip {} {}\n", t, c);
  for (const auto& c : gone_chains) out += fmt::format("delete chain ip {} {}\n", t, c);
  for (const auto& s : gone_sets) out += fmt::format("delete set ip {} {}\n", t, s);
  return out;
}

std::string Ruleset::Delete() const { return fmt::format("delete table ip {}\n", options_.table); }

}  // namespace kiso::network::proxy

namespace kiso::network::proxy {

std::string TableFor(std::string_view bridge) {
  return bridge == "kiso0" ? std::string("kiso") : fmt::format("kiso-{}", bridge);
}

}  // namespace kiso::network::proxy
