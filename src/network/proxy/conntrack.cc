// conntrack.h's kernel side, in the kiso-netfilter.so plugin (see nftables.h).
#include "network/proxy/conntrack.h"

#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace kiso::network::proxy {

namespace {

// What a dump calls for each IPv4 entry.
using Visit = std::function<void(nf_conntrack*, const Flow&)>;

int Collect(enum nf_conntrack_msg_type /*type*/, struct nf_conntrack* ct, void* data) {
  const auto* visit = static_cast<const Visit*>(data);
  if (nfct_get_attr_u8(ct, ATTR_L3PROTO) != AF_INET) return NFCT_CB_CONTINUE;
  Flow f;
  f.protocol = nfct_get_attr_u8(ct, ATTR_L4PROTO);
  f.src = ntohl(nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_SRC));
  f.dst = ntohl(nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST));
  f.reply_src = ntohl(nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC));
  if (f.protocol == IPPROTO_TCP || f.protocol == IPPROTO_UDP || f.protocol == IPPROTO_SCTP) {
    f.sport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
    f.dport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
    f.reply_sport = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
  }
  f.dnat = (nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_DST_NAT) != 0;
  if (f.protocol == IPPROTO_TCP) {
    uint8_t state = nfct_get_attr_u8(ct, ATTR_TCP_STATE);
    f.closed = state == TCP_CONNTRACK_TIME_WAIT || state == TCP_CONNTRACK_CLOSE;
  }
  (*visit)(ct, f);
  return NFCT_CB_CONTINUE;
}

using Handle = std::unique_ptr<nfct_handle, decltype(&nfct_close)>;

Status Dump(Visit visit) {
  Handle dump(nfct_open(CONNTRACK, 0), nfct_close);
  if (!dump) return MakeStatus(Code::kUnavailable, "conntrack: netlink: {}", strerror(errno));
  nfct_callback_register(dump.get(), NFCT_T_ALL, Collect, &visit);
  uint32_t family = AF_INET;
  if (nfct_query(dump.get(), NFCT_Q_DUMP, &family) != 0)
    return MakeStatus(Code::kUnavailable, "conntrack: list entries: {}", strerror(errno));
  return Status::Ok();
}

Status VisitFlows(const std::function<void(const Flow&)>& visit) {
  return Dump([&](nf_conntrack*, const Flow& f) { visit(f); });
}

Result<int> DeleteDoomed(const std::function<bool(const Flow&)>& doomed) {
  std::vector<nf_conntrack*> found;
  Status listed = Dump([&](nf_conntrack* ct, const Flow& f) {
    if (doomed(f)) found.push_back(nfct_clone(ct));
  });
  if (!listed.ok()) {
    for (auto* ct : found) nfct_destroy(ct);
    return listed;
  }
  Handle del(nfct_open(CONNTRACK, 0), nfct_close);
  int deleted = 0;
  for (auto* ct : found) {
    // Gone already (its timeout, a concurrent delete) is as good as deleted by us.
    if (del && nfct_query(del.get(), NFCT_Q_DESTROY, ct) == 0) ++deleted;
    nfct_destroy(ct);
  }
  if (!del) return MakeStatus(Code::kUnavailable, "conntrack: netlink: {}", strerror(errno));
  return deleted;
}

}  // namespace

}  // namespace kiso::network::proxy

KISO_PLUGIN_ENTRY void KisoForEachFlow(
    const std::function<void(const kiso::network::proxy::Flow&)>* visit, kiso::Status* out) {
  *out = kiso::network::proxy::VisitFlows(*visit);
}

KISO_PLUGIN_ENTRY void KisoDeleteFlows(
    const std::function<bool(const kiso::network::proxy::Flow&)>* doomed, kiso::Result<int>* out) {
  *out = kiso::network::proxy::DeleteDoomed(*doomed);
}
