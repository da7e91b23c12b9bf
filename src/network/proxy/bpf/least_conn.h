/* The maps the least-connections socket balancer (least_conn.bpf.c) shares
 * with the node agent (socket_balancer.cc). Plain C: both clang's BPF target
 * and g++ read it. Addresses and ports in network byte order. */
#ifndef KISO_NETWORK_PROXY_BPF_LEAST_CONN_H_
#define KISO_NETWORK_PROXY_BPF_LEAST_CONN_H_

#include <linux/types.h>

/* The backends one Service address may have here; a Service port with more
 * stays with the nftables data plane (round robin). A power of two. */
#define KISO_LB_MAX_BACKENDS 64

struct kiso_lb_addr { /* NOLINT(readability-identifier-naming): C, as BPF has it */
  __u32 ip;
  __u16 port;
  __u16 pad; /* Zero: the key is hashed as bytes. */
};

/* kiso_lb_svcs: a Service address (cluster IP, external IP or node address with
 * the node port) → its usable endpoints. Replaced whole on a change, so a
 * connect() sees the old list or the new one, never a mix. */
struct kiso_lb_service { /* NOLINT(readability-identifier-naming) */
  __u32 count;
  struct kiso_lb_addr backends[KISO_LB_MAX_BACKENDS];
};

/* kiso_lb_conns: a socket's cookie → where connect() sent it; removed when the
 * socket is released, which counts the connection off. */
struct kiso_lb_conn { /* NOLINT(readability-identifier-naming) */
  struct kiso_lb_addr service;
  struct kiso_lb_addr backend;
};

#endif /* KISO_NETWORK_PROXY_BPF_LEAST_CONN_H_ */
