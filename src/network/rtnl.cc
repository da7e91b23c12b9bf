#include "network/rtnl.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/cidr.h"

namespace kiso::network {

namespace {

mnl_socket* S(void* s) { return static_cast<mnl_socket*>(s); }

constexpr size_t kBuf = 8192;

bool Ipv4(const std::string& ip, in_addr* out) { return inet_pton(AF_INET, ip.c_str(), out) == 1; }

nlmsghdr* Header(std::vector<char>& buf, uint16_t type, uint16_t flags) {
  buf.assign(kBuf, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  return nlh;
}

// A link request's ifinfomsg: of `family`, for the link `index` (0: none,
// or named by IFLA_IFNAME), set up when `up`.
void PutLink(nlmsghdr* nlh, uint8_t family = AF_UNSPEC, int index = 0, bool up = false) {
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = family;
  ifi->ifi_index = index;
  if (up) {
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
  }
}

}  // namespace

std::string FormatMac(const Mac& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                     m[5]);
}

Mac MacOf(uint32_t a) {
  return {0x0a,
          0x58,
          static_cast<uint8_t>(a >> 24),
          static_cast<uint8_t>(a >> 16),
          static_cast<uint8_t>(a >> 8),
          static_cast<uint8_t>(a)};
}

bool ParseMac(std::string_view text, Mac* mac) {
  if (text.size() != 17) return false;
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':') return false;
    auto [end, ec] = std::from_chars(text.data() + i * 3, text.data() + i * 3 + 2, (*mac)[i], 16);
    if (ec != std::errc() || end != text.data() + i * 3 + 2) return false;
  }
  return true;
}

Result<Rtnl> Rtnl::Open() {
  mnl_socket* s = mnl_socket_open(NETLINK_ROUTE);
  if (s == nullptr) return MakeStatus(Code::kInternal, "rtnetlink socket: {}", strerror(errno));
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
    int e = errno;
    mnl_socket_close(s);
    return MakeStatus(Code::kInternal, "rtnetlink bind: {}", strerror(e));
  }
  return Rtnl(s);
}

Rtnl::Rtnl(Rtnl&& o) noexcept : socket_(o.socket_), seq_(o.seq_) { o.socket_ = nullptr; }
Rtnl& Rtnl::operator=(Rtnl&& o) noexcept {
  std::swap(socket_, o.socket_);
  std::swap(seq_, o.seq_);
  return *this;
}
Rtnl::~Rtnl() {
  if (socket_ != nullptr) mnl_socket_close(S(socket_));
}

Status Rtnl::Request(std::vector<char>& buf, const std::string& what) {
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data());
  nlh->nlmsg_seq = seq_++;
  if (mnl_socket_sendto(S(socket_), nlh, nlh->nlmsg_len) < 0)
    return MakeStatus(Code::kInternal, "{}: send: {}", what, strerror(errno));
  std::vector<char> answer(kBuf);
  const unsigned port = mnl_socket_get_portid(S(socket_));
  while (true) {
    ssize_t n = mnl_socket_recvfrom(S(socket_), answer.data(), answer.size());
    if (n < 0) return MakeStatus(Code::kInternal, "{}: receive: {}", what, strerror(errno));
    int r =
        mnl_cb_run(answer.data(), static_cast<size_t>(n), nlh->nlmsg_seq, port, nullptr, nullptr);
    if (r == MNL_CB_STOP) return Status::Ok();
    if (r < 0) {
      Code code = errno == ENOENT || errno == ESRCH || errno == ENODEV ? Code::kNotFound
                  : errno == EEXIST                                    ? Code::kAlreadyExists
                                                                       : Code::kInternal;
      return MakeStatus(code, "{}: {}", what, strerror(errno));
    }
  }
}

