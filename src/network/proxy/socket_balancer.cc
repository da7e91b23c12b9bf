#include "network/proxy/socket_balancer.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "least_conn.skel.h"
#include "network/proxy/bpf/least_conn.h"
#include "network/proxy/conntrack.h"

namespace kiso::network::proxy {

// The tc program's marks and nftables' reading of them (rules.h) agree.
static_assert(KISO_LB_MARK == kBalancerMark && KISO_LB_MARK_MASK == kBalancerMarkMask &&
              KISO_LB_MARK_SHIFT == kBalancerMarkShift &&
              KISO_LB_MAX_BACKENDS == kBalancerMaxBackends);

namespace {

std::optional<kiso_lb_addr> Key(const SocketAddress& a) {
  kiso_lb_addr k{};
  if (inet_pton(AF_INET, a.first.c_str(), &k.ip) != 1 || a.second <= 0 || a.second > 65535)
    return std::nullopt;
  k.port = htons(static_cast<uint16_t>(a.second));
  return k;
}

SocketAddress AddressOf(const kiso_lb_addr& k) {
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &k.ip, text, sizeof text);
  return {text, ntohs(k.port)};
}

// Where the cgroup2 hierarchy is mounted: /sys/fs/cgroup on a unified host,
// /sys/fs/cgroup/unified on a hybrid one.
Result<std::string> Cgroup2Root() {
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string device, dir, type;
    fields >> device >> dir >> type;
    if (type == "cgroup2") return dir;
  }
  return MakeStatus(Code::kUnavailable, "no cgroup2 hierarchy is mounted");
}

Status Errno(std::string_view what, int err) {
  return MakeStatus(Code::kInternal, "{}: {}", what, std::strerror(err < 0 ? -err : err));
}

// The node's addresses as the entries use them: IPv4 ones (the hooks are
// IPv4's), sorted, each once.
std::vector<std::string> NodeAddresses(std::vector<std::string> addresses) {
  std::erase_if(addresses, [](const std::string& a) { return a.find(':') != std::string::npos; });
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  return addresses;
}

// Calls `visit` with every key of `map` (keys of type K).
template <class K, class Visit>
void ForEachKey(const bpf_map* map, Visit visit) {
  K key{}, next{};
  const K* at = nullptr;
  while (bpf_map__get_next_key(map, at, &next, sizeof next) == 0) {
    visit(next);
    key = next;
    at = &key;
  }
}

}  // namespace

std::map<SocketAddress, BalancerEntry> SocketBalancerEntries(
    const ServicePort& port, const std::vector<std::string>& node_addresses) {
  std::map<SocketAddress, BalancerEntry> out;
  if (!BalancedInSockets(port)) return out;
  auto add = [&](const std::string& ip, int number, bool outside) {
    auto usable = UsableEndpoints(port, outside ? port.external_local : port.internal_local);
    if (usable.empty() || usable.size() > KISO_LB_MAX_BACKENDS) return;
    auto& entry = out[{ip, number}];
    entry.from_outside = outside;
    for (const auto* e : usable) entry.backends.emplace_back(e->ip, e->port);
  };
  if (!port.cluster_ip.empty()) add(port.cluster_ip, port.port, false);
  for (const auto& ip : port.external_ips) add(ip, port.port, true);
  if (port.node_port != 0) {
    for (const auto& ip : node_addresses) add(ip, port.node_port, true);
  }
  return out;
}

