// seccomp_probe: makes one system call named on its command line, the way a
// program probing its sandbox would, and prints "<name> ok" or "<name>
// <errno name>". Built static, so it runs in any test image. The runtime suite
// runs it in containers under the RuntimeDefault profile.
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
    } else if (r < 0) {
      printf("%s %s\n", argv[i], strerrorname_np(errno));
    } else {
      printf("%s ok\n", argv[i]);
    }
  }
  return 0;
}
