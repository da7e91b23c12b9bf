/* Least connections in the kernel at connection time (seed 07.6.3), for the
 * Services annotated kiso.dev/load-balancer: least-connections. nftables has
 * no live connection counts, and IPVS is not in this kernel, so these are
 * cgroup socket hooks on the node's cgroup2 root (Cilium's socket-level load
 * balancing): connect() to a Service address is rewritten to the endpoint
 * with the fewest open connections, which counts one more; the socket's
 * release counts it off; getpeername() answers the Service address the
 * program connected to. No packet is translated: the connection goes to the
 * pod straight, and nftables never sees the Service address.
 *
 * What no socket of this node opens (a connection from another node to a node
 * port or an external IP) is chosen for by the tc programs on the node's
 * interfaces, from the same counts: ingress picks the endpoint with the fewest
 * connections for a SYN and marks the packet with its index (nftables'
 * chain for the port DNATs a marked connection to that endpoint, and
 * conntrack keeps the choice), counting it on until the first FIN or RST seen
 * either way (egress sees the endpoint's, already translated back). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "least_conn.h"

char LICENSE[] SEC("license") = "GPL";

/* The node's network namespace (set before loading): 127.0.0.0/8 is the
 * node's only there; a pod's loopback is its own. */
const volatile __u64 node_netns = 0;

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC); /* Kernel memory as used, not at the maximum. */
  __uint(max_entries, 16384);
  __type(key, struct kiso_lb_addr);
  __type(value, struct kiso_lb_service);
} kiso_lb_svcs SEC(".maps");

/* Open connections per endpoint. Signed: a count the agent reset while
 * connections were open may go below zero as they close; it counts as 0. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 65536);
  __type(key, struct kiso_lb_addr);
  __type(value, __s64);
} kiso_lb_active SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 262144);
  __type(key, __u64);
  __type(value, struct kiso_lb_conn);
} kiso_lb_conns SEC(".maps");

/* Connections from other nodes (tc). Those whose end went unseen are counted
 * off by the agent's sweep (no conntrack entry left); one pushed out of the
 * map (past 262,144 open at once, least recently used first) keeps its count
 * until the agent restarts. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 262144);
  __type(key, struct kiso_lb_flow);
  __type(value, struct kiso_lb_remote);
} kiso_lb_remotes SEC(".maps");

static __always_inline void count_off(const struct kiso_lb_addr *backend) {
  __s64 *n = bpf_map_lookup_elem(&kiso_lb_active, backend);
  if (n) __sync_fetch_and_add(n, -1);
}

/* One step of the search for the endpoint with the fewest connections. */
struct pick {
  struct kiso_lb_service *svc;
  __u32 best;
  __s64 least;
};

static long pick_step(__u32 i, void *data) {
  struct pick *p = data;
  if (i >= KISO_LB_MAX_BACKENDS || i >= p->svc->count) return 1;
  /* The compiler folds the test above into one the verifier cannot follow;
   * a mask it may not remove shows the bound again. */
  __u32 j = i;
  barrier_var(j);
  j &= KISO_LB_MAX_BACKENDS - 1;
  __s64 *c = bpf_map_lookup_elem(&kiso_lb_active, &p->svc->backends[j]);
  __s64 v = c && *c > 0 ? *c : 0;
  if (p->best == KISO_LB_MAX_BACKENDS || v < p->least) {
    p->best = i;
    p->least = v;
  }
  return 0;
}

/* The index of `svc`'s endpoint with the fewest connections;
 * KISO_LB_MAX_BACKENDS when it has none. */
static __always_inline __u32 least_of(struct kiso_lb_service *svc) {
  /* bpf_loop: the verifier checks the step once, not once per endpoint. */
  struct pick p = {.svc = svc, .best = KISO_LB_MAX_BACKENDS, .least = 0};
  bpf_loop(KISO_LB_MAX_BACKENDS, pick_step, &p, 0);
  return p.best;
}