Result<int> Rtnl::EnsureVxlan(const VxlanDevice& d) {
  if (unsigned index = if_nametoindex(d.name.c_str()); index != 0) return static_cast<int>(index);
  in_addr local{};
  if (!Ipv4(d.local_ip, &local))
    return MakeStatus(Code::kInvalidArgument, "{:?} is not an IPv4 address", d.local_ip);
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  PutLink(nlh);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, d.name.c_str());
  mnl_attr_put(nlh, IFLA_ADDRESS, d.mac.size(), d.mac.data());
  mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(d.mtu));
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "vxlan");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  mnl_attr_put_u32(nlh, IFLA_VXLAN_ID, d.vni);
  mnl_attr_put(nlh, IFLA_VXLAN_LOCAL, sizeof(local), &local);
  mnl_attr_put_u16(nlh, IFLA_VXLAN_PORT, htons(d.port));
  mnl_attr_put_u8(nlh, IFLA_VXLAN_LEARNING, 0);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, info);
  KISO_RETURN_IF_ERROR(Request(buf, "create the VXLAN device " + d.name));
  const int index = static_cast<int>(if_nametoindex(d.name.c_str()));
  KISO_RETURN_IF_ERROR(SetUp(index));
  return index;
}

Result<int> Rtnl::EnsureBridge(const std::string& name, const Mac& mac, int mtu) {
  unsigned index = if_nametoindex(name.c_str());
  if (index == 0) {
    std::vector<char> buf;
    nlmsghdr* nlh = Header(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    PutLink(nlh);
    mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
    mnl_attr_put(nlh, IFLA_ADDRESS, mac.size(), mac.data());
    if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
    nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
    mnl_attr_nest_end(nlh, info);
    Status s = Request(buf, "create the bridge " + name);
    if (!s.ok() && s.code() != Code::kAlreadyExists) return s;  // Else made meanwhile.
    index = if_nametoindex(name.c_str());
    if (index == 0) return MakeStatus(Code::kInternal, "the bridge {} is gone", name);
  }
  // Up, and with the MAC set also on a bridge someone made without one (else
  // it takes its lowest port's, and pods' neighbour entries for the gateway
  // go stale as pods come and go).
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_NEWLINK, 0);
  PutLink(nlh, AF_UNSPEC, static_cast<int>(index), /*up=*/true);
  mnl_attr_put(nlh, IFLA_ADDRESS, mac.size(), mac.data());
  KISO_RETURN_IF_ERROR(
      Request(buf, fmt::format("set the bridge {} up at {}", name, FormatMac(mac))));
  return static_cast<int>(index);
}

Result<int> Rtnl::CreateVeth(const std::string& name, const std::string& peer_name,
                             const Mac& peer_mac, int peer_netns_fd, int master, int mtu) {
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  PutLink(nlh);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  if (master > 0) mnl_attr_put_u32(nlh, IFLA_MASTER, static_cast<uint32_t>(master));
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  // VETH_INFO_PEER: the peer's own ifinfomsg, then its attributes.
  nlattr* peer = mnl_attr_nest_start(nlh, 1 /* VETH_INFO_PEER */);
  PutLink(nlh);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name.c_str());
  mnl_attr_put(nlh, IFLA_ADDRESS, peer_mac.size(), peer_mac.data());
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, info);
  KISO_RETURN_IF_ERROR(Request(buf, fmt::format("create the veth pair {} ({})", name, peer_name)));
  const unsigned index = if_nametoindex(name.c_str());
  if (index == 0) return MakeStatus(Code::kInternal, "the veth {} is gone", name);
  return static_cast<int>(index);
}

Status Rtnl::SetUp(int ifindex) {
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_NEWLINK, 0);
  PutLink(nlh, AF_UNSPEC, ifindex, /*up=*/true);
  return Request(buf, fmt::format("set link {} up", ifindex));
}

Status Rtnl::SetHairpin(int ifindex) {
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_SETLINK, 0);
  PutLink(nlh, AF_BRIDGE, ifindex);
  nlattr* port = mnl_attr_nest_start(nlh, IFLA_PROTINFO);
  mnl_attr_put_u8(nlh, IFLA_BRPORT_MODE, 1);
  mnl_attr_nest_end(nlh, port);
  return Request(buf, fmt::format("hairpin mode on link {}", ifindex));
}

