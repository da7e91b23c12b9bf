#include "network/proxy/socket_balancer.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "least_conn.skel.h"
#include "network/proxy/bpf/least_conn.h"

namespace kiso::network::proxy {

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

}  // namespace

bool BalancedInSockets(const ServicePort& port) {
  return port.algorithm == Algorithm::kLeastConnections && port.protocol == "tcp" &&
         port.affinity_seconds == 0;
}

std::map<SocketAddress, std::vector<SocketAddress>> SocketBalancerEntries(
    const ServicePort& port, const std::vector<std::string>& node_addresses) {
  std::map<SocketAddress, std::vector<SocketAddress>> out;
  if (!BalancedInSockets(port)) return out;
  auto add = [&](const std::string& ip, int number, bool local_only) {
    auto usable = UsableEndpoints(port, local_only);
    if (usable.empty() || usable.size() > KISO_LB_MAX_BACKENDS) return;
    auto& backends = out[{ip, number}];
    for (const auto* e : usable) backends.emplace_back(e->ip, e->port);
  };
  if (!port.cluster_ip.empty()) add(port.cluster_ip, port.port, port.internal_local);
  for (const auto& ip : port.external_ips) add(ip, port.port, port.external_local);
  if (port.node_port != 0) {
    for (const auto& ip : node_addresses) add(ip, port.node_port, port.external_local);
  }
  return out;
}

Result<std::unique_ptr<SocketBalancer>> SocketBalancer::Open(
    std::vector<std::string> node_addresses) {
  KISO_ASSIGN_OR_RETURN(std::string root, Cgroup2Root());
  std::unique_ptr<SocketBalancer> b(new SocketBalancer());
  // The hooks are IPv4's (connect4): IPv6 addresses have no entries.
  std::erase_if(node_addresses,
                [](const std::string& a) { return a.find(':') != std::string::npos; });
  b->node_addresses_ = std::move(node_addresses);
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
  if (skel_ != nullptr) least_conn_bpf::destroy(skel_);
}

Status SocketBalancer::Put(const SocketAddress& service,
                           const std::vector<SocketAddress>& backends) {
  auto key = Key(service);
  if (!key) return MakeStatus(Code::kInvalidArgument, "not an IPv4 address: {}", service.first);
  kiso_lb_service value{};
  for (const auto& b : backends) {
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

Status SocketBalancer::Full(const ServicePorts& ports) {
  std::map<SocketAddress, std::vector<SocketAddress>> want;
  for (const auto& [name, port] : ports) want.merge(SocketBalancerEntries(port, node_addresses_));
  for (const auto& address : Addresses()) {
    if (!want.count(address)) KISO_RETURN_IF_ERROR(Remove(address));
  }
  for (const auto& [address, backends] : want) KISO_RETURN_IF_ERROR(Put(address, backends));
  return Status::Ok();
}

Status SocketBalancer::Update(const ServicePorts& from, const ServicePorts& to,
                              const std::set<std::string>& changed) {
  std::map<SocketAddress, std::vector<SocketAddress>> before, after;
  for (const auto& name : changed) {
    if (auto it = from.find(name); it != from.end())
      before.merge(SocketBalancerEntries(it->second, node_addresses_));
    if (auto it = to.find(name); it != to.end())
      after.merge(SocketBalancerEntries(it->second, node_addresses_));
  }
  for (const auto& [address, backends] : after) {
    auto was = before.find(address);
    if (was == before.end() || was->second != backends)
      KISO_RETURN_IF_ERROR(Put(address, backends));
  }
  std::set<SocketAddress> left;  // Endpoints some entry had before and may have no more.
  for (const auto& [address, backends] : before) {
    if (!after.count(address)) KISO_RETURN_IF_ERROR(Remove(address));
    left.insert(backends.begin(), backends.end());
  }
  for (const auto& [address, backends] : after) {
    for (const auto& b : backends) left.erase(b);
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
  kiso_lb_addr key{}, next{};
  const kiso_lb_addr* at = nullptr;
  kiso_lb_service value{};
  while (bpf_map__get_next_key(skel_->maps.kiso_lb_svcs, at, &next, sizeof next) == 0) {
    if (bpf_map__lookup_elem(skel_->maps.kiso_lb_svcs, &next, sizeof next, &value, sizeof value,
                             0) == 0)
      visit(next, value);
    key = next;
    at = &key;
  }
}

std::vector<SocketAddress> SocketBalancer::Addresses() const {
  std::vector<SocketAddress> out;
  ForEachEntry(
      [&](const kiso_lb_addr& key, const kiso_lb_service&) { out.push_back(AddressOf(key)); });
  return out;
}

}  // namespace kiso::network::proxy
