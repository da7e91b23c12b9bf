#include "network/policy/ebpf_enforcer.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "common/host_addresses.h"
#include "network/policy/bpf/policy.h"
#include "policy.skel.h"

namespace kiso::network::policy {

namespace {

constexpr uint32_t kMax = UINT32_MAX;

}  // namespace

std::vector<std::pair<uint32_t, uint8_t>> Blocks(uint32_t first, uint32_t last, int width) {
  std::vector<std::pair<uint32_t, uint8_t>> out;
  uint64_t at = first;
  const uint64_t end = uint64_t{last} + 1;
  while (at < end) {
    int size = 0;  // log2 of the block: as large as `at` is aligned and the range holds.
    while (size < width && (at & ((uint64_t{1} << (size + 1)) - 1)) == 0 &&
           at + (uint64_t{1} << (size + 1)) <= end)
      ++size;
    out.emplace_back(static_cast<uint32_t>(at), static_cast<uint8_t>(width - size));
    at += uint64_t{1} << size;
  }
  return out;
}

namespace {

// One allowed segment of a slot: addresses [first, last], every port (`any`)
// or `ports`.
struct Segment {
  uint32_t first = 0, last = 0;
  bool any = false;
  std::vector<PortRange> ports;
};

// The rules of one pod in one direction flattened into disjoint segments,
// each with the union of the ports its rules allow there.
std::vector<Segment> Flatten(uint32_t pod, bool ingress, const std::vector<Rule>& rules) {
  std::vector<Segment> out;
  // Elementary segments: every range's edges, and each named port's pod alone.
  // A sweep over them keeps the rules whose peers hold the segment (each
  // rule's ranges are disjoint): work in proportion to what covers each.
  std::vector<uint32_t> edges{0};
  std::vector<std::tuple<uint32_t, bool, size_t>> events;  // (at, starts, rule)
  std::vector<size_t> everyone;                            // Rules with every peer.
  auto edge = [&](uint64_t at) {
    if (at <= kMax) edges.push_back(static_cast<uint32_t>(at));
  };
  for (size_t k = 0; k < rules.size(); ++k) {
    const Rule* r = &rules[k];
    if (r->any_peer) {
      everyone.push_back(k);
    } else {
      for (const auto& range : r->peers) {
        edge(range.first);
        events.emplace_back(range.first, true, k);
        if (range.last < kMax) {
          edge(uint64_t{range.last} + 1);
          events.emplace_back(range.last + 1, false, k);
        }
      }
    }
    if (!ingress) {
      for (const auto& n : r->ports.named) {
        edge(n.ip);
        edge(uint64_t{n.ip} + 1);
      }
    }
  }
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  std::sort(events.begin(), events.end());
  std::set<size_t> active(everyone.begin(), everyone.end());
  size_t next_event = 0;
  // (first, last, port set) of each allowed segment, adjacent equal ones joined.
  std::vector<std::tuple<uint32_t, uint32_t, uint32_t>> allowed;
  for (size_t i = 0; i < edges.size(); ++i) {
    const uint32_t first = edges[i];
    const uint32_t last = i + 1 < edges.size() ? edges[i + 1] - 1 : kMax;
    for (; next_event < events.size() && std::get<0>(events[next_event]) <= first; ++next_event) {
      const auto& [at, starts, k] = events[next_event];
      if (starts) {
        active.insert(k);
      } else {
        active.erase(k);
      }
    }
    bool covered = !active.empty(), any = false;
    std::vector<PortRange> ports;
    for (size_t k : active) {
      const Rule* r = &rules[k];
      if (r->ports.any) {
        any = true;
        break;
      }
      ports.insert(ports.end(), r->ports.ranges.begin(), r->ports.ranges.end());
      // A named port is the destination's: the pod itself for ingress, the peer for egress.
      if (!ingress && first != last) continue;
      const uint32_t at = ingress ? pod : first;
      auto [from, to] =
          std::equal_range(r->ports.named.begin(), r->ports.named.end(), PodPort{at, 0, 0},
                           [](const PodPort& a, const PodPort& b) { return a.ip < b.ip; });
      for (auto it = from; it != to; ++it) ports.push_back({it->protocol, it->port, it->port});
    }
    if (!covered || (!any && ports.empty())) continue;
    std::sort(ports.begin(), ports.end());
    ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
    if (!out.empty() && out.back().last + 1 == first && out.back().any == any &&
        out.back().ports == ports) {
      out.back().last = last;
    } else {
      out.push_back({first, last, any, std::move(ports)});
    }
  }
  return out;
}

// The rules of `model` for pod `ip` in one direction, those with the same
// peers made one (their ports joined): policies often share peers (a
// thousand policies, ten groups of pods), and the sweep is over distinct
// ones. None when the pod is not isolated that way.
std::optional<std::vector<Rule>> RulesOf(const Model& model, uint32_t ip, bool ingress) {
  std::optional<std::map<std::pair<bool, const IpRanges*>, Rule,
                         bool (*)(const std::pair<bool, const IpRanges*>&,
                                  const std::pair<bool, const IpRanges*>&)>>
      merged;
  auto less = [](const std::pair<bool, const IpRanges*>& a,
                 const std::pair<bool, const IpRanges*>& b) {
    if (a.first != b.first) return a.first < b.first;
    return !a.first && *a.second < *b.second;
  };
  for (const auto& [key, c] : model) {
    const auto& d = ingress ? c.ingress : c.egress;
    if (!d || !std::binary_search(d->pods.begin(), d->pods.end(), ip)) continue;
    if (!merged) merged.emplace(less);
    for (const auto& r : d->rules) {
      auto [it, added] = merged->try_emplace({r.any_peer, &r.peers}, r);
      if (added) continue;
      Ports& p = it->second.ports;
      if (p.any) continue;
      if (r.ports.any) {
        p = r.ports;
        continue;
      }
      p.ranges.insert(p.ranges.end(), r.ports.ranges.begin(), r.ports.ranges.end());
      p.named.insert(p.named.end(), r.ports.named.begin(), r.ports.named.end());
    }
  }
  if (!merged) return std::nullopt;
  std::vector<Rule> out;
  out.reserve(merged->size());
  for (auto& [peers, r] : *merged) {
    std::sort(r.ports.ranges.begin(), r.ports.ranges.end());
    r.ports.ranges.erase(std::unique(r.ports.ranges.begin(), r.ports.ranges.end()),
                         r.ports.ranges.end());
    std::sort(r.ports.named.begin(), r.ports.named.end());
    r.ports.named.erase(std::unique(r.ports.named.begin(), r.ports.named.end()),
                        r.ports.named.end());
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

// Makes sure `ports` has a set (its entries put when new); the slots using it count it.
uint32_t BpfTables::Intern(const std::vector<PortRange>& ports, Changes& changes) {
  auto [it, added] = set_ids_.try_emplace(ports, next_set_);
  if (added) {
    ++next_set_;
    sets_[it->second] = {ports, 0};
    for (const auto& r : ports) {
      for (const auto& [port, bits] : Blocks(r.first, r.last, 16)) {
        BpfEntries::Port e{it->second, r.protocol, static_cast<uint16_t>(port), bits};
        entries_.ports.insert(e);
        changes.put.ports.insert(e);
      }
    }
  }
  return it->second;
}

// One slot fewer uses `set`; the last takes its entries away.
void BpfTables::Release(uint32_t set, Changes& changes) {
  auto it = sets_.find(set);
  if (it == sets_.end() || --it->second.second > 0) return;
  for (const auto& r : it->second.first) {
    for (const auto& [port, bits] : Blocks(r.first, r.last, 16)) {
      BpfEntries::Port e{set, r.protocol, static_cast<uint16_t>(port), bits};
      entries_.ports.erase(e);
      if (changes.put.ports.erase(e) == 0) changes.gone.ports.insert(e);
    }
  }
  set_ids_.erase(it->second.first);
  sets_.erase(it);
}

BpfTables::Changes BpfTables::Set(const Model& model,
                                  const std::set<std::pair<uint32_t, bool>>& pods) {
  Changes changes;
  auto sets_of = [](const Slot& slot) {
    std::set<uint32_t> out;
    for (const auto& [peer, set] : slot.peers)
      if (set != 0) out.insert(set);
    return out;
  };
  std::set<uint32_t> addresses;
  for (const auto& which : pods) {
    const auto [ip, ingress] = which;
    addresses.insert(ip);
    auto rules = RulesOf(model, ip, ingress);
    auto have = slots_.find(which);
    if (!rules && have == slots_.end()) continue;
    Slot old = have != slots_.end() ? std::move(have->second) : Slot{};
    Slot next;
    if (rules) {
      next.number = have != slots_.end() ? old.number : next_slot_++;
      for (const auto& seg : Flatten(ip, ingress, *rules)) {
        uint32_t set = seg.any ? 0 : Intern(seg.ports, changes);
        for (const auto& [addr, bits] : Blocks(seg.first, seg.last, 32))
          next.peers[{addr, bits}] = set;
      }
    }
    const std::set<uint32_t> now = sets_of(next), before = sets_of(old);
    for (uint32_t set : now)
      if (!before.count(set)) ++sets_[set].second;
    for (const auto& [peer, set] : next.peers) {
      BpfEntries::Peer key{next.number, peer.first, peer.second};
      auto was = old.peers.find(peer);
      if (was == old.peers.end() || was->second != set) {
        entries_.peers[key] = set;
        changes.put.peers[key] = set;
      }
    }
    for (const auto& [peer, set] : old.peers) {
      if (rules && next.peers.count(peer)) continue;
      BpfEntries::Peer key{old.number, peer.first, peer.second};
      entries_.peers.erase(key);
      changes.gone.peers[key] = set;
    }
    for (uint32_t set : before)
      if (!now.count(set)) Release(set, changes);
    if (rules) {
      slots_[which] = std::move(next);
    } else {
      slots_.erase(which);
    }
  }
  for (uint32_t ip : addresses) {
    auto in = slots_.find({ip, true});
    auto eg = slots_.find({ip, false});
    std::pair<uint32_t, uint32_t> now{in != slots_.end() ? in->second.number : 0,
                                      eg != slots_.end() ? eg->second.number : 0};
    auto it = entries_.pods.find(ip);
    if (now == std::pair<uint32_t, uint32_t>{0, 0}) {
      if (it != entries_.pods.end()) {
        changes.gone.pods[ip] = it->second;
        entries_.pods.erase(it);
      }
    } else if (it == entries_.pods.end() || it->second != now) {
      entries_.pods[ip] = now;
      changes.put.pods[ip] = now;
    }
  }
  // Sets interned for a slot that then used none of them (its rules allow no port here).
  for (auto it = sets_.begin(); it != sets_.end();) {
    auto next_it = std::next(it);
    if (it->second.second == 0) {
      ++it->second.second;
      Release(it->first, changes);
    }
    it = next_it;
  }
  return changes;
}

BpfTables::Changes BpfTables::Reset(const Model& model) {
  std::set<std::pair<uint32_t, bool>> pods;
  for (const auto& [which, slot] : slots_) pods.insert(which);
  for (const auto& [key, c] : model) {
    for (bool ingress : {true, false}) {
      const auto& d = ingress ? c.ingress : c.egress;
      if (d)
        for (uint32_t ip : d->pods) pods.emplace(ip, ingress);
    }
  }
  return Set(model, pods);
}

namespace {

// Where kiso's filter sits on a tc hook: one handle and priority of its own.
constexpr uint32_t kHandle = 0x6b69;
constexpr uint32_t kPriority = 0x6b69;

Status Errno(std::string_view what, int err) {
  return MakeStatus(Code::kUnavailable, "network policy (ebpf): {}: {}", what,
                    strerror(err < 0 ? -err : err));
}

std::vector<std::string> PortsOf(std::string_view bridge) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(fmt::format("/sys/class/net/{}/brif", bridge), ec))
    out.push_back(e.path().filename().string());
  return out;
}

Status Detach(int ifindex, bpf_tc_attach_point where) {
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kHandle, .priority = kPriority);
  int r = bpf_tc_detach(&hook, &opts);
  if (r != 0 && r != -ENOENT && r != -EINVAL && r != -ENODEV) return Errno("detach", r);
  return Status::Ok();
}

kiso_np_peer_key PeerKeyOf(const BpfEntries::Peer& p) {
  kiso_np_peer_key k{};
  k.prefixlen = 32 + p.bits;
  k.slot = htonl(p.slot);
  k.addr = htonl(p.addr);
  return k;
}

kiso_np_port_key PortKeyOf(const BpfEntries::Port& p) {
  kiso_np_port_key k{};
  k.prefixlen = 40 + p.bits;
  k.set = htonl(p.set);
  k.protocol = p.protocol;
  k.port = htons(p.port);
  return k;
}

class EbpfEnforcer final : public Enforcer {
 public:
  explicit EbpfEnforcer(const EnforcerOptions& options) : bridge_(options.bridge) {}
  ~EbpfEnforcer() override {
    // The programs stay attached (tc holds them): enforcement outlives the process.
    if (skel_ != nullptr) policy_bpf::destroy(skel_);
  }
  std::string_view name() const override { return "ebpf"; }

