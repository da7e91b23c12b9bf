// Against the kernel's conntrack table (root): entries the test creates
// itself, for addresses of 127.0.0.0/8 nothing else uses.
#include "network/proxy/conntrack.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstring>

namespace kiso::network::proxy {
namespace {

uint32_t Ip(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return a.s_addr;
}

// A UDP entry 127.91.0.1:sport → dst:dport, destination-NATed to `to`:8053 when set
// (the kernel then makes its reply tuple come from there).
nf_conntrack* Entry(uint16_t sport, const char* dst, uint16_t dport, const char* to) {
  nf_conntrack* ct = nfct_new();
  nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
  nfct_set_attr_u32(ct, ATTR_IPV4_SRC, Ip("127.91.0.1"));
  nfct_set_attr_u32(ct, ATTR_IPV4_DST, Ip(dst));
  nfct_set_attr_u8(ct, ATTR_L4PROTO, IPPROTO_UDP);
  nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(sport));
  nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(dport));
  nfct_setobjopt(ct, NFCT_SOPT_SETUP_REPLY);
  if (to) {
    nfct_set_attr_u32(ct, ATTR_DNAT_IPV4, Ip(to));
    nfct_set_attr_u16(ct, ATTR_DNAT_PORT, htons(8053));
  }
  nfct_set_attr_u32(ct, ATTR_TIMEOUT, 60);
  return ct;
}

bool Exists(nfct_handle* h, nf_conntrack* ct) { return nfct_query(h, NFCT_Q_GET, ct) == 0; }

TEST(Conntrack, DeletesOnlyUdpFlowsNatedToTheGoneEndpoint) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (conntrack over netlink)";
  nfct_handle* h = nfct_open(CONNTRACK, 0);
  ASSERT_NE(h, nullptr);
  const uint16_t base = static_cast<uint16_t>(20000 + getpid() % 20000);
  // Through the virtual IP to the leaving endpoint; to another one; straight to it, no NAT.
  nf_conntrack* gone = Entry(base, "127.91.0.2", 80, "127.91.0.10");
  nf_conntrack* stays = Entry(base, "127.91.0.2", 81, "127.91.0.11");
  nf_conntrack* direct =
      Entry(base + 1, "127.91.0.10", 8053, nullptr);  // A reply tuple of its own.
  for (auto* ct : {gone, stays, direct}) {
    ASSERT_EQ(nfct_query(h, NFCT_Q_CREATE, ct), 0) << strerror(errno);
  }
  auto deleted = DeleteUdpFlowsTo("127.91.0.10", 8053);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(*deleted, 1);
  EXPECT_FALSE(Exists(h, gone));
  EXPECT_TRUE(Exists(h, stays));
  EXPECT_TRUE(Exists(h, direct));
  for (auto* ct : {gone, stays, direct}) {
    nfct_query(h, NFCT_Q_DESTROY, ct);  // Nothing left behind.
    nfct_destroy(ct);
  }
  nfct_close(h);
  EXPECT_FALSE(DeleteUdpFlowsTo("not-an-ip", 53).ok());
}

}  // namespace
}  // namespace kiso::network::proxy
