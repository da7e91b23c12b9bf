/* The maps the NetworkPolicy programs (policy.bpf.c) decide from, shared
 * with the agent (network/policy/ebpf_enforcer.cc). Addresses and ports in
 * network order. */
#ifndef KISO_POLICY_BPF_H
#define KISO_POLICY_BPF_H

#include <linux/types.h>

/* An isolated pod's slots, one per direction (0: not isolated that way). */
struct kiso_np_pod { /* NOLINT(readability-identifier-naming): C, as BPF has it */
  __u32 ingress;
  __u32 egress;
};

/* The peers a slot allows: longest-prefix match on (slot, address); the
 * value is the port set allowed to that peer (0: every port and protocol). */
struct kiso_np_peer_key { /* NOLINT(readability-identifier-naming): C, as BPF has it */
  __u32 prefixlen;        /* 32 + the address prefix's length. */
  __u32 slot;             /* Network order, so that it is the key's first 32 bits. */
  __u32 addr;
};

/* A port set's ports: longest-prefix match on (set, protocol, port). */
struct kiso_np_port_key { /* NOLINT(readability-identifier-naming): C, as BPF has it */
  __u32 prefixlen;        /* 40 + the port prefix's length. */
  __u32 set;              /* Network order. */
  __u8 protocol;
  __u16 port;
} __attribute__((packed));

/* A flow the kernel's conntrack does not follow here (SCTP, ICMP), allowed. */
struct kiso_np_flow { /* NOLINT(readability-identifier-naming): C, as BPF has it */
  __u32 src, dst;
  __u16 sport, dport;
  __u8 protocol;
  __u8 pad[3];
};

#endif
