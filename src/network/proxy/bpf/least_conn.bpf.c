/* Least connections in the kernel at connection time (seed 07.6.3), for the
 * Services annotated kiso.dev/load-balancer: least-connections. nftables has
 * no live connection counts, and IPVS is not in this kernel, so these are
 * cgroup socket hooks on the node's cgroup2 root (Cilium's socket-level load
 * balancing): connect() to a Service address is rewritten to the endpoint
 * with the fewest open connections, which counts one more; the socket's
 * release counts it off; getpeername() answers the Service address the
 * program connected to. No packet is translated: the connection goes to the
 * pod straight, and nftables never sees the Service address. */
#include <linux/bpf.h>
#include <linux/in.h>
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

SEC("cgroup/connect4")
int kiso_lb_connect4(struct bpf_sock_addr *ctx) {
  if (ctx->protocol != IPPROTO_TCP) return 1;
  struct kiso_lb_addr key = {.ip = ctx->user_ip4, .port = (__u16)ctx->user_port};
  if ((bpf_ntohl(key.ip) >> 24) == 127 && bpf_get_netns_cookie(ctx) != node_netns) return 1;
  struct kiso_lb_service *svc = bpf_map_lookup_elem(&kiso_lb_svcs, &key);
  if (!svc) return 1;
  /* bpf_loop: the verifier checks the step once, not once per endpoint. */
  struct pick p = {.svc = svc, .best = KISO_LB_MAX_BACKENDS, .least = 0};
  bpf_loop(KISO_LB_MAX_BACKENDS, pick_step, &p, 0);
  __u32 best = p.best;
  if (best >= KISO_LB_MAX_BACKENDS) return 1; /* No backend: nftables refuses it. */
  struct kiso_lb_conn conn = {.service = key, .backend = svc->backends[best]};

  __u64 cookie = bpf_get_socket_cookie(ctx);
  /* connect() again on a socket whose last one failed: that one is off. */
  struct kiso_lb_conn *before = bpf_map_lookup_elem(&kiso_lb_conns, &cookie);
  if (before) {
    count_off(&before->backend);
    bpf_map_delete_elem(&kiso_lb_conns, &cookie);
  }
  __s64 *c = bpf_map_lookup_elem(&kiso_lb_active, &conn.backend);
  if (!c) {
    __s64 zero = 0;
    bpf_map_update_elem(&kiso_lb_active, &conn.backend, &zero, BPF_NOEXIST);
    c = bpf_map_lookup_elem(&kiso_lb_active, &conn.backend);
  }
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
