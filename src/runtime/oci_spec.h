// The OCI runtime-spec config.json for a container: what runc and crun read
// from a bundle. Defaults follow containerd's for Kubernetes: new pid and
// mount namespaces, the sandbox's network, IPC and UTS namespaces, the
// default capability set (less drops, plus adds), masked and read-only /proc
// paths, and the runtime's default seccomp profile; privileged containers get
// every capability, /dev and no seccomp filter.
//
// The default seccomp profile (RuntimeDefault, seccomp.cc) is an allow-list
// as Docker's and containerd's are: everything not listed fails with EPERM —
// mounts and namespaces (unshare, setns, clone with namespace flags; clone3
// answers ENOSYS so libc falls back to clone), kernel modules, reboot and
// kexec, setting the clock, swap, quotas, bpf, perf events, tracing other
// processes (ptrace, process_vm_*, kcmp), kernel keyrings, io_uring,
// userfaultfd and obsolete calls. A container that adds the capability
// (SYS_ADMIN, SYS_PTRACE, SYS_MODULE, SYS_BOOT, SYS_TIME, …) gets that
// group's calls back.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/runtime.h"

namespace kiso::runtime {

// `rootfs` is the container's own (writable unless read_only_rootfs) root;
// `cgroups_path` the cgroup it runs in ("/kiso/<id>").
boost::json::value BuildSpec(const ContainerConfig& config, const Sandbox& sandbox,
                             const std::string& rootfs, const std::string& hostname,
                             const std::string& cgroups_path);

// The default profile for a container with capabilities `caps` ("CAP_…").
boost::json::value RuntimeDefaultSeccomp(const std::vector<std::string>& caps);

// The capabilities a container gets: the default set (every one when
// privileged), less `drop`, plus `add` (Kubernetes names, "ALL" allowed).
// InvalidArgument names an unknown capability.
Result<std::vector<std::string>> Capabilities(const ContainerConfig& config);

}  // namespace kiso::runtime