Result<std::unique_ptr<SocketBalancer>> SocketBalancer::Open(
    std::vector<std::string> node_addresses) {
  KISO_ASSIGN_OR_RETURN(std::string root, Cgroup2Root());
  std::unique_ptr<SocketBalancer> b(new SocketBalancer());
  b->node_addresses_ = NodeAddresses(std::move(node_addresses));
  b->skel_ = least_conn_bpf::open();
  if (b->skel_ == nullptr) return Errno("opening the least-connections programs", errno);
  // This process's network namespace is the node's.
  int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  uint64_t netns = 0;
  socklen_t size = sizeof netns;
  int got = probe < 0 ? -1 : getsockopt(probe, SOL_SOCKET, SO_NETNS_COOKIE, &netns, &size);
  int err = errno;
  if (probe >= 0) close(probe);
  if (got != 0) return Errno("the node's network namespace cookie", err);
  b->skel_->rodata->node_netns = netns;
  if (int r = least_conn_bpf::load(b->skel_); r != 0)
    return Errno("loading the least-connections programs", r);
  int cgroup = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgroup < 0) return Errno("open " + root, errno);
  struct Hook {
    bpf_program* program;
    bpf_link** link;
  };
  Status status = Status::Ok();
  for (const Hook& h :
       {Hook{b->skel_->progs.kiso_lb_connect4, &b->skel_->links.kiso_lb_connect4},
        Hook{b->skel_->progs.kiso_lb_release, &b->skel_->links.kiso_lb_release},
        Hook{b->skel_->progs.kiso_lb_getpeername4, &b->skel_->links.kiso_lb_getpeername4}}) {
    *h.link = bpf_program__attach_cgroup(h.program, cgroup);
    if (*h.link == nullptr) {
      status = Errno(fmt::format("attaching {} to {}", bpf_program__name(h.program), root), errno);
      break;
    }
  }
  close(cgroup);
  if (!status.ok()) return status;  // The destructor detaches what was attached.
  return b;
}

SocketBalancer::~SocketBalancer() {
  for (const auto& [ifindex, links] : tc_links_) {
    close(links.ingress);
    close(links.egress);
  }
  if (skel_ != nullptr) least_conn_bpf::destroy(skel_);
}

Status SocketBalancer::Put(const SocketAddress& service, const BalancerEntry& entry) {
  auto key = Key(service);
  if (!key) return MakeStatus(Code::kInvalidArgument, "not an IPv4 address: {}", service.first);
  kiso_lb_service value{};
  value.flags = entry.from_outside ? KISO_LB_FROM_OUTSIDE : 0;
  for (const auto& b : entry.backends) {
    auto k = Key(b);
    if (!k || value.count == KISO_LB_MAX_BACKENDS) continue;
    value.backends[value.count++] = *k;
    // A count to find for each endpoint (connect() makes one otherwise).
    int64_t zero = 0;
    (void)bpf_map__update_elem(skel_->maps.kiso_lb_active, &*k, sizeof *k, &zero, sizeof zero,
                               BPF_NOEXIST);
  }
  // The whole entry at once: a connect() sees the old list or this one.
  int r = bpf_map__update_elem(skel_->maps.kiso_lb_svcs, &*key, sizeof *key, &value, sizeof value,
                               BPF_ANY);
  if (r != 0)
    return Errno(fmt::format("{}:{} in the socket balancer", service.first, service.second), r);
  return Status::Ok();
}

Status SocketBalancer::Remove(const SocketAddress& service) {
  auto key = Key(service);
  if (!key) return Status::Ok();
  int r = bpf_map__delete_elem(skel_->maps.kiso_lb_svcs, &*key, sizeof *key, 0);
  if (r != 0 && r != -ENOENT)
    return Errno(fmt::format("{}:{} out of the socket balancer", service.first, service.second), r);
  return Status::Ok();
}

bool SocketBalancer::SetNodeAddresses(std::vector<std::string> addresses) {
  addresses = NodeAddresses(std::move(addresses));
  if (addresses == node_addresses_) return false;
  node_addresses_ = std::move(addresses);
  return true;
}

Status SocketBalancer::Full(const ServicePorts& ports) {
  std::map<SocketAddress, BalancerEntry> want;
  for (const auto& [name, port] : ports) want.merge(SocketBalancerEntries(port, node_addresses_));
  for (const auto& address : Addresses()) {
    if (!want.count(address)) KISO_RETURN_IF_ERROR(Remove(address));
  }
  for (const auto& [address, entry] : want) KISO_RETURN_IF_ERROR(Put(address, entry));
  return Status::Ok();
}

