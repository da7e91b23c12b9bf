#include "agent/atomic_writer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>
#include <vector>

#include "common/file.h"

namespace kiso::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kData = "..data";

Status CheckPath(const std::string& path) {
  if (path.empty() || path.starts_with('/'))
    return MakeStatus(Code::kInvalidArgument, "volume path {:?} is not a relative path", path);
  for (const auto& part : fs::path(path)) {
    std::string p = part.string();
    if (p.empty() || p.starts_with("..")) {
      return MakeStatus(Code::kInvalidArgument,
                        "volume path {:?}: no component may be empty or start with \"..\"", path);
    }
  }
  return Status::Ok();
}

std::string TopOf(const std::string& path) { return path.substr(0, path.find('/')); }

int ModeWith(int mode, std::optional<gid_t> group, bool directory) {
  if (!group) return mode;
  mode |= 0040;
  if (mode & 0200) mode |= 0020;
  if (directory) mode |= 0010 | S_ISGID;
  return mode;
}

// Whether `payload` (a directory) holds exactly `files` with their modes and group.
bool Holds(const fs::path& payload, const VolumeFiles& files, std::optional<gid_t> group) {
  std::error_code ec;
  size_t seen = 0;
  for (auto it = fs::recursive_directory_iterator(payload, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) return false;
    if (S_ISDIR(st.st_mode)) continue;
    if (!S_ISREG(st.st_mode)) return false;
    auto rel = it->path().lexically_relative(payload).string();
    auto want = files.find(rel);
    if (want == files.end()) return false;
    if (static_cast<int>(st.st_mode & 07777) != ModeWith(want->second.mode, group, false))
      return false;
    if (group && st.st_gid != *group) return false;
    if (st.st_size != static_cast<off_t>(want->second.content.size())) return false;
    auto have = ReadFile(it->path().string());
    if (!have.ok() || *have != want->second.content) return false;
    ++seen;
  }
  return !ec && seen == files.size();
}

Status Own(const std::string& path, std::optional<gid_t> group, int mode) {
  if (group && ::lchown(path.c_str(), static_cast<uid_t>(-1), *group) != 0)
    return MakeStatus(Code::kInternal, "chown {}: {}", path, std::strerror(errno));
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0)
    return MakeStatus(Code::kInternal, "chmod {}: {}", path, std::strerror(errno));
  return Status::Ok();
}

Status WriteOne(const std::string& path, const VolumeFile& file, std::optional<gid_t> group) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return MakeStatus(Code::kInternal, "write {}: {}", path, std::strerror(errno));
  size_t done = 0;
  while (done < file.content.size()) {
    ssize_t n = ::write(fd, file.content.data() + done, file.content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return MakeStatus(err == ENOSPC ? Code::kResourceExhausted : Code::kInternal, "write {}: {}",
                        path, std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0)
    return MakeStatus(Code::kInternal, "write {}: {}", path, std::strerror(errno));
  return Own(path, group, ModeWith(file.mode, group, false));
}

// Each top-level name a link through ..data; names the payload no longer has,
// and payload directories other than `keep`, removed.
Status Link(const fs::path& dir, const std::set<std::string>& tops, const std::string& keep) {
  std::error_code ec;
  for (const auto& top : tops) {
    fs::path link = dir / top;
    std::string target = fmt::format("{}/{}", kData, top);
    if (fs::is_symlink(link, ec) && fs::read_symlink(link, ec).string() == target) continue;
    fs::remove_all(link, ec);  // A file of a layout before this one, or a stale link.
    if (::symlink(target.c_str(), link.c_str()) != 0)
      return MakeStatus(Code::kInternal, "link {}: {}", link.string(), std::strerror(errno));
  }
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name == kData || name == keep || tops.contains(name)) continue;
    stale.push_back(entry.path());
  }
  for (const auto& p : stale) fs::remove_all(p, ec);
  return Status::Ok();
}

}  // namespace

Result<bool> WriteVolumeAtomically(const std::string& dir, const VolumeFiles& files,
                                   std::optional<gid_t> group) {
  std::set<std::string> tops;
  for (const auto& [path, file] : files) {
    KISO_RETURN_IF_ERROR(CheckPath(path));
    tops.insert(TopOf(path));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return MakeStatus(Code::kInternal, "{}: {}", dir, ec.message());
  KISO_RETURN_IF_ERROR(Own(dir, group, ModeWith(0755, group, true)));
  const fs::path root(dir);
  const fs::path data = root / kData;
  std::string current;
  if (fs::is_symlink(data, ec)) current = fs::read_symlink(data, ec).string();
  if (!current.empty() && Holds(root / current, files, group)) {
    KISO_RETURN_IF_ERROR(Link(root, tops, current));
    return false;
  }

  // The new payload, beside the old one.
  const auto now = std::chrono::system_clock::now();
  const time_t secs = std::chrono::system_clock::to_time_t(now);
  tm t{};
  gmtime_r(&secs, &t);
  std::string tmpl =
      fmt::format("{}/..{:04}_{:02}_{:02}_{:02}_{:02}_{:02}.XXXXXX", dir, t.tm_year + 1900,
                  t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
  if (::mkdtemp(tmpl.data()) == nullptr)
    return MakeStatus(Code::kInternal, "payload directory in {}: {}", dir, std::strerror(errno));
  const fs::path payload(tmpl);
  const std::string name = payload.filename().string();
  auto written = [&]() -> Status {
    KISO_RETURN_IF_ERROR(Own(payload.string(), group, ModeWith(0755, group, true)));
    for (const auto& [path, file] : files) {
      fs::path target = payload / path;
      // Subdirectories of the payload, made with the same ownership.
      fs::path parent = target.parent_path();
      std::vector<fs::path> missing;
      for (fs::path p = parent; p != payload && !fs::exists(p, ec); p = p.parent_path())
        missing.push_back(p);
      for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST)
          return MakeStatus(Code::kInternal, "mkdir {}: {}", it->string(), std::strerror(errno));
        KISO_RETURN_IF_ERROR(Own(it->string(), group, ModeWith(0755, group, true)));
      }
      KISO_RETURN_IF_ERROR(WriteOne(target.string(), file, group));
    }
    // The swap: readers through ..data see the old payload or this one.
    const fs::path tmp_link = root / "..data_tmp";
    fs::remove(tmp_link, ec);
    if (::symlink(name.c_str(), tmp_link.c_str()) != 0)
      return MakeStatus(Code::kInternal, "link {}: {}", tmp_link.string(), std::strerror(errno));
    if (::rename(tmp_link.c_str(), data.c_str()) != 0) {
      int err = errno;
      fs::remove(tmp_link, ec);
      return MakeStatus(Code::kInternal, "rename {}: {}", data.string(), std::strerror(err));
    }
    return Status::Ok();
  }();
  if (!written.ok()) {
    fs::remove_all(payload, ec);
    return written;
  }
  KISO_RETURN_IF_ERROR(Link(root, tops, name));
  return true;
}

}  // namespace kiso::agent