Status Rtnl::DeleteLink(const std::string& name) {
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_DELLINK, 0);
  PutLink(nlh);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  return Request(buf, "delete " + name);
}

Status Rtnl::AddAddress(int ifindex, const std::string& ip, int prefix, bool broadcast) {
  in_addr a{};
  if (!Ipv4(ip, &a)) return MakeStatus(Code::kInvalidArgument, "{:?}: not IPv4", ip);
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix);
  ifa->ifa_index = static_cast<unsigned>(ifindex);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  mnl_attr_put(nlh, IFA_LOCAL, sizeof(a), &a);
  mnl_attr_put(nlh, IFA_ADDRESS, sizeof(a), &a);
  if (broadcast && prefix < 31) {
    const uint32_t host_bits = prefix == 0 ? ~0U : (1U << (32 - prefix)) - 1;
    const uint32_t brd = htonl(ntohl(a.s_addr) | host_bits);
    mnl_attr_put_u32(nlh, IFA_BROADCAST, brd);
  }
  return Request(buf, fmt::format("address {}/{}", ip, prefix));
}

namespace {

Status PutRoute(nlmsghdr* nlh, const Route& r) {
  // The default route's 0.0.0.0/0 is a destination, not a range Ipv4Cidr takes.
  const bool default_route = r.dst == "0.0.0.0/0";
  auto cidr = default_route ? Result<Ipv4Cidr>(Ipv4Cidr{0, 0}) : Ipv4Cidr::Parse(r.dst);
  if (!cidr.ok()) return cidr.status();
  in_addr via{};
  if (!Ipv4(r.via, &via)) return MakeStatus(Code::kInvalidArgument, "{:?}: not IPv4", r.via);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = static_cast<uint8_t>(cidr->prefix);
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = r.protocol;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  if (r.onlink) rtm->rtm_flags |= RTNH_F_ONLINK;
  if (!default_route) mnl_attr_put_u32(nlh, RTA_DST, htonl(cidr->base));
  mnl_attr_put(nlh, RTA_GATEWAY, sizeof(via), &via);
  if (r.ifindex != 0) mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(r.ifindex));
  return Status::Ok();
}

}  // namespace

Status Rtnl::ReplaceRoute(const Route& r) {
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  KISO_RETURN_IF_ERROR(PutRoute(nlh, r));
  return Request(buf, fmt::format("route {} via {}", r.dst, r.via));
}

Status Rtnl::DeleteRoute(const Route& r) {
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_DELROUTE, 0);
  KISO_RETURN_IF_ERROR(PutRoute(nlh, r));
  return Request(buf, fmt::format("delete the route {} via {}", r.dst, r.via));
}

namespace {

struct RouteDump {
  std::vector<Route> routes;
};

int RouteAttr(const nlattr* attr, void* data) {
  auto** tb = static_cast<const nlattr**>(data);
  int type = mnl_attr_get_type(attr);
  if (mnl_attr_type_valid(attr, RTA_MAX) > 0) tb[type] = attr;
  return MNL_CB_OK;
}

int OnRoute(const nlmsghdr* nlh, void* data) {
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  if (rtm->rtm_family != AF_INET || rtm->rtm_protocol != kRouteProtocol ||
      rtm->rtm_table != RT_TABLE_MAIN)
    return MNL_CB_OK;
  const nlattr* tb[RTA_MAX + 1] = {};
  mnl_attr_parse(nlh, sizeof(*rtm), RouteAttr, tb);
  if (tb[RTA_DST] == nullptr || tb[RTA_GATEWAY] == nullptr) return MNL_CB_OK;
  char dst[INET_ADDRSTRLEN] = {}, via[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, mnl_attr_get_payload(tb[RTA_DST]), dst, sizeof dst);
  inet_ntop(AF_INET, mnl_attr_get_payload(tb[RTA_GATEWAY]), via, sizeof via);
  Route r;
  r.dst = fmt::format("{}/{}", dst, rtm->rtm_dst_len);
  r.via = via;
  if (tb[RTA_OIF] != nullptr) r.ifindex = static_cast<int>(mnl_attr_get_u32(tb[RTA_OIF]));
  r.onlink = (rtm->rtm_flags & RTNH_F_ONLINK) != 0;
  static_cast<RouteDump*>(data)->routes.push_back(r);
  return MNL_CB_OK;
}

}  // namespace

