// Unix domain sockets between kiso's own processes (the agent and a
// container's shim, runc and the shim): listening and dialling by paths that
// may be longer than a socket address holds, and passing descriptors.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace kiso {

// Listens (SOCK_STREAM, close-on-exec, mode 0600) on `name` in directory
// `dir`, binding through the directory's descriptor.
Result<int> ListenUnix(const std::string& dir, const std::string& name);
// Connects to the socket `name` in directory `dir`.
Result<int> DialUnix(const std::string& dir, const std::string& name);

// Sends one byte `tag`, with descriptor `fd` attached unless it is -1.
Status SendFd(int sock, char tag, int fd);
struct Received {
  char tag = 0;
  int fd = -1;  // -1 when none came with it.
};
// Receives what SendFd sent, waiting at most `timeout`.
Result<Received> ReceiveFd(int sock, std::chrono::milliseconds timeout);

}  // namespace kiso