/* The count of `backend`, made when there is none yet. */
static __always_inline __s64 *count_of(const struct kiso_lb_addr *backend) {
  __s64 *c = bpf_map_lookup_elem(&kiso_lb_active, backend);
  if (!c) {
    __s64 zero = 0;
    bpf_map_update_elem(&kiso_lb_active, backend, &zero, BPF_NOEXIST);
    c = bpf_map_lookup_elem(&kiso_lb_active, backend);
  }
  return c;
}

SEC("cgroup/connect4")
int kiso_lb_connect4(struct bpf_sock_addr *ctx) {
  if (ctx->protocol != IPPROTO_TCP) return 1;
  struct kiso_lb_addr key = {.ip = ctx->user_ip4, .port = (__u16)ctx->user_port};
  if ((bpf_ntohl(key.ip) >> 24) == 127 && bpf_get_netns_cookie(ctx) != node_netns) return 1;
  struct kiso_lb_service *svc = bpf_map_lookup_elem(&kiso_lb_svcs, &key);
  if (!svc) return 1;
  __u32 best = least_of(svc);
  if (best >= KISO_LB_MAX_BACKENDS) return 1; /* No backend: nftables refuses it. */
  struct kiso_lb_conn conn = {.service = key, .backend = svc->backends[best]};

  __u64 cookie = bpf_get_socket_cookie(ctx);
  /* connect() again on a socket whose last one failed: that one is off. */
  struct kiso_lb_conn *before = bpf_map_lookup_elem(&kiso_lb_conns, &cookie);
  if (before) {
    count_off(&before->backend);
    bpf_map_delete_elem(&kiso_lb_conns, &cookie);
  }
  __s64 *c = count_of(&conn.backend);
  /* Counted only when its release can count it off again. */
  if (c && bpf_map_update_elem(&kiso_lb_conns, &cookie, &conn, BPF_ANY) == 0)
    __sync_fetch_and_add(c, 1);
  ctx->user_ip4 = conn.backend.ip;
  ctx->user_port = conn.backend.port;
  return 1;
}

SEC("cgroup/sock_release")
int kiso_lb_release(struct bpf_sock *sk) {
  __u64 cookie = bpf_get_socket_cookie(sk);
  struct kiso_lb_conn *conn = bpf_map_lookup_elem(&kiso_lb_conns, &cookie);
  if (!conn) return 1;
  count_off(&conn->backend);
  bpf_map_delete_elem(&kiso_lb_conns, &cookie);
  return 1;
}

SEC("cgroup/getpeername4")
int kiso_lb_getpeername4(struct bpf_sock_addr *ctx) {
  __u64 cookie = bpf_get_socket_cookie(ctx);
  struct kiso_lb_conn *conn = bpf_map_lookup_elem(&kiso_lb_conns, &cookie);
  if (!conn) return 1;
  if (ctx->user_ip4 == conn->backend.ip && (__u16)ctx->user_port == conn->backend.port) {
    ctx->user_ip4 = conn->service.ip;
    ctx->user_port = conn->service.port;
  }
  return 1;
}

/* What the tc programs read of a TCP/IPv4 packet on an Ethernet device. */
struct tcp_seen {
  __u32 saddr, daddr;
  __u16 sport, dport;
  __u8 flags; /* The TCP header's 14th byte: FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10. */
};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static __always_inline int read_tcp(struct __sk_buff *skb, struct tcp_seen *t) {
  if (skb->protocol != bpf_htons(ETH_P_IP)) return -1;
  struct iphdr ip;
  if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof ip) != 0) return -1;
  if (ip.protocol != IPPROTO_TCP || ip.ihl < 5) return -1;
  if (ip.frag_off & bpf_htons(0x1fff)) return -1; /* A later fragment: no TCP header. */
  __u8 head[14];
  if (bpf_skb_load_bytes(skb, ETH_HLEN + ip.ihl * 4, head, sizeof head) != 0) return -1;
  t->saddr = ip.saddr;
  t->daddr = ip.daddr;
  __builtin_memcpy(&t->sport, &head[0], 2);
  __builtin_memcpy(&t->dport, &head[2], 2);
  t->flags = head[13];
  return 0;
}