  Status Full(const Model& model) override {
    policy_bpf* fresh = policy_bpf::open_and_load();
    if (fresh == nullptr) return Errno("loading the policy program", errno);
    if (skel_ != nullptr) policy_bpf::destroy(skel_);
    skel_ = fresh;
    tables_ = {};
    attached_.clear();
    node_.clear();
    KISO_RETURN_IF_ERROR(SyncNodeAddresses());
    KISO_RETURN_IF_ERROR(Write(tables_.Reset(model)));
    // Enforcing from here: the bridge first, then every port (each replaces what was there).
    KISO_RETURN_IF_ERROR(Attach(bridge_, BPF_TC_INGRESS));
    return Refresh();
  }

  Status Update(const Model& from, const Model& to, const std::set<std::string>& changed) override {
    if (skel_ == nullptr) return Full(to);
    // The slots of the pods the changed policies isolate(d): only they can differ.
    std::set<std::pair<uint32_t, bool>> pods;
    for (const auto& key : changed) {
      for (const Model* m : {&from, &to}) {
        auto it = m->find(key);
        if (it == m->end()) continue;
        for (bool ingress : {true, false}) {
          const auto& d = ingress ? it->second.ingress : it->second.egress;
          if (d)
            for (uint32_t ip : d->pods) pods.emplace(ip, ingress);
        }
      }
    }
    KISO_RETURN_IF_ERROR(Write(tables_.Set(to, pods)));
    return Refresh();
  }