Status SocketBalancer::Update(const ServicePorts& from, const ServicePorts& to,
                              const std::set<std::string>& changed) {
  std::map<SocketAddress, BalancerEntry> before, after;
  for (const auto& name : changed) {
    if (auto it = from.find(name); it != from.end())
      before.merge(SocketBalancerEntries(it->second, node_addresses_));
    if (auto it = to.find(name); it != to.end())
      after.merge(SocketBalancerEntries(it->second, node_addresses_));
  }
  for (const auto& [address, entry] : after) {
    auto was = before.find(address);
    if (was == before.end() || was->second != entry) KISO_RETURN_IF_ERROR(Put(address, entry));
  }
  std::set<SocketAddress> left;  // Endpoints some entry had before and may have no more.
  for (const auto& [address, entry] : before) {
    if (!after.count(address)) KISO_RETURN_IF_ERROR(Remove(address));
    left.insert(entry.backends.begin(), entry.backends.end());
  }
  for (const auto& [address, entry] : after) {
    for (const auto& b : entry.backends) left.erase(b);
  }
  if (!left.empty()) ForgetIdle(left);
  return Status::Ok();
}

void SocketBalancer::ForgetIdle(std::set<SocketAddress> endpoints) {
  // Those still in some entry stay; of the others, those without open
  // connections go (a connection counted off later finds no count to lower).
  ForEachEntry([&](const kiso_lb_addr&, const kiso_lb_service& value) {
    for (uint32_t i = 0; i < value.count && i < KISO_LB_MAX_BACKENDS; ++i)
      endpoints.erase(AddressOf(value.backends[i]));
  });
  for (const auto& e : endpoints) {
    auto k = Key(e);
    if (k && Active(e.first, e.second) <= 0)
      (void)bpf_map__delete_elem(skel_->maps.kiso_lb_active, &*k, sizeof *k, 0);
  }
}

int64_t SocketBalancer::Active(const std::string& ip, int port) const {
  auto key = Key({ip, port});
  int64_t n = 0;
  if (!key ||
      bpf_map__lookup_elem(skel_->maps.kiso_lb_active, &*key, sizeof *key, &n, sizeof n, 0) != 0)
    return 0;
  return n;
}

void SocketBalancer::ForEachEntry(
    const std::function<void(const kiso_lb_addr&, const kiso_lb_service&)>& visit) const {
  kiso_lb_service value{};
  ForEachKey<kiso_lb_addr>(skel_->maps.kiso_lb_svcs, [&](const kiso_lb_addr& key) {
    if (bpf_map__lookup_elem(skel_->maps.kiso_lb_svcs, &key, sizeof key, &value, sizeof value, 0) ==
        0)
      visit(key, value);
  });
}

namespace {

// tcx links (Linux 6.6): libbpf 1.1 predates them, the kernel's values.
constexpr auto kTcxIngress = static_cast<bpf_attach_type>(46);
constexpr auto kTcxEgress = static_cast<bpf_attach_type>(47);

// The interfaces connections from other nodes arrive on: Ethernet ones but
// `bridge` (pods: their sockets are balanced by the cgroup hooks) and bridge
// ports.
std::map<int, std::string> OutsideInterfaces(const std::string& bridge) {
  std::map<int, std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net", ec)) {
    const std::string name = e.path().filename().string();
    const auto& dir = e.path();
    if (name == bridge) continue;
    std::ifstream type(dir / "type");
    int arphrd = 0;
    if (!(type >> arphrd) || arphrd != 1) continue;  // ARPHRD_ETHER (loopback is 772).
    // A bridge's port: what arrives there for the node is the bridge's (our
    // bridge's ports are pods).
    if (std::filesystem::exists(dir / "brport", ec)) continue;
    std::ifstream index(dir / "ifindex");
    int ifindex = 0;
    if (index >> ifindex && ifindex > 0) out[ifindex] = name;
  }
  return out;
}

}  // namespace

