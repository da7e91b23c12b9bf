/* NetworkPolicy in eBPF (Cilium's way; the seed's network tuple, 07.2.4): a
 * tc program on every bridge port towards its pod (egress) and on the bridge
 * towards the node (ingress), so that it sees each packet after Service
 * translation. A packet that the kernel's conntrack knows as a reply of a
 * flow (either tuple: a Service's reply comes back untranslated) passes;
 * every other is decided afresh, so a policy change takes effect on open
 * flows at once: the source's egress (when it is an isolated pod here) and
 * the destination's ingress must both allow it, each by a longest-prefix
 * match of the peer in the pod's slot, then of the port in the port set that
 * names. Traffic from the node itself is always allowed. Flows conntrack
 * cannot look up here (SCTP, ICMP) are remembered when allowed, so that
 * their replies pass. A refusal drops the packet. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "policy.h"

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct kiso_np_pod);
} kiso_np_pods SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 1048576);
  __type(key, struct kiso_np_peer_key);
  __type(value, __u32);
} kiso_np_peers SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 262144);
  __type(key, struct kiso_np_port_key);
  __type(value, __u8);
} kiso_np_ports SEC(".maps");

/* The node's own addresses. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 1024);
  __type(key, __u32);
  __type(value, __u8);
} kiso_np_node SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct kiso_np_flow);
  __type(value, __u8);
} kiso_np_flows SEC(".maps");

/* The kernel's conntrack, for TCP and UDP (kfuncs; the options as 6.1 has them).
 * nf_conn is opaque here, but must be a struct, not a declaration, for libbpf
 * to find these prototypes the kernel's. */
struct nf_conn {
  __u32 opaque;
};
struct bpf_ct_opts___kiso {
  __s32 netns_id;
  __s32 error;
  __u8 l4proto;
  __u8 dir;
  __u8 reserved[2];
};
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple,
                                         __u32 tuple_size, struct bpf_ct_opts___kiso *opts,
                                         __u32 opts_size) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

#define CT_ORIGINAL 0
#define CT_REPLY 1

/* The direction conntrack knows the tuple in, or -1 when it does not. */
static __always_inline int ct_direction(struct __sk_buff *skb, __u32 saddr, __u32 daddr,
                                        __u16 sport, __u16 dport, __u8 protocol) {
  struct bpf_sock_tuple t = {};
  t.ipv4.saddr = saddr;
  t.ipv4.daddr = daddr;
  t.ipv4.sport = sport;
  t.ipv4.dport = dport;
  struct bpf_ct_opts___kiso opts = {.netns_id = -1, .l4proto = protocol};
  struct nf_conn *ct = bpf_skb_ct_lookup(skb, &t, sizeof(t.ipv4), &opts, sizeof(opts));
  if (!ct) return -1;
  int dir = opts.dir;
  bpf_ct_release(ct);
  return dir;
}

/* Whether `pod`'s slot allows `peer` with (protocol, port); port in network order. */
static __always_inline int allows(__u32 slot, __u32 peer, __u8 protocol, __u16 port) {
  struct kiso_np_peer_key pk = {.prefixlen = 64, .slot = bpf_htonl(slot), .addr = peer};
  __u32 *set = bpf_map_lookup_elem(&kiso_np_peers, &pk);
  if (!set) return 0;
  if (*set == 0) return 1;
  if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP && protocol != IPPROTO_SCTP) return 0;
  struct kiso_np_port_key k = {.prefixlen = 56, .set = bpf_htonl(*set), .protocol = protocol,
                               .port = port};
  return bpf_map_lookup_elem(&kiso_np_ports, &k) != 0;
}

static __always_inline int decide(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > end) return TC_ACT_OK;
  struct kiso_np_pod *src = bpf_map_lookup_elem(&kiso_np_pods, &ip->saddr);
  struct kiso_np_pod *dst = bpf_map_lookup_elem(&kiso_np_pods, &ip->daddr);
  __u32 src_slot = src ? src->egress : 0;
  __u32 dst_slot = dst ? dst->ingress : 0;
  if (!src_slot && !dst_slot) return TC_ACT_OK; /* Neither end isolated. */

  __u16 sport = 0, dport = 0;
  __u8 protocol = ip->protocol;
  /* A fragment past the first has no ports: decided as its first was (conntrack reassembles). */
  if (ip->frag_off & bpf_htons(0x1fff)) return TC_ACT_OK;
  if (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_SCTP) {
    __u16 *ports = (void *)ip + ip->ihl * 4;
    if ((void *)(ports + 2) > end) return TC_ACT_SHOT;
    sport = ports[0];
    dport = ports[1];
  }

  if (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP) {
    if (ct_direction(skb, ip->saddr, ip->daddr, sport, dport, protocol) == CT_REPLY)
      return TC_ACT_OK;
    /* The reverse of an original tuple: a reply on its way back, untranslated. */
    if (ct_direction(skb, ip->daddr, ip->saddr, dport, sport, protocol) == CT_ORIGINAL)
      return TC_ACT_OK;
  } else {
    struct kiso_np_flow back = {.src = ip->daddr, .dst = ip->saddr, .sport = dport,
                                .dport = sport, .protocol = protocol};
    if (bpf_map_lookup_elem(&kiso_np_flows, &back)) return TC_ACT_OK;
  }

  if (bpf_map_lookup_elem(&kiso_np_node, &ip->saddr)) return TC_ACT_OK;
  if (src_slot && !allows(src_slot, ip->daddr, protocol, dport)) return TC_ACT_SHOT;
  if (dst_slot && !allows(dst_slot, ip->saddr, protocol, dport)) return TC_ACT_SHOT;
  if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) {
    struct kiso_np_flow f = {.src = ip->saddr, .dst = ip->daddr, .sport = sport, .dport = dport,
                             .protocol = protocol};
    __u8 one = 1;
    bpf_map_update_elem(&kiso_np_flows, &f, &one, BPF_ANY);
  }
  return TC_ACT_OK;
}

SEC("tc")
int kiso_np_decide(struct __sk_buff *skb) { return decide(skb); }