  Status Refresh() override {
    if (skel_ == nullptr) return Status::Ok();
    // The bridge gets its address with the node's first pod (the CNI plugin's gateway):
    // traffic from it (probes) is the node's.
    KISO_RETURN_IF_ERROR(SyncNodeAddresses());
    auto ports = PortsOf(bridge_);
    std::set<std::string> now(ports.begin(), ports.end());
    std::erase_if(attached_, [&](const std::string& p) { return !now.count(p); });
    for (const auto& p : ports) {
      if (attached_.count(p)) continue;
      Status s = Attach(p, BPF_TC_EGRESS);
      // A port gone meanwhile (its pod deleted) is no failure.
      if (!s.ok() && std::filesystem::exists("/sys/class/net/" + p)) return s;
      attached_.insert(p);
    }
    return Status::Ok();
  }

  Status Remove() override {
    Status s = DetachEbpf(bridge_);
    if (skel_ != nullptr) policy_bpf::destroy(skel_);
    skel_ = nullptr;
    attached_.clear();
    tables_ = {};
    return s;
  }

 private:
  // The node's addresses in kiso_np_node as the host has them now.
  Status SyncNodeAddresses() {
    std::set<uint32_t> now;
    for (const auto& a : HostAddresses()) {
      if (auto ip = ParseIp(a); ip.ok()) now.insert(htonl(*ip));
    }
    for (uint32_t key : now) {
      if (node_.count(key)) continue;
      uint8_t one = 1;
      if (bpf_map__update_elem(skel_->maps.kiso_np_node, &key, sizeof key, &one, 1, BPF_ANY) != 0)
        return Errno("the node's addresses", errno);
    }
    for (uint32_t key : node_) {
      if (!now.count(key))
        (void)bpf_map__delete_elem(skel_->maps.kiso_np_node, &key, sizeof key, 0);
    }
    node_ = std::move(now);
    return Status::Ok();
  }