Result<int> SocketBalancer::AttachInterfaces(const std::string& bridge) {
  if (tcx_unsupported_) return 0;
  auto now = OutsideInterfaces(bridge);
  for (auto it = tc_links_.begin(); it != tc_links_.end();) {
    if (auto same = now.find(it->first); same != now.end() && same->second == it->second.name) {
      ++it;
      continue;
    }
    close(it->second.ingress);  // Gone with its interface (or another has its index now).
    close(it->second.egress);
    it = tc_links_.erase(it);
  }
  auto link = [&](bpf_program* program, bpf_attach_type where, int ifindex) {
    return bpf_link_create(bpf_program__fd(program), ifindex, where, nullptr);
  };
  for (const auto& [ifindex, name] : now) {
    if (tc_links_.count(ifindex)) continue;
    int in = link(skel_->progs.kiso_lb_tc_ingress, kTcxIngress, ifindex);
    if (in == -EINVAL && tc_links_.empty()) {
      tcx_unsupported_ = true;
      return MakeStatus(Code::kUnavailable,
                        "this kernel has no tcx links: connections from other nodes to "
                        "least-connections ports get round robin");
    }
    int out = in < 0 ? in : link(skel_->progs.kiso_lb_tc_egress, kTcxEgress, ifindex);
    if (out < 0) {
      if (in >= 0) close(in);
      if (!std::filesystem::exists("/sys/class/net/" + name)) continue;  // Gone meanwhile.
      return Errno("attaching the least-connections tc programs to " + name, out);
    }
    tc_links_[ifindex] = {name, in, out};
  }
  return static_cast<int>(tc_links_.size());
}

Result<int> SocketBalancer::SweepRemotes(std::chrono::seconds age) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // bpf_ktime_get_ns()'s clock.
  const uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000000U + ts.tv_nsec;
  const uint64_t before =
      now - std::min<uint64_t>(now, static_cast<uint64_t>(age.count()) * 1000000000U);
  // The connections counted longer than `age`: only they are looked for in conntrack.
  using Tuple = std::tuple<uint32_t, uint32_t, uint16_t, uint16_t>;
  std::map<Tuple, kiso_lb_flow> old;
  auto* remotes = skel_->maps.kiso_lb_remotes;
  kiso_lb_remote value{};
  ForEachKey<kiso_lb_flow>(remotes, [&](const kiso_lb_flow& flow) {
    if (bpf_map__lookup_elem(remotes, &flow, sizeof flow, &value, sizeof value, 0) == 0 &&
        value.since < before) {
      old.emplace(Tuple{flow.client_ip, flow.service_ip, flow.client_port, flow.service_port},
                  flow);
    }
  });
  if (old.empty()) return 0;
  // Those conntrack still has live are not gone.
  KISO_RETURN_IF_ERROR(ForEachFlow([&](const Flow& f) {
    if (f.protocol == IPPROTO_TCP && !f.closed)
      old.erase(Tuple{htonl(f.src), htonl(f.dst), htons(f.sport), htons(f.dport)});
  }));
  // Counted off by the program the data path uses, so the count changes atomically.
  const int forget = bpf_program__fd(skel_->progs.kiso_lb_forget);
  for (auto& [tuple, flow] : old) {
    LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &flow, .ctx_size_in = sizeof flow);
    if (int r = bpf_prog_test_run_opts(forget, &run); r != 0)
      return Errno("counting off a gone connection", r);
  }
  return static_cast<int>(old.size());
}

int64_t SocketBalancer::Remotes() const {
  int64_t n = 0;
  ForEachKey<kiso_lb_flow>(skel_->maps.kiso_lb_remotes, [&](const kiso_lb_flow&) { ++n; });
  return n;
}

std::vector<SocketAddress> SocketBalancer::Addresses() const {
  std::vector<SocketAddress> out;
  ForEachEntry(
      [&](const kiso_lb_addr& key, const kiso_lb_service&) { out.push_back(AddressOf(key)); });
  return out;
}

}  // namespace kiso::network::proxy
