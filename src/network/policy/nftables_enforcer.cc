#include "network/policy/nftables_enforcer.h"

#include <fmt/format.h>

#include "common/hash.h"
#include "network/proxy/nftables.h"

namespace kiso::network::policy {

namespace {

// A short, stable name for a policy's chain and sets ("ns/name" can be 317
// characters; nft names are bounded): FNV-1a, 48 bits.
std::string IdOf(std::string_view key) {
  return fmt::format("{:012x}", Fnv1a64(key) & 0xffffffffffffULL);
}

std::string Range(uint32_t first, uint32_t last) {
  return first == last ? FormatIp(first) : fmt::format("{}-{}", FormatIp(first), FormatIp(last));
}

constexpr std::string_view kAfterEgress = "after-egress";

// Adds the set `base` with `elements` under a name that ends in a hash of
// them: a set whose elements change is a new set (made with its elements in
// one command) and the old one goes, since libnftables reads every set's
// elements before an `add element` or `delete element` — seconds at a
// thousand policies — and not before an `add set` with its elements.
std::string AddSet(NftState& s, const std::string& base, std::string type, bool interval,
                   std::set<std::string> elements) {
  std::string all;
  for (const auto& e : elements) all += e + ",";
  std::string name = fmt::format("{}-{}", base, IdOf(all));
  auto& set = s.sets[name];
  set.type = std::move(type);
  set.interval = interval;
  set.elements = std::move(elements);
  return name;
}

void AddDirection(NftState& s, const std::string& id, bool ingress, const Direction& d) {
  const char dir = ingress ? 'i' : 'e';
  const std::string chain = fmt::format("p-{}-{}", id, dir);
  // An allowed flow: ingress ends the verdict; egress goes on to the destination's ingress.
  const std::string verdict = ingress ? "accept" : fmt::format("goto {}", kAfterEgress);
  const std::string_view peer_field = ingress ? "saddr" : "daddr";
  auto& rules = s.chains[chain];
  for (size_t r = 0; r < d.rules.size(); ++r) {
    const Rule& rule = d.rules[r];
    const std::string base = fmt::format("p-{}-{}{}", id, dir, r);
    std::string peer;
    if (!rule.any_peer) {
      std::set<std::string> elements;
      for (const auto& range : rule.peers) elements.insert(Range(range.first, range.last));
      peer = fmt::format("ip {} @{} ", peer_field,
                         AddSet(s, base + "-peers", "ipv4_addr", true, std::move(elements)));
    }
    if (rule.ports.any) {
      rules.push_back(peer + verdict);
      continue;
    }
    if (!rule.ports.ranges.empty()) {
      std::set<std::string> elements;
      for (const auto& p : rule.ports.ranges) {
        elements.insert(p.first == p.last
                            ? fmt::format("{} . {}", ProtocolName(p.protocol), p.first)
                            : fmt::format("{} . {}-{}", ProtocolName(p.protocol), p.first, p.last));
      }
      std::string name =
          AddSet(s, base + "-ports", "inet_proto . inet_service", true, std::move(elements));
      rules.push_back(fmt::format("{}meta l4proto . th dport @{} {}", peer, name, verdict));
    }
    if (!rule.ports.named.empty()) {
      std::set<std::string> elements;
      for (const auto& p : rule.ports.named) {
        elements.insert(
            fmt::format("{} . {} . {}", FormatIp(p.ip), ProtocolName(p.protocol), p.port));
      }
      std::string name = AddSet(s, base + "-named", "ipv4_addr . inet_proto . inet_service", false,
                                std::move(elements));
      rules.push_back(
          fmt::format("{}ip daddr . meta l4proto . th dport @{} {}", peer, name, verdict));
    }
  }
}

// A refusal that fails the client at once: a reset for TCP, ICMP otherwise.
const std::vector<std::string> kRefuse = {"meta l4proto tcp reject with tcp reset",
                                          "reject with icmp type admin-prohibited"};

std::string SetDecl(const NftState::Set& set) {
  return fmt::format("type {};{}", set.type, set.interval ? " flags interval;" : "");
}

std::string Elements(const std::set<std::string>& elements);

std::string AddSetCommand(std::string_view table, const std::string& name,
                          const NftState::Set& set) {
  if (set.elements.empty())
    return fmt::format("add set ip {} {} {{ {} }}\n", table, name, SetDecl(set));
  return fmt::format("add set ip {} {} {{ {} elements = {{ {} }}; }}\n", table, name, SetDecl(set),
                     Elements(set.elements));
}

std::string Elements(const std::set<std::string>& elements) {
  std::string out;
  for (const auto& e : elements) {
    if (!out.empty()) out += ", ";
    out += e;
  }
  return out;
}

}  // namespace

std::string PolicyTable(std::string_view bridge) {
  return bridge == "kiso0" ? std::string("kiso-policy") : fmt::format("kiso-policy-{}", bridge);
}

namespace {

// The sets and chain of one policy.
NftState PolicyState(const std::string& key, const Compiled& c) {
  NftState s;
  const std::string id = IdOf(key);
  if (c.ingress) AddDirection(s, id, true, *c.ingress);
  if (c.egress) AddDirection(s, id, false, *c.egress);
  return s;
}

// Adds the chain of pod `ip` in one direction, with its map element: a jump to
// the chain of each policy of `model` isolating it that way, then the refusal.
void AddPodChain(NftState& s, const Model& model, uint32_t ip, bool ingress) {
  std::vector<std::string> rules;
  for (const auto& [key, c] : model) {
    const auto& d = ingress ? c.ingress : c.egress;
    if (d && std::binary_search(d->pods.begin(), d->pods.end(), ip))
      rules.push_back(fmt::format("jump p-{}-{}", IdOf(key), ingress ? 'i' : 'e'));
  }
  if (rules.empty()) return;
  rules.insert(rules.end(), kRefuse.begin(), kRefuse.end());
  std::string chain = fmt::format("pod-{:08x}-{}", ip, ingress ? "in" : "eg");
  s.chains[chain] = std::move(rules);
  (ingress ? s.in_pods : s.eg_pods)[FormatIp(ip)] = chain;
}

void Merge(NftState& into, NftState part) {
  into.sets.merge(part.sets);
  into.chains.merge(part.chains);
  into.eg_pods.merge(part.eg_pods);
  into.in_pods.merge(part.in_pods);
}

}  // namespace

NftState StateOf(const Model& model) {
  NftState s;
  std::set<std::pair<uint32_t, bool>> pods;
  for (const auto& [key, c] : model) {
    Merge(s, PolicyState(key, c));
    for (bool ingress : {true, false}) {
      const auto& d = ingress ? c.ingress : c.egress;
      if (d)
        for (uint32_t ip : d->pods) pods.emplace(ip, ingress);
    }
  }
  for (const auto& [ip, ingress] : pods) AddPodChain(s, model, ip, ingress);
  return s;
}

std::string UpdateScriptFor(std::string_view table, const Model& from, const Model& to,
                            const std::set<std::string>& changed) {
  // Both sides restricted to what the change can touch: the changed
  // policies' sets and chains, and the chains of the pods they isolate(d).
  NftState before, after;
  std::set<std::pair<uint32_t, bool>> pods;
  for (const auto& key : changed) {
    for (auto [model, side] : std::initializer_list<std::pair<const Model*, NftState*>>{
             {&from, &before}, {&to, &after}}) {
      auto it = model->find(key);
      if (it == model->end()) continue;
      Merge(*side, PolicyState(key, it->second));
      for (bool ingress : {true, false}) {
        const auto& d = ingress ? it->second.ingress : it->second.egress;
        if (d)
          for (uint32_t ip : d->pods) pods.emplace(ip, ingress);
      }
    }
  }
  for (const auto& [ip, ingress] : pods) {
    AddPodChain(before, from, ip, ingress);
    AddPodChain(after, to, ip, ingress);
  }
  return UpdateScript(table, before, after);
}

std::string FullScript(std::string_view table, std::string_view bridge, const NftState& state) {
  std::string out = fmt::format("add table ip {0}\ndelete table ip {0}\n", table);
  out += fmt::format(R"(table ip {table} {{
  map eg-pods {{ type ipv4_addr : verdict; }}
  map in-pods {{ type ipv4_addr : verdict; }}
  chain {after} {{
    ip daddr vmap @in-pods
    accept
  }}
  chain check {{
    ip saddr vmap @eg-pods
    goto {after}
  }}
  chain filter-forward {{
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    goto check
  }}
  chain filter-input {{
    type filter hook input priority filter; policy accept;
    ct state established,related accept
    iifname "{bridge}" ip saddr vmap @eg-pods
  }}
}}
)",
                     fmt::arg("table", table), fmt::arg("bridge", bridge),
                     fmt::arg("after", kAfterEgress));
  out += UpdateScript(table, NftState{}, state);
  return out;
}