  Status Attach(const std::string& dev, bpf_tc_attach_point where) {
    int ifindex = static_cast<int>(if_nametoindex(dev.c_str()));
    if (ifindex == 0) return Errno("interface " + dev, errno);
    DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
    DECLARE_LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(skel_->progs.kiso_np_decide),
                        .flags = BPF_TC_F_REPLACE, .handle = kHandle, .priority = kPriority);
    int r = bpf_tc_attach(&hook, &opts);
    if (r != 0) {  // No clsact qdisc there yet.
      r = bpf_tc_hook_create(&hook);
      if (r != 0 && r != -EEXIST) return Errno("clsact on " + dev, r);
      opts.prog_id = 0;
      r = bpf_tc_attach(&hook, &opts);
    }
    if (r != 0) return Errno("attaching to " + dev, r);
    return Status::Ok();
  }

  // Writes a change: additions first (a pod's slot points at entries that
  // exist), removals last.
  Status Write(const BpfTables::Changes& c) {
    auto* peers = skel_->maps.kiso_np_peers;
    auto* ports = skel_->maps.kiso_np_ports;
    auto* pods = skel_->maps.kiso_np_pods;
    for (const auto& p : c.put.ports) {
      auto k = PortKeyOf(p);
      uint8_t one = 1;
      if (bpf_map__update_elem(ports, &k, sizeof k, &one, 1, BPF_ANY) != 0)
        return Errno("port sets", errno);
    }
    for (const auto& [p, set] : c.put.peers) {
      auto k = PeerKeyOf(p);
      if (bpf_map__update_elem(peers, &k, sizeof k, &set, sizeof set, BPF_ANY) != 0)
        return Errno("peers", errno);
    }
    for (const auto& [ip, slots] : c.put.pods) {
      uint32_t key = htonl(ip);
      kiso_np_pod v{slots.first, slots.second};
      if (bpf_map__update_elem(pods, &key, sizeof key, &v, sizeof v, BPF_ANY) != 0)
        return Errno("pods", errno);
    }
    for (const auto& [ip, slots] : c.gone.pods) {
      uint32_t key = htonl(ip);
      (void)bpf_map__delete_elem(pods, &key, sizeof key, 0);
    }
    for (const auto& [p, set] : c.gone.peers) {
      auto k = PeerKeyOf(p);
      (void)bpf_map__delete_elem(peers, &k, sizeof k, 0);
    }
    for (const auto& p : c.gone.ports) {
      auto k = PortKeyOf(p);
      (void)bpf_map__delete_elem(ports, &k, sizeof k, 0);
    }
    return Status::Ok();
  }

