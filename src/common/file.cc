#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
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

Status WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode,
                       bool durable) {
  // A name of its own: two writers sharing one would rename each other's
  // file away (the second rename then finds none).
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return MakeStatus(Code::kInternal, "write {}: {}", tmp, std::strerror(errno));
  if (::fchmod(fd, mode) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return MakeStatus(Code::kInternal, "chmod {}: {}", tmp, std::strerror(err));
  }
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
  int err = 0;
  if (durable && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    return MakeStatus(err == ENOSPC ? Code::kResourceExhausted : Code::kInternal, "sync {}: {}",
                      tmp, std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
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
