// The cluster the policy tests share: namespaces x, y and z (labelled ns=…
// and kubernetes.io/metadata.name=…), pods a, b and c in each on this node
// (10.1.<ns>.<pod>, labelled pod=…, serving TCP and UDP on 80 and 81 under
// the upstream suite's port names), x/remote on another node, y/nameless
// without named ports, and the cluster DNS's endpoint as kube-system/dns.
#pragma once

#include "network/policy/model.h"

namespace kiso::network::policy {

inline Cluster TestCluster() {
  Cluster c;
  const char* namespaces[] = {"x", "y", "z"};
  for (uint32_t n = 0; n < 3; ++n) {
    std::string ns = namespaces[n];
    c.namespaces[ns] = {{"ns", ns}, {"kubernetes.io/metadata.name", ns}};
    const char* names[] = {"a", "b", "c"};
    for (uint32_t p = 0; p < 3; ++p) {
      Pod pod;
      pod.ns = ns;
      pod.labels = {{"pod", names[p]}};
      pod.ip = (10u << 24) | (1u << 16) | ((n + 1) << 8) | (p + 1);
      pod.local = true;
      for (uint16_t port : {80, 81}) {
        pod.ports[fmt::format("serve-{}-tcp", port)] = {kTcp, port};
        pod.ports[fmt::format("serve-{}-udp", port)] = {kUdp, port};
        pod.ports[fmt::format("serve-{}-sctp", port)] = {kSctp, port};
      }
      c.pods[ns + "/" + names[p]] = pod;
    }
  }
  Pod remote = c.pods["x/a"];
  remote.ip = (10u << 24) | (2u << 16) | 1;
  remote.local = false;
  c.pods["x/remote"] = remote;
  Pod nameless;
  nameless.ns = "y";
  nameless.labels = {{"pod", "nameless"}};
  nameless.ip = (10u << 24) | (1u << 16) | (2u << 8) | 9;
  nameless.local = true;
  c.pods["y/nameless"] = nameless;
  c.namespaces["kube-system"] = {{"kubernetes.io/metadata.name", "kube-system"}};
  Pod dns;
  dns.ns = "kube-system";
  dns.labels = {{"k8s-app", "kube-dns"}};
  dns.ip = (192u << 24) | (168u << 16) | (5u << 8) | 5;
  dns.ports["dns"] = {kUdp, 10053};
  dns.ports["dns-tcp"] = {kTcp, 10053};
  dns.aliases[53] = 10053;
  c.pods["kube-system/dns"] = dns;
  return c;
}

}  // namespace kiso::network::policy
