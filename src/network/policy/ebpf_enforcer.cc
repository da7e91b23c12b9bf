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

// The rules that apply to one pod in one direction, and what that pod is.
struct SlotRules {
  std::vector<const Rule*> rules;
};

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

BpfEntries EntriesOf(const Model& model, BpfNumbering& numbering) {
  std::map<std::pair<uint32_t, bool>, SlotRules> by_slot;  // (pod, ingress) → rules.
  for (const auto& [key, c] : model) {
    for (bool ingress : {true, false}) {
      const auto& d = ingress ? c.ingress : c.egress;
      if (!d) continue;
      for (uint32_t pod : d->pods) {
        auto& s = by_slot[{pod, ingress}];
        for (const auto& r : d->rules) s.rules.push_back(&r);
      }
    }
  }
  BpfEntries out;
  std::set<uint32_t> used_sets;
  std::map<std::pair<uint32_t, bool>, uint32_t> slots;
  for (const auto& [which, s] : by_slot) {
    const auto [pod, ingress] = which;
    uint32_t slot = 0;
    if (auto it = numbering.slots.find(which); it != numbering.slots.end()) {
      slot = it->second;
    } else {
      slot = numbering.next_slot++;
    }
    slots[which] = slot;
    auto& p = out.pods[pod];
    (ingress ? p.first : p.second) = slot;
    // Elementary segments: every range's edges, and each named port's pod alone.
    std::vector<uint32_t> edges{0};
    auto edge = [&](uint64_t at) {
      if (at <= kMax) edges.push_back(static_cast<uint32_t>(at));
    };
    for (const Rule* r : s.rules) {
      if (!r->any_peer) {
        for (const auto& range : r->peers) {
          edge(range.first);
          edge(uint64_t{range.last} + 1);
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
    // (first, last, port set) of each allowed segment, adjacent equal ones joined.
    std::vector<std::tuple<uint32_t, uint32_t, uint32_t>> allowed;
    for (size_t i = 0; i < edges.size(); ++i) {
      const uint32_t first = edges[i];
      const uint32_t last = i + 1 < edges.size() ? edges[i + 1] - 1 : kMax;
      bool covered = false, any = false;
      std::vector<PortRange> ports;
      for (const Rule* r : s.rules) {
        if (!r->any_peer && !Contains(r->peers, first)) continue;
        covered = true;
        if (r->ports.any) {
          any = true;
          break;
        }
        ports.insert(ports.end(), r->ports.ranges.begin(), r->ports.ranges.end());
        // A named port is the destination's: the pod itself for ingress, the peer for egress.
        for (const auto& n : r->ports.named) {
          if (ingress ? n.ip == pod : (first == last && n.ip == first))
            ports.push_back({n.protocol, n.port, n.port});
        }
      }
      if (!covered || (!any && ports.empty())) continue;
      uint32_t set = 0;
      if (!any) {
        std::sort(ports.begin(), ports.end());
        ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
        auto [it, added] = numbering.port_sets.try_emplace(ports, numbering.next_set);
        if (added) ++numbering.next_set;
        set = it->second;
        used_sets.insert(set);
      }
      if (!allowed.empty() && std::get<2>(allowed.back()) == set &&
          std::get<1>(allowed.back()) + 1 == first) {
        std::get<1>(allowed.back()) = last;
      } else {
        allowed.emplace_back(first, last, set);
      }
    }
    for (const auto& [first, last, set] : allowed) {
      for (const auto& [addr, bits] : Blocks(first, last, 32)) out.peers[{slot, addr, bits}] = set;
    }
  }
  numbering.slots = std::move(slots);
  std::erase_if(numbering.port_sets, [&](const auto& kv) { return !used_sets.count(kv.second); });
  for (const auto& [ranges, set] : numbering.port_sets) {
    for (const auto& r : ranges) {
      for (const auto& [port, bits] : Blocks(r.first, r.last, 16))
        out.ports.insert({set, r.protocol, static_cast<uint16_t>(port), bits});
    }
  }
  return out;
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
    applied_ = {};
    numbering_ = {};
    attached_.clear();
    for (const auto& a : HostAddresses()) {
      auto ip = ParseIp(a);
      if (!ip.ok()) continue;
      uint32_t key = htonl(*ip);
      uint8_t one = 1;
      if (bpf_map__update_elem(skel_->maps.kiso_np_node, &key, sizeof key, &one, 1, BPF_ANY) != 0)
        return Errno("the node's addresses", errno);
    }
    KISO_RETURN_IF_ERROR(Write(EntriesOf(model, numbering_)));
    // Enforcing from here: the bridge first, then every port (each replaces what was there).
    KISO_RETURN_IF_ERROR(Attach(bridge_, BPF_TC_INGRESS));
    return Refresh();
  }

  Status Update(const Model& /*from*/, const Model& to,
                const std::set<std::string>& /*changed*/) override {
    if (skel_ == nullptr) return Full(to);
    KISO_RETURN_IF_ERROR(Write(EntriesOf(to, numbering_)));
    return Refresh();
  }

  Status Refresh() override {
    if (skel_ == nullptr) return Status::Ok();
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
    applied_ = {};
    return s;
  }

 private:
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

  // Writes what differs between `applied_` and `want`: additions first (a
  // pod's slot points at entries that exist), removals last.
  Status Write(BpfEntries want) {
    auto* peers = skel_->maps.kiso_np_peers;
    auto* ports = skel_->maps.kiso_np_ports;
    auto* pods = skel_->maps.kiso_np_pods;
    for (const auto& p : want.ports) {
      if (applied_.ports.count(p)) continue;
      auto k = PortKeyOf(p);
      uint8_t one = 1;
      if (bpf_map__update_elem(ports, &k, sizeof k, &one, 1, BPF_ANY) != 0)
        return Errno("port sets", errno);
    }
    for (const auto& [p, set] : want.peers) {
      auto it = applied_.peers.find(p);
      if (it != applied_.peers.end() && it->second == set) continue;
      auto k = PeerKeyOf(p);
      if (bpf_map__update_elem(peers, &k, sizeof k, &set, sizeof set, BPF_ANY) != 0)
        return Errno("peers", errno);
    }
    for (const auto& [ip, slots] : want.pods) {
      auto it = applied_.pods.find(ip);
      if (it != applied_.pods.end() && it->second == slots) continue;
      uint32_t key = htonl(ip);
      kiso_np_pod v{slots.first, slots.second};
      if (bpf_map__update_elem(pods, &key, sizeof key, &v, sizeof v, BPF_ANY) != 0)
        return Errno("pods", errno);
    }
    for (const auto& [ip, slots] : applied_.pods) {
      if (want.pods.count(ip)) continue;
      uint32_t key = htonl(ip);
      (void)bpf_map__delete_elem(pods, &key, sizeof key, 0);
    }
    for (const auto& [p, set] : applied_.peers) {
      if (want.peers.count(p)) continue;
      auto k = PeerKeyOf(p);
      (void)bpf_map__delete_elem(peers, &k, sizeof k, 0);
    }
    for (const auto& p : applied_.ports) {
      if (want.ports.count(p)) continue;
      auto k = PortKeyOf(p);
      (void)bpf_map__delete_elem(ports, &k, sizeof k, 0);
    }
    applied_ = std::move(want);
    return Status::Ok();
  }

  std::string bridge_;
  policy_bpf* skel_ = nullptr;
  BpfEntries applied_;
  BpfNumbering numbering_;
  std::set<std::string> attached_;  // Bridge ports with the program.
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

}  // namespace

Result<std::unique_ptr<Enforcer>> NewEbpfEnforcer(const EnforcerOptions& options) {
  static std::once_flag quiet;
  std::call_once(quiet, [] { libbpf_set_print(LibbpfPrint); });
  return std::unique_ptr<Enforcer>(std::make_unique<EbpfEnforcer>(options));
}

Status DetachEbpf(std::string_view bridge) {
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
