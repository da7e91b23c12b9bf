// The OCI runtime-spec config.json for a container: what runc and crun read
// from a bundle. Defaults follow containerd's for Kubernetes: new pid and
// mount namespaces, the sandbox's network, IPC and UTS namespaces, the
// default capability set, masked and read-only /proc paths,
// no_new_privileges; privileged containers get every capability and /dev.
#pragma once

#include <boost/json/value.hpp>
#include <string>

#include "runtime/runtime.h"

namespace kiso::runtime {

// `rootfs` is the container's own (writable unless read_only_rootfs) root;
// `cgroups_path` the cgroup it runs in ("/kiso/<id>").
boost::json::value BuildSpec(const ContainerConfig& config, const Sandbox& sandbox,
                             const std::string& rootfs, const std::string& hostname,
                             const std::string& cgroups_path);

}  // namespace kiso::runtime
