#include "common/unix_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kiso {

namespace {

// "/proc/self/fd/N/name" for directory descriptor N: short whatever the path.
Result<sockaddr_un> AddressIn(int dir, const std::string& name) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = fmt::format("/proc/self/fd/{}/{}", dir, name);
  if (path.size() >= sizeof addr.sun_path) {
    return MakeStatus(Code::kInvalidArgument, "socket name {:?} is too long", name);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Result<int> ListenUnix(const std::string& dir, const std::string& name) {
  int d = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) return MakeStatus(Code::kNotFound, "{}: {}", dir, strerror(errno));
  auto addr = AddressIn(d, name);
  int fd = addr.ok() ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
  int rc = -1;
  if (fd >= 0) {
    unlinkat(d, name.c_str(), 0);
    mode_t old = umask(0077);
    rc = bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un));
    umask(old);
    if (rc == 0) rc = listen(fd, 8);
  }
  int error = errno;
  close(d);
  if (!addr.ok()) return addr.status();
  if (rc != 0) {
    if (fd >= 0) close(fd);
    return MakeStatus(Code::kInternal, "listen on {}/{}: {}", dir, name, strerror(error));
  }
  return fd;
}

Result<int> DialUnix(const std::string& dir, const std::string& name) {
  int d = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) return MakeStatus(Code::kNotFound, "{}: {}", dir, strerror(errno));
  auto addr = AddressIn(d, name);
  int fd = addr.ok() ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
  int rc =
      fd < 0 ? -1 : connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(sockaddr_un));
  int error = errno;
  close(d);
  if (!addr.ok()) return addr.status();
  if (rc != 0) {
    if (fd >= 0) close(fd);
    return MakeStatus(Code::kUnavailable, "connect to {}/{}: {}", dir, name, strerror(error));
  }
  return fd;
}

Status SendFd(int sock, char tag, int fd) {
  iovec iov{&tag, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) return MakeStatus(Code::kUnavailable, "sendmsg: {}", strerror(errno));
  }
  return Status::Ok();
}

Result<Received> ReceiveFd(int sock, std::chrono::milliseconds timeout) {
  pollfd p{sock, POLLIN, 0};
  int ready = poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready <= 0) {
    return MakeStatus(Code::kDeadlineExceeded, "nothing received in {} ms", timeout.count());
  }
  Received out;
  iovec iov{&out.tag, 1};
  // Room for more than one, so that extra descriptors are not silently lost.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = 0;
  while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n <= 0) {
    return MakeStatus(Code::kUnavailable, "recvmsg: {}", n == 0 ? "closed" : strerror(errno));
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (out.fd < 0) {
        out.fd = fd;
      } else {
        close(fd);
      }
    }
  }
  return out;
}

}  // namespace kiso
