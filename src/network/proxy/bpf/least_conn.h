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
  __u32 flags; /* KISO_LB_FROM_OUTSIDE */
  struct kiso_lb_addr backends[KISO_LB_MAX_BACKENDS];
};

/* An entry that connections from other nodes reach too (an external IP, a
 * node port): the tc programs balance what arrives for it. A cluster IP's is
 * for this node's sockets only. */
#define KISO_LB_FROM_OUTSIDE 1U

/* The packet mark the tc ingress program gives a new connection from another
 * node: KISO_LB_MARK with the chosen endpoint's index (in the entry, which is
 * the order of nftables' endpoint chains for the port) in bits 16-23. The
 * port's nftables chain sends a marked connection to that endpoint
 * (rules.cc); an unmarked one gets round robin. */
#define KISO_LB_MARK 0x6b000000U
#define KISO_LB_MARK_MASK 0xffff0000U
#define KISO_LB_MARK_SHIFT 16

/* kiso_lb_remotes: a connection from another node (its client's address and
 * port, and the Service address it asked for), counted to `backend` until the
 * first FIN or RST either way (the end of IPVS's "active" connection). */
struct kiso_lb_flow { /* NOLINT(readability-identifier-naming) */
  __u32 client_ip;
  __u32 service_ip;
  __u16 client_port;
  __u16 service_port;
};

struct kiso_lb_remote { /* NOLINT(readability-identifier-naming) */
  struct kiso_lb_addr backend;
  __u32 index; /* The backend's index in its entry when counted. */
  __u32 pad;
  __u64 since; /* bpf_ktime_get_ns() when counted. */
};

/* kiso_lb_conns: a socket's cookie → where connect() sent it; removed when the
 * socket is released, which counts the connection off. */
struct kiso_lb_conn { /* NOLINT(readability-identifier-naming) */
  struct kiso_lb_addr service;
  struct kiso_lb_addr backend;
};

#endif /* KISO_NETWORK_PROXY_BPF_LEAST_CONN_H_ */
