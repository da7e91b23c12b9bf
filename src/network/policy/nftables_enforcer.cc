#include "network/policy/nftables_enforcer.h"

#include <fmt/format.h>

#include "network/proxy/nftables.h"

namespace kiso::network::policy {

namespace {

// A short, stable name for a policy's chain and sets ("ns/name" can be 317
// characters; nft names are bounded): FNV-1a, 48 bits.
std::string IdOf(std::string_view key) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:012x}", h & 0xffffffffffffULL);
}

std::string Range(uint32_t first, uint32_t last) {
  return first == last ? FormatIp(first) : fmt::format("{}-{}", FormatIp(first), FormatIp(last));
}

constexpr std::string_view kAfterEgress = "after-egress";

void AddDirection(NftState& s, const std::string& id, bool ingress, const Direction& d) {
  const char dir = ingress ? 'i' : 'e';
  const std::string chain = fmt::format("p-{}-{}", id, dir);
  // An allowed flow: ingress ends the verdict; egress goes on to the destination's ingress.
  const std::string verdict = ingress ? "accept" : fmt::format("goto {}", kAfterEgress);
  const std::string_view peer_field = ingress ? "saddr" : "daddr";
  auto& rules = s.chains[chain];
  for (size_t r = 0; r < d.rules.size(); ++r) {
    const Rule& rule = d.rules[r];
    std::string peer;
    if (!rule.any_peer) {
      std::string name = fmt::format("p-{}-{}{}-peers", id, dir, r);
      auto& set = s.sets[name];
      set.type = "ipv4_addr";
      set.interval = true;
      for (const auto& range : rule.peers) set.elements.insert(Range(range.first, range.last));
      peer = fmt::format("ip {} @{} ", peer_field, name);
    }
    if (rule.ports.any) {
      rules.push_back(peer + verdict);
      continue;
    }
    if (!rule.ports.ranges.empty()) {
      std::string name = fmt::format("p-{}-{}{}-ports", id, dir, r);
      auto& set = s.sets[name];
      set.type = "inet_proto . inet_service";
      set.interval = true;
      for (const auto& p : rule.ports.ranges) {
        set.elements.insert(
            p.first == p.last
                ? fmt::format("{} . {}", ProtocolName(p.protocol), p.first)
                : fmt::format("{} . {}-{}", ProtocolName(p.protocol), p.first, p.last));
      }
      rules.push_back(fmt::format("{}meta l4proto . th dport @{} {}", peer, name, verdict));
    }
    if (!rule.ports.named.empty()) {
      std::string name = fmt::format("p-{}-{}{}-named", id, dir, r);
      auto& set = s.sets[name];
      set.type = "ipv4_addr . inet_proto . inet_service";
      for (const auto& p : rule.ports.named)
        set.elements.insert(
            fmt::format("{} . {} . {}", FormatIp(p.ip), ProtocolName(p.protocol), p.port));
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

NftState StateOf(const Model& model) {
  NftState s;
  std::map<uint32_t, std::vector<std::string>> in_chains, eg_chains;
  for (const auto& [key, c] : model) {
    const std::string id = IdOf(key);
    for (bool ingress : {true, false}) {
      const auto& d = ingress ? c.ingress : c.egress;
      if (!d) continue;
      AddDirection(s, id, ingress, *d);
      for (uint32_t ip : d->pods)
        (ingress ? in_chains : eg_chains)[ip].push_back(
            fmt::format("jump p-{}-{}", id, ingress ? 'i' : 'e'));
    }
  }
  for (bool ingress : {true, false}) {
    for (auto& [ip, jumps] : ingress ? in_chains : eg_chains) {
      std::string chain = fmt::format("pod-{:08x}-{}", ip, ingress ? "in" : "eg");
      jumps.insert(jumps.end(), kRefuse.begin(), kRefuse.end());
      s.chains[chain] = std::move(jumps);
      (ingress ? s.in_pods : s.eg_pods)[FormatIp(ip)] = chain;
    }
  }
  return s;
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
  // 2. Sets: new ones with their elements, changed ones by element.
  for (const auto& [name, set] : to.sets) {
    auto it = from.sets.find(name);
    if (it == from.sets.end() || it->second.type != set.type ||
        it->second.interval != set.interval) {
      if (it != from.sets.end()) continue;  // Retyped: replaced below, after its rules went.
      out += fmt::format("add set ip {} {} {{ {} }}\n", table, name, SetDecl(set));
      if (!set.elements.empty())
        out += fmt::format("add element ip {} {} {{ {} }}\n", table, name, Elements(set.elements));
      continue;
    }
    std::set<std::string> gone, added;
    for (const auto& e : it->second.elements)
      if (!set.elements.count(e)) gone.insert(e);
    for (const auto& e : set.elements)
      if (!it->second.elements.count(e)) added.insert(e);
    // Deleted first: an interval that grew must not overlap its old self.
    if (!gone.empty())
      out += fmt::format("delete element ip {} {} {{ {} }}\n", table, name, Elements(gone));
    if (!added.empty())
      out += fmt::format("add element ip {} {} {{ {} }}\n", table, name, Elements(added));
  }
  // 3. Chains: new ones, then every new or rewritten chain's rules (a pod's
  // chain jumps to policies' chains, so those exist by then).
  for (const auto& [name, rules] : to.chains) {
    if (!from.chains.count(name)) out += fmt::format("add chain ip {} {}\n", table, name);
  }
  // 4. Sets gone or retyped, now that no rule refers to them.
  std::string late;
  for (const auto& [name, set] : from.sets) {
    auto it = to.sets.find(name);
    if (it == to.sets.end() || it->second.type != set.type || it->second.interval != set.interval) {
      out += fmt::format("delete set ip {} {}\n", table, name);
      if (it != to.sets.end()) {
        out += fmt::format("add set ip {} {} {{ {} }}\n", table, name, SetDecl(it->second));
        if (!it->second.elements.empty())
          out += fmt::format("add element ip {} {} {{ {} }}\n", table, name,
                             Elements(it->second.elements));
      }
    }
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
    NftState state = StateOf(model);
    KISO_RETURN_IF_ERROR(nft_.Run(FullScript(table_, bridge_, state)));
    applied_ = std::move(state);
    return Status::Ok();
  }

  Status Update(const Model& /*from*/, const Model& to,
                const std::set<std::string>& /*changed*/) override {
    NftState state = StateOf(to);
    std::string script = UpdateScript(table_, applied_, state);
    if (!script.empty()) KISO_RETURN_IF_ERROR(nft_.Run(script));
    applied_ = std::move(state);
    return Status::Ok();
  }

  Status Remove() override {
    applied_ = {};
    return nft_.Run(fmt::format("add table ip {0}\ndelete table ip {0}\n", table_));
  }

 private:
  std::string table_, bridge_;
  proxy::Nftables nft_;
  NftState applied_;
};

}  // namespace

Result<std::unique_ptr<Enforcer>> NewNftablesEnforcer(const EnforcerOptions& options) {
  return std::unique_ptr<Enforcer>(std::make_unique<NftablesEnforcer>(options));
}

}  // namespace kiso::network::policy