Result<std::vector<Route>> Rtnl::KisoRoutes() {
  std::vector<char> buf(kBuf, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = seq_++;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  if (mnl_socket_sendto(S(socket_), nlh, nlh->nlmsg_len) < 0)
    return MakeStatus(Code::kInternal, "list routes: {}", strerror(errno));
  RouteDump dump;
  std::vector<char> answer(size_t{1} << 16);
  const unsigned port = mnl_socket_get_portid(S(socket_));
  while (true) {
    ssize_t n = mnl_socket_recvfrom(S(socket_), answer.data(), answer.size());
    if (n < 0) return MakeStatus(Code::kInternal, "list routes: {}", strerror(errno));
    int r = mnl_cb_run(answer.data(), static_cast<size_t>(n), nlh->nlmsg_seq, port, OnRoute, &dump);
    if (r == MNL_CB_STOP) break;
    if (r < 0) return MakeStatus(Code::kInternal, "list routes: {}", strerror(errno));
  }
  return dump.routes;
}

Status Rtnl::ReplaceNeighbour(int ifindex, const std::string& ip, const Mac& mac) {
  in_addr a{};
  if (!Ipv4(ip, &a)) return MakeStatus(Code::kInvalidArgument, "{:?}: not IPv4", ip);
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
  auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  nd->ndm_family = AF_INET;
  nd->ndm_ifindex = ifindex;
  nd->ndm_state = NUD_PERMANENT;
  mnl_attr_put(nlh, NDA_DST, sizeof(a), &a);
  mnl_attr_put(nlh, NDA_LLADDR, mac.size(), mac.data());
  return Request(buf, fmt::format("neighbour {} at {}", ip, FormatMac(mac)));
}

Status Rtnl::ReplaceFdb(int ifindex, const Mac& mac, const std::string& remote_ip) {
  in_addr a{};
  if (!Ipv4(remote_ip, &a)) return MakeStatus(Code::kInvalidArgument, "{:?}: not IPv4", remote_ip);
  std::vector<char> buf;
  nlmsghdr* nlh = Header(buf, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
  auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  nd->ndm_family = AF_BRIDGE;
  nd->ndm_ifindex = ifindex;
  nd->ndm_state = NUD_PERMANENT;
  nd->ndm_flags = NTF_SELF;
  mnl_attr_put(nlh, NDA_LLADDR, mac.size(), mac.data());
  mnl_attr_put(nlh, NDA_DST, sizeof(a), &a);
  return Request(buf, fmt::format("forwarding {} to {}", FormatMac(mac), remote_ip));
}

Result<std::pair<std::string, int>> DeviceOf(const std::string& ip) {
  ifaddrs* all = nullptr;
  if (getifaddrs(&all) != 0) return MakeStatus(Code::kInternal, "getifaddrs: {}", strerror(errno));
  std::string name;
  for (ifaddrs* a = all; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
    if (ip == text) {
      name = a->ifa_name;
      break;
    }
  }
  freeifaddrs(all);
  if (name.empty()) return MakeStatus(Code::kNotFound, "no device holds {}", ip);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  int mtu = fd >= 0 && ioctl(fd, SIOCGIFMTU, &req) == 0 ? req.ifr_mtu : 1500;
  if (fd >= 0) close(fd);
  return std::pair{name, mtu};
}

}  // namespace kiso::network
