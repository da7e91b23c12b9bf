#include "network/proxy/conntrack.h"

#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace kiso::network::proxy {

namespace {

struct Match {
  uint32_t ip = 0;    // Network order.
  uint16_t port = 0;  // Network order.
  std::vector<nf_conntrack*> doomed;
};

int Collect(enum nf_conntrack_msg_type /*type*/, struct nf_conntrack* ct, void* data) {
  auto* m = static_cast<Match*>(data);
  if (nfct_get_attr_u8(ct, ATTR_L3PROTO) == AF_INET &&
      nfct_get_attr_u8(ct, ATTR_L4PROTO) == IPPROTO_UDP &&
      (nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_DST_NAT) != 0 &&
      nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC) == m->ip &&
      nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC) == m->port) {
    m->doomed.push_back(nfct_clone(ct));
  }
  return NFCT_CB_CONTINUE;
}

using Handle = std::unique_ptr<nfct_handle, decltype(&nfct_close)>;

}  // namespace

Result<int> DeleteUdpFlowsTo(const std::string& ip, uint16_t port) {
  in_addr addr{};
  if (inet_pton(AF_INET, ip.c_str(), &addr) != 1)
    return MakeStatus(Code::kInvalidArgument, "conntrack: {:?} is no IPv4 address", ip);
  Match m{addr.s_addr, htons(port), {}};
  {
    Handle dump(nfct_open(CONNTRACK, 0), nfct_close);
    if (!dump) return MakeStatus(Code::kUnavailable, "conntrack: netlink: {}", strerror(errno));
    nfct_callback_register(dump.get(), NFCT_T_ALL, Collect, &m);
    uint32_t family = AF_INET;
    if (nfct_query(dump.get(), NFCT_Q_DUMP, &family) != 0) {
      int e = errno;
      for (auto* ct : m.doomed) nfct_destroy(ct);
      return MakeStatus(Code::kUnavailable, "conntrack: list entries: {}", strerror(e));
    }
  }
  Handle del(nfct_open(CONNTRACK, 0), nfct_close);
  int deleted = 0;
  for (auto* ct : m.doomed) {
    // Gone already (its timeout, a concurrent delete) is as good as deleted by us.
    if (del && nfct_query(del.get(), NFCT_Q_DESTROY, ct) == 0) ++deleted;
    nfct_destroy(ct);
  }
  if (!del) return MakeStatus(Code::kUnavailable, "conntrack: netlink: {}", strerror(errno));
  return deleted;
}

}  // namespace kiso::network::proxy