std::string UpdateScript(std::string_view table, const NftState& from, const NftState& to) {
  std::string out;
  // 1. What stops referring to chains and sets: map elements and rewritten chains' rules.
  for (auto [map, was, is] : {std::tuple{"eg-pods", &from.eg_pods, &to.eg_pods},
                              std::tuple{"in-pods", &from.in_pods, &to.in_pods}}) {
    for (const auto& [ip, chain] : *was) {
      auto it = is->find(ip);
      if (it == is->end() || it->second != chain)
        out += fmt::format("delete element ip {} {} {{ {} }}\n", table, map, ip);
    }
  }
  for (const auto& [name, rules] : from.chains) {
    auto it = to.chains.find(name);
    if (it == to.chains.end() || it->second != rules)
      out += fmt::format("flush chain ip {} {}\n", table, name);
  }
  // 2. New sets, with their elements (a set's name says its elements: see AddSet).
  for (const auto& [name, set] : to.sets) {
    if (!from.sets.count(name)) out += AddSetCommand(table, name, set);
  }
  // 3. Chains: new ones, then every new or rewritten chain's rules (a pod's
  // chain jumps to policies' chains, so those exist by then).
  for (const auto& [name, rules] : to.chains) {
    if (!from.chains.count(name)) out += fmt::format("add chain ip {} {}\n", table, name);
  }
  // 4. Sets gone, now that no rule refers to them.
  for (const auto& [name, set] : from.sets) {
    if (!to.sets.count(name)) out += fmt::format("delete set ip {} {}\n", table, name);
  }
  for (const auto& [name, rules] : to.chains) {
    auto it = from.chains.find(name);
    if (it != from.chains.end() && it->second == rules) continue;
    for (const auto& r : rules) out += fmt::format("add rule ip {} {} {}\n", table, name, r);
  }
  // 5. Map elements to the chains, then chains no longer used.
  for (auto [map, was, is] : {std::tuple{"eg-pods", &from.eg_pods, &to.eg_pods},
                              std::tuple{"in-pods", &from.in_pods, &to.in_pods}}) {
    for (const auto& [ip, chain] : *is) {
      auto it = was->find(ip);
      if (it == was->end() || it->second != chain)
        out += fmt::format("add element ip {} {} {{ {} : goto {} }}\n", table, map, ip, chain);
    }
  }
  for (const auto& [name, rules] : from.chains) {
    if (!to.chains.count(name)) out += fmt::format("delete chain ip {} {}\n", table, name);
  }
  return out;
}

namespace {

class NftablesEnforcer final : public Enforcer {
 public:
  explicit NftablesEnforcer(const EnforcerOptions& options)
      : table_(PolicyTable(options.bridge)), bridge_(options.bridge) {}
  std::string_view name() const override { return "nftables"; }

  Status Full(const Model& model) override {
    return nft_.Run(FullScript(table_, bridge_, StateOf(model)));
  }

  Status Update(const Model& from, const Model& to, const std::set<std::string>& changed) override {
    std::string script = UpdateScriptFor(table_, from, to, changed);
    return script.empty() ? Status::Ok() : nft_.Run(script);
  }

  Status Remove() override {
    return nft_.Run(fmt::format("add table ip {0}\ndelete table ip {0}\n", table_));
  }

 private:
  std::string table_, bridge_;
  proxy::Nftables nft_;
};

}  // namespace

Result<std::unique_ptr<Enforcer>> NewNftablesEnforcer(const EnforcerOptions& options) {
  return std::unique_ptr<Enforcer>(std::make_unique<NftablesEnforcer>(options));
}

}  // namespace kiso::network::policy
