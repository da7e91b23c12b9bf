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

Result<int> DialInNamespace(const std::string& netns_path, uint16_t port) {
  int ns = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    return MakeStatus(Code::kNotFound, "the pod's network namespace {}: {}", netns_path,
                      strerror(errno));
  }
  // A socket belongs to the namespace it was made in, whichever thread uses it
  // later: a short-lived thread enters the pod's namespace (setns moves only
  // the calling thread), makes and connects it, and ends there.
  Result<int> result = Status(Code::kInternal, "not dialled");
  std::thread([&] {
    if (setns(ns, CLONE_NEWNET) != 0) {
      result =
          MakeStatus(Code::kInternal, "enter the pod's network namespace: {}", strerror(errno));
      return;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      result = MakeStatus(Code::kResourceExhausted, "socket: {}", strerror(errno));
      return;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      int error = errno;
      close(fd);
      result = MakeStatus(Code::kUnavailable, "dial tcp4 127.0.0.1:{}: connect: {}", port,
                          strerror(error));
      return;
    }
    result = fd;
  }).join();
  close(ns);
  return result;
}

}  // namespace kiso::network