/* The entry a connection from elsewhere to daddr:dport reaches: an external
 * IP's or one for a node address and node port. */
static __always_inline struct kiso_lb_service *outside_entry(const struct tcp_seen *t) {
  struct kiso_lb_addr key = {.ip = t->daddr, .port = t->dport};
  struct kiso_lb_service *svc = bpf_map_lookup_elem(&kiso_lb_svcs, &key);
  return svc && (svc->flags & KISO_LB_FROM_OUTSIDE) ? svc : 0;
}

/* Counts a connection from elsewhere off, once: whoever deletes its entry
 * (the client's FIN and the endpoint's may cross on two CPUs). */
static __always_inline void end_flow(const struct kiso_lb_flow *flow) {
  struct kiso_lb_remote *r = bpf_map_lookup_elem(&kiso_lb_remotes, flow);
  if (!r) return;
  struct kiso_lb_addr backend = r->backend;
  if (bpf_map_delete_elem(&kiso_lb_remotes, flow) == 0) count_off(&backend);
}

static __always_inline void mark(struct __sk_buff *skb, __u32 index) {
  skb->mark = (skb->mark & ~KISO_LB_MARK_MASK) | KISO_LB_MARK | (index << KISO_LB_MARK_SHIFT);
}

/* TC_ACT_UNSPEC: on to the next program (tcx's TCX_NEXT), the packet as it was. */
SEC("tc")
int kiso_lb_tc_ingress(struct __sk_buff *skb) {
  struct tcp_seen t;
  if (read_tcp(skb, &t) != 0) return TC_ACT_UNSPEC;
  struct kiso_lb_flow flow = {.client_ip = t.saddr, .service_ip = t.daddr,
                              .client_port = t.sport, .service_port = t.dport};
  if (t.flags & (TCP_FIN | TCP_RST)) {
    end_flow(&flow);
    return TC_ACT_UNSPEC;
  }
  if ((t.flags & (TCP_SYN | TCP_ACK)) != TCP_SYN) return TC_ACT_UNSPEC;
  /* A SYN sent again: the choice made for the first. */
  struct kiso_lb_remote *before = bpf_map_lookup_elem(&kiso_lb_remotes, &flow);
  if (before) {
    mark(skb, before->index);
    return TC_ACT_UNSPEC;
  }
  struct kiso_lb_service *svc = outside_entry(&t);
  if (!svc) return TC_ACT_UNSPEC;
  __u32 best = least_of(svc);
  if (best >= KISO_LB_MAX_BACKENDS) return TC_ACT_UNSPEC;
  struct kiso_lb_remote r = {.backend = svc->backends[best], .index = best,
                             .since = bpf_ktime_get_ns()};
  __s64 *c = count_of(&r.backend);
  if (c && bpf_map_update_elem(&kiso_lb_remotes, &flow, &r, BPF_ANY) == 0)
    __sync_fetch_and_add(c, 1);
  mark(skb, best);
  return TC_ACT_UNSPEC;
}

/* The endpoint's FIN or RST, on its way back to the client (translated back
 * to the Service address by then). */
SEC("tc")
int kiso_lb_tc_egress(struct __sk_buff *skb) {
  struct tcp_seen t;
  if (read_tcp(skb, &t) != 0 || !(t.flags & (TCP_FIN | TCP_RST))) return TC_ACT_UNSPEC;
  struct kiso_lb_flow flow = {.client_ip = t.daddr, .service_ip = t.saddr,
                              .client_port = t.dport, .service_port = t.sport};
  end_flow(&flow);
  return TC_ACT_UNSPEC;
}

/* Run by the agent (BPF_PROG_TEST_RUN) for a connection from elsewhere whose
 * conntrack entry went without a FIN or RST seen: counted off as the data
 * path would. */
SEC("syscall")
int kiso_lb_forget(struct kiso_lb_flow *ctx) {
  struct kiso_lb_flow flow = *ctx;
  end_flow(&flow);
  return 0;
}
