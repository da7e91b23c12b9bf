// The RuntimeDefault seccomp profile: an allow-list, as Docker's and
// containerd's default profiles are. What a process may call is listed;
// everything else — kernels' newer calls included — fails with EPERM.
//
// The list follows the same rule as theirs: a call is allowed when the kernel
// confines it to the container (its namespaces, its cgroup, its own
// processes) or when it only reads; a call that reaches the host — mounts and
// namespaces, modules, the clock, reboot, keyrings, tracing other processes,
// BPF, performance counters — is allowed only to a container holding the
// capability that call needs (CAP_SYS_ADMIN, CAP_SYS_PTRACE, …), so that a
// container that adds a capability gets its calls back. Calls that are
// obsolete or unsafe in any container (kexec, keyrings, io_uring,
// userfaultfd, vm86, uselib…) are never allowed.
//
// Where the two defaults differ from each other kiso takes the stricter:
// ptrace, process_vm_readv/writev (allowed by Docker since 19.03 and by
// containerd since 1.7 on kernels ≥ 4.8) need CAP_SYS_PTRACE here, as they
// did in containerd 1.6, whose profile Kubernetes' RuntimeDefault meant then.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <csignal>

#include "runtime/oci_spec.h"

namespace kiso::runtime {

namespace json = boost::json;

namespace {

// Allowed to every container.
constexpr const char* kAllowed[] = {
    // Files and directories.
    "access",
    "chdir",
    "chmod",
    "chown",
    "close",
    "close_range",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "flock",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "getcwd",
    "getdents",
    "getdents64",
    "lchown",
    "link",
    "linkat",
    "lseek",
    "lstat",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pread64",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "sendfile",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "tee",
    "truncate",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "futimesat",
    "vmsplice",
    "write",
    "writev",
    "chroot",
    // Extended attributes (within the container's files).
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lsetxattr",
    "removexattr",
    "setxattr",
    // Memory.
    "brk",
    "madvise",
    "membarrier",
    "memfd_create",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mremap",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "remap_file_pages",
    // Processes, threads and their own scheduling.
    "arch_prctl",
    "capget",
    "capset",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "gettid",
    "getuid",
    "ioprio_get",
    "ioprio_set",
    "kill",
    "modify_ldt",
    "pidfd_open",
    "pidfd_send_signal",
    "prctl",
    "prlimit64",
    "rseq",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "setsid",
    "setuid",
    "tgkill",
    "tkill",
    "vfork",
    "wait4",
    "waitid",
    // Signals.
    "alarm",
    "pause",
    "restart_syscall",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    // Time (reading it; setting it needs CAP_SYS_TIME).
    "adjtimex",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "gettimeofday",
    "nanosleep",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    // Waiting and events.
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "futex",
    "futex_waitv",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_setup",
    "io_submit",
    "poll",
    "ppoll",
    "pselect6",
    "select",
    // Sockets (their network is the pod's).
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socketpair",
    // IPC (the pod's IPC namespace).
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "pipe",
    "pipe2",
    // The rest: descriptors of devices it was given, its own identity, randomness.
    "ioctl",
    "getrandom",
    "sysinfo",
    "uname",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "memfd_secret",
    "process_mrelease",
};

// Given back to a container that holds the capability.
struct CapabilityCalls {
  const char* cap;
  std::initializer_list<const char*> names;
};
constexpr CapabilityCalls kByCapability[] = {
    {"CAP_SYS_ADMIN", {"bpf",           "clone",
                       "clone3",        "fanotify_init",
                       "fanotify_mark", "fsconfig",
                       "fsmount",       "fsopen",
                       "fspick",        "lookup_dcookie",
                       "mount",         "mount_setattr",
                       "move_mount",    "name_to_handle_at",
                       "open_tree",     "perf_event_open",
                       "pivot_root",    "quotactl",
                       "quotactl_fd",   "setdomainname",
                       "sethostname",   "setns",
                       "syslog",        "umount2",
                       "unshare"}},
    {"CAP_SYS_PTRACE",
     {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
    {"CAP_SYS_BOOT", {"reboot"}},
    {"CAP_SYS_MODULE", {"delete_module", "finit_module", "init_module"}},
    {"CAP_SYS_PACCT", {"acct"}},
    {"CAP_SYS_RAWIO", {"ioperm", "iopl"}},
    {"CAP_SYS_TIME", {"clock_adjtime", "clock_settime", "settimeofday"}},
    {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
    {"CAP_SYS_NICE",
     {"get_mempolicy", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
      "set_mempolicy_home_node"}},
    {"CAP_SYSLOG", {"syslog"}},
    {"CAP_BPF", {"bpf"}},
    {"CAP_PERFMON", {"perf_event_open"}},
    {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
};

// personality(2) values a program may set: Linux, UNAME26, ADDR_NO_RANDOMIZE
// (alone and with UNAME26), and the query 0xffffffff.
constexpr uint64_t kPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};
// CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
constexpr uint64_t kNamespaceFlags = 0x7E020000;
constexpr int kAfVsock = 40;
constexpr int kEnosys = 38;

#if defined(__x86_64__)
void ExitOnFault(int) { _exit(1); }

// Whether this kernel runs the 32-bit x86 system call ABI: it may be built
// without it (IA32_EMULATION) or have it off (ia32_emulation=false), and then
// `int $0x80` faults instead, as every other 32-bit entry fails. Tried once,
// in a child that the fault ends (its handler exits: no core dump).
bool KernelRuns32BitCalls() {
  static const bool runs = [] {
    pid_t pid = fork();
    if (pid < 0) return true;  // Unknown: listed, as where it runs.
    if (pid == 0) {
      struct sigaction fault = {};
      fault.sa_handler = ExitOnFault;
      for (int sig : {SIGSEGV, SIGILL, SIGBUS, SIGSYS}) sigaction(sig, &fault, nullptr);
      long got = 20;  // getpid in the 32-bit ABI's numbering.
      asm volatile("int $0x80" : "+a"(got) : : "memory", "r8", "r9", "r10", "r11");
      _exit(got == getpid() ? 0 : 1);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }();
  return runs;
}
#endif

// The ABIs a filter is built for. Each costs runc's init a share of the
// filter's build in every container it starts (about 4 ms of CPU each, on
// the machine of bench/README.md), so the 32-bit one is listed only where the
// kernel runs it: elsewhere no container can make such a call, filtered or
// not. x32's is always listed: a call in it that the kernel refuses is ENOSYS
// under a filter that names the ABI, but kills the caller under one that
// does not.
json::array Architectures() {
#if defined(__x86_64__)
  if (KernelRuns32BitCalls()) return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
  return {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#else
  return {};
#endif
}

json::object Arg(int index, uint64_t value, uint64_t value_two, const char* op) {
  return {{"index", index}, {"value", value}, {"valueTwo", value_two}, {"op", op}};
}

}  // namespace

json::value RuntimeDefaultSeccomp(const std::vector<std::string>& caps) {
  auto has = [&](std::string_view cap) {
    return std::find(caps.begin(), caps.end(), cap) != caps.end();
  };
  json::array allowed;
  for (const char* name : kAllowed) allowed.emplace_back(name);
  for (const auto& group : kByCapability) {
    if (!has(group.cap)) continue;
    for (const char* name : group.names) {
      if (std::find(allowed.begin(), allowed.end(), json::value(name)) == allowed.end())
        allowed.emplace_back(name);
    }
  }
  json::array rules{json::object{{"names", std::move(allowed)}, {"action", "SCMP_ACT_ALLOW"}}};
  for (uint64_t p : kPersonalities) {
    rules.push_back(json::object{{"names", json::array{"personality"}},
                                 {"action", "SCMP_ACT_ALLOW"},
                                 {"args", json::array{Arg(0, p, 0, "SCMP_CMP_EQ")}}});
  }
  // Every socket but AF_VSOCK (a channel to the host's hypervisor).
  rules.push_back(json::object{{"names", json::array{"socket"}},
                               {"action", "SCMP_ACT_ALLOW"},
                               {"args", json::array{Arg(0, kAfVsock, 0, "SCMP_CMP_NE")}}});
  if (!has("CAP_SYS_ADMIN")) {
    // clone(2) without a namespace flag: (flags & mask) == 0 (libseccomp's
    // masked compare takes the mask as `value` and the result as `valueTwo`).
    rules.push_back(
        json::object{{"names", json::array{"clone"}},
                     {"action", "SCMP_ACT_ALLOW"},
                     {"args", json::array{Arg(0, kNamespaceFlags, 0, "SCMP_CMP_MASKED_EQ")}}});
    // clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes
    // libc fall back to clone(2), whose flags are checked.
    rules.push_back(json::object{
        {"names", json::array{"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", kEnosys}});
  }
  return json::object{{"defaultAction", "SCMP_ACT_ERRNO"},
                      {"defaultErrnoRet", 1},
                      {"architectures", Architectures()},
                      {"syscalls", std::move(rules)}};
}

}  // namespace kiso::runtime
