#include "network/netns.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace kiso::network {

Status RunInNamespace(const std::string& netns_path, const std::function<Status()>& work) {
  int ns = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    return MakeStatus(Code::kNotFound, "the pod's network namespace {}: {}", netns_path,
                      strerror(errno));
  }
  Status result;
  std::thread([&] {
    if (setns(ns, CLONE_NEWNET) != 0) {
      // EINVAL: a file that is not (or no longer) a namespace's, as a crash leaves it.
      result = errno == EINVAL
                   ? MakeStatus(Code::kNotFound, "{} is not a network namespace", netns_path)
                   : MakeStatus(Code::kInternal, "enter the pod's network namespace: {}",
                                strerror(errno));
      return;
    }
    result = work();
  }).join();
  close(ns);
  return result;
}

Result<int> DialInNamespace(const std::string& netns_path, uint16_t port) {
  int fd = -1;
  Status s = RunInNamespace(netns_path, [&]() -> Status {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return MakeStatus(Code::kResourceExhausted, "socket: {}", strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      int error = errno;
      close(fd);
      fd = -1;
      return MakeStatus(Code::kUnavailable, "dial tcp4 127.0.0.1:{}: connect: {}", port,
                        strerror(error));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return fd;
}

}  // namespace kiso::network