  std::string bridge_;
  policy_bpf* skel_ = nullptr;
  BpfTables tables_;
  std::set<std::string> attached_;  // Bridge ports with the program.
  std::set<uint32_t> node_;         // The node's addresses in the map (network order).
};

// libbpf's messages as before (standard error), less the kernel's answers to
// an attach that meant to find out whether a clsact qdisc was there yet.
int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[1024];
  int n = vsnprintf(line, sizeof line, format, args);
  if (std::strstr(line, "Parent Qdisc doesn't exist") != nullptr ||
      std::strstr(line, "Exclusivity flag on") != nullptr)
    return 0;
  std::fputs(line, stderr);
  return n;
}

void QuietLibbpf() {
  static std::once_flag quiet;
  std::call_once(quiet, [] { libbpf_set_print(LibbpfPrint); });
}

}  // namespace

Result<std::unique_ptr<Enforcer>> NewEbpfEnforcer(const EnforcerOptions& options) {
  QuietLibbpf();
  return std::unique_ptr<Enforcer>(std::make_unique<EbpfEnforcer>(options));
}

Status DetachEbpf(std::string_view bridge) {
  QuietLibbpf();  // A bridge without the program answers "no qdisc": nothing to say.
  Status first = Status::Ok();
  auto keep = [&](Status s) {
    if (first.ok() && !s.ok()) first = std::move(s);
  };
  int br = static_cast<int>(if_nametoindex(std::string(bridge).c_str()));
  if (br != 0) {
    keep(Detach(br, BPF_TC_INGRESS));
    // The clsact qdisc the program needed goes too (kiso puts nothing else there).
    DECLARE_LIBBPF_OPTS(
        bpf_tc_hook, hook, .ifindex = br,
        .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    (void)bpf_tc_hook_destroy(&hook);
  }
  for (const auto& p : PortsOf(bridge)) {
    int ifindex = static_cast<int>(if_nametoindex(p.c_str()));
    if (ifindex != 0) keep(Detach(ifindex, BPF_TC_EGRESS));
  }
  return first;
}

}  // namespace kiso::network::policy
