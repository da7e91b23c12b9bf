// seccomp_probe: makes one system call named on its command line, the way a
// program probing its sandbox would, and prints "<name> ok" or "<name>
// <errno name>" (a call of the 32-bit ABI: "fault" where the kernel does not
// run it, "killed" where a filter kills the caller). Built static, so it runs
// in any test image. The runtime suite runs it in containers under the
// RuntimeDefault profile.
#include <errno.h>
#include <linux/kcmp.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string_view>

namespace {

void ExitOnFault(int) { _exit(3); }

// getpid through the 32-bit ABI's entry (int $0x80), in a child: where the
// kernel does not run that ABI the instruction faults. The result as Call's,
// or -3 for a fault, -4 for a child a signal killed (a filter's kill).
long I386Getpid() {
#if !defined(__x86_64__)
  errno = ENOSYS;
  return -1;
#else
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    struct sigaction fault = {};
    fault.sa_handler = ExitOnFault;
    for (int sig : {SIGSEGV, SIGILL, SIGBUS}) sigaction(sig, &fault, nullptr);
    long got = 20;  // getpid in the 32-bit numbering.
    asm volatile("int $0x80" : "+a"(got) : : "memory", "r8", "r9", "r10", "r11");
    if (got == getpid()) _exit(0);
    _exit(got < 0 && got > -100 ? 100 + static_cast<int>(-got) : 2);  // 100 + errno.
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (WIFSIGNALED(status)) return -4;
  int code = WEXITSTATUS(status);
  if (code == 0) return 0;
  if (code == 3) return -3;
  if (code >= 100) {
    errno = code - 100;
    return -1;
  }
  errno = EPROTO;
  return -1;
#endif
}

long Call(std::string_view name) {
  if (name == "getpid") return syscall(SYS_getpid);
  if (name == "ptrace") return syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
  if (name == "process_vm_readv") {
    char buf[8];
    char src[8] = "x";
    struct iovec local = {buf, sizeof buf};
    struct iovec remote = {src, sizeof src};
    return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
  }
  if (name == "kcmp") return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0);
  if (name == "keyctl")
    return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
  if (name == "unshare_user") return syscall(SYS_unshare, CLONE_NEWUSER);
  if (name == "mount") return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, "");
  if (name == "clone_newuser") {
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
    return pid > 0 ? 0 : pid;
  }
  if (name == "clone") {
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
    return pid > 0 ? 0 : pid;
  }
  if (name == "clone3") return syscall(SYS_clone3, nullptr, 0);
  if (name == "io_uring_setup") return syscall(SYS_io_uring_setup, 1, nullptr);
  if (name == "userfaultfd") return syscall(SYS_userfaultfd, 0);
  if (name == "bpf") return syscall(SYS_bpf, 0, nullptr, 0);
  if (name == "reboot") return syscall(SYS_reboot, 0, 0, 0, nullptr);
  if (name == "personality_query") return syscall(SYS_personality, 0xffffffff);
  if (name == "personality_bsd") return syscall(SYS_personality, 0x0006);
  if (name == "socket_inet") return syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
  if (name == "socket_vsock") return syscall(SYS_socket, 40, SOCK_STREAM, 0);
  if (name == "unknown") return syscall(1000);  // A number no kernel has yet.
  // getpid in the x32 ABI (x86-64's numbers with bit 30 set).
  if (name == "x32_getpid") return syscall(0x40000000 | SYS_getpid);
  if (name == "i386_getpid") return I386Getpid();
  errno = EINVAL;
  return -2;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    errno = 0;
    long r = Call(argv[i]);
    if (r == -2 && errno == EINVAL) {
      printf("%s unknown-probe\n", argv[i]);
    } else if (r == -3 || r == -4) {
      printf("%s %s\n", argv[i], r == -3 ? "fault" : "killed");
    } else if (r < 0) {
      printf("%s %s\n", argv[i], strerrorname_np(errno));
    } else {
      printf("%s ok\n", argv[i]);
    }
    fflush(stdout);  // Each line out before the next call, which may end the probe.
  }
  return 0;
}
