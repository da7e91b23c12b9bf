#include "common/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kiso {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeStatus(Code::kNotFound, "read {}: cannot open", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return MakeStatus(Code::kInternal, "write {}: {}", tmp, std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return MakeStatus(err == ENOSPC ? Code::kResourceExhausted : Code::kInternal, "write {}: {}",
                        tmp, std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return MakeStatus(err == ENOSPC ? Code::kResourceExhausted : Code::kInternal, "sync {}: {}",
                      tmp, std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return MakeStatus(Code::kInternal, "rename {}: {}", path, std::strerror(err));
  }
  return Status::Ok();
}

std::string ExecutableDir() {
  char self[4096] = {};
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  return std::filesystem::path(std::string(self, static_cast<size_t>(n))).parent_path().string();
}

}  // namespace kiso
