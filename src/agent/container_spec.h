// From a pod's container spec to a runtime ContainerConfig, as the kubelet
// does it: argv from command/args over the image's Entrypoint/Cmd, the
// environment (image Env, then env and envFrom with fieldRef, configMapKeyRef
// and secretKeyRef), volumes (emptyDir, configMap, secret, hostPath) as bind
// mounts, securityContext, and cgroup limits from resources.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>

#include "client/client.h"
#include "image/image_store.h"
#include "runtime/runtime.h"

namespace kiso::agent {

struct PodContext {
  const boost::json::value* pod = nullptr;
  std::string pod_ip;
  std::string host_ip;
  std::string node_name;
  std::string pod_dir;  // <data>/pods/<ns>_<name>_<uid>: volumes live under it.
  // Where Localhost seccomp profiles are (the kubelet's <root>/seccomp).
  std::string seccomp_dir;
  // The cluster DNS (the kubelet's --cluster-dns, --cluster-domain) and the
  // node's resolver configuration (--resolv-conf), for the pod's resolv.conf.
  std::string cluster_dns;
  std::string cluster_domain = "cluster.local";
  std::string resolv_conf = "/etc/resolv.conf";
};

// The pod's /etc/resolv.conf, as the kubelet writes it for its dnsPolicy
// (ClusterFirst, ClusterFirstWithHostNet, Default, None) and dnsConfig.
std::string ResolvConf(const PodContext& pod);

// Materialises the pod's volumes under pod_dir (emptyDir directories;
// configMap, secret, downwardAPI and projected files, service account tokens
// among them). Idempotent; the agent runs it every --sync-frequency, so a
// changed ConfigMap reaches the files and a token is renewed once 80% of its
// life has passed.
Status PrepareVolumes(client::Client* client, const PodContext& pod);
// The message the kubelet evicts a pod with when one of its disk-backed
// emptyDir volumes holds more than its sizeLimit (a memory-backed one is a
// tmpfs of that size: it cannot).
std::optional<std::string> EmptyDirOverLimit(const PodContext& pod);

// The container's runtime config; an error message is what the pod's
// CreateContainerConfigError / CreateContainerError status says.
Result<runtime::ContainerConfig> BuildContainerConfig(client::Client* client, const PodContext& pod,
                                                      const boost::json::value& container,
                                                      const image::Image& image,
                                                      const std::string& image_rootfs);

}  // namespace kiso::agent
