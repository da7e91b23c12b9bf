#include "runtime/wasm/wasi.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace kiso::runtime::wasm {

namespace {

// WASI errno values (witx `errno`).
enum : uint32_t {
  kSuccess = 0,
  kAcces = 2,
  kAgain = 6,
  kBadf = 8,
  kExist = 20,
  kFault = 21,
  kInval = 28,
  kIo = 29,
  kIsdir = 31,
  kLoop = 32,
  kNametoolong = 37,
  kNoent = 44,
  kNomem = 48,
  kNospc = 51,
  kNosys = 52,
  kNotdir = 54,
  kNotempty = 55,
  kNotsup = 58,
  kPerm = 63,
  kSpipe = 70,
  kXdev = 75,
  kNotcapable = 76,
};

// WASI filetypes.
enum : uint8_t {
  kUnknown = 0,
  kBlockDevice = 1,
  kCharacterDevice = 2,
  kDirectory = 3,
  kRegularFile = 4,
  kSocketStream = 6,
  kSymbolicLink = 7,
};

constexpr uint64_t kAllRights = (uint64_t{1} << 30) - 1;
// A guest may pass at most this many iovecs in one call (Linux's IOV_MAX).
constexpr uint64_t kMaxIovs = 1024;

uint32_t FromErrno(int e) {
  switch (e) {
    case 0:
      return kSuccess;
    case E2BIG:
      return 1;
    case EACCES:
      return kAcces;
    case EAGAIN:
      return kAgain;
    case EBADF:
      return kBadf;
    case EBUSY:
      return 10;
    case EEXIST:
      return kExist;
    case EFAULT:
      return kFault;
    case EFBIG:
      return 22;
    case EINTR:
      return 27;
    case EINVAL:
      return kInval;
    case EIO:
      return kIo;
    case EISDIR:
      return kIsdir;
    case ELOOP:
      return kLoop;
    case EMFILE:
      return 33;
    case EMLINK:
      return 34;
    case ENAMETOOLONG:
      return kNametoolong;
    case ENFILE:
      return 41;
    case ENODEV:
      return 43;
    case ENOENT:
      return kNoent;
    case ENOMEM:
      return kNomem;
    case ENOSPC:
      return kNospc;
    case ENOSYS:
      return kNosys;
    case ENOTDIR:
      return kNotdir;
    case ENOTEMPTY:
      return kNotempty;
    case EOPNOTSUPP:
      return kNotsup;
    case ENOTTY:
      return 59;
    case ENXIO:
      return 60;
    case EOVERFLOW:
      return 61;
    case EPERM:
      return kPerm;
    case EPIPE:
      return 64;
    case ERANGE:
      return 68;
    case EROFS:
      return 69;
    case ESPIPE:
      return kSpipe;
    case ETXTBSY:
      return 74;
    case EXDEV:
      return kXdev;
    default:
      return kIo;
  }
}

uint32_t Errno() { return FromErrno(errno); }

uint8_t FiletypeOf(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFBLK:
      return kBlockDevice;
    case S_IFCHR:
      return kCharacterDevice;
    case S_IFDIR:
      return kDirectory;
    case S_IFREG:
      return kRegularFile;
    case S_IFSOCK:
      return kSocketStream;
    case S_IFLNK:
      return kSymbolicLink;
    default:
      return kUnknown;
  }
}

uint8_t FiletypeOfDirent(unsigned char t) {
  switch (t) {
    case DT_BLK:
      return kBlockDevice;
    case DT_CHR:
      return kCharacterDevice;
    case DT_DIR:
      return kDirectory;
    case DT_REG:
      return kRegularFile;
    case DT_SOCK:
      return kSocketStream;
    case DT_LNK:
      return kSymbolicLink;
    default:
      return kUnknown;
  }
}

uint64_t Nanos(const struct timespec& ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

struct timespec Timespec(uint64_t nanos) {
  struct timespec ts {};
  ts.tv_sec = static_cast<time_t>(nanos / 1000000000ULL);
  ts.tv_nsec = static_cast<long>(nanos % 1000000000ULL);
  return ts;
}

bool ClockOf(uint64_t id, clockid_t* out) {
  switch (id) {
    case 0:
      *out = CLOCK_REALTIME;
      return true;
    case 1:
      *out = CLOCK_MONOTONIC;
      return true;
    case 2:
      *out = CLOCK_PROCESS_CPUTIME_ID;
      return true;
    case 3:
      *out = CLOCK_THREAD_CPUTIME_ID;
      return true;
    default:
      return false;
  }
}

// fst_flags of the set_times calls: what to set, to a time or to now.
bool TimesOf(uint64_t atim, uint64_t mtim, uint64_t flags, struct timespec times[2]) {
  constexpr uint64_t kAtim = 1, kAtimNow = 2, kMtim = 4, kMtimNow = 8;
  if (((flags & kAtim) && (flags & kAtimNow)) || ((flags & kMtim) && (flags & kMtimNow)))
    return false;
  times[0] =
      (flags & kAtim) ? Timespec(atim) : timespec{0, (flags & kAtimNow) ? UTIME_NOW : UTIME_OMIT};
  times[1] =
      (flags & kMtim) ? Timespec(mtim) : timespec{0, (flags & kMtimNow) ? UTIME_NOW : UTIME_OMIT};
  return true;
}

}  // namespace

const std::vector<Wasi::Function>& Wasi::Functions() {
  static const auto& functions = *new std::vector<Function>{
      // Never destroyed.
      {"args_get", "ii", true, &Wasi::ArgsGet},
      {"args_sizes_get", "ii", true, &Wasi::ArgsSizesGet},
      {"environ_get", "ii", true, &Wasi::EnvironGet},
      {"environ_sizes_get", "ii", true, &Wasi::EnvironSizesGet},
      {"clock_res_get", "ii", true, &Wasi::ClockResGet},
      {"clock_time_get", "iIi", true, &Wasi::ClockTimeGet},
      {"fd_advise", "iIIi", true, &Wasi::FdAdvise},
      {"fd_allocate", "iII", true, &Wasi::FdAllocate},
      {"fd_close", "i", true, &Wasi::FdClose},
      {"fd_datasync", "i", true, &Wasi::FdDatasync},
      {"fd_fdstat_get", "ii", true, &Wasi::FdFdstatGet},
      {"fd_fdstat_set_flags", "ii", true, &Wasi::FdFdstatSetFlags},
      {"fd_fdstat_set_rights", "iII", true, &Wasi::FdFdstatSetRights},
      {"fd_filestat_get", "ii", true, &Wasi::FdFilestatGet},
      {"fd_filestat_set_size", "iI", true, &Wasi::FdFilestatSetSize},
      {"fd_filestat_set_times", "iIIi", true, &Wasi::FdFilestatSetTimes},
      {"fd_pread", "iiiIi", true, &Wasi::FdPread},
      {"fd_prestat_get", "ii", true, &Wasi::FdPrestatGet},
      {"fd_prestat_dir_name", "iii", true, &Wasi::FdPrestatDirName},
      {"fd_pwrite", "iiiIi", true, &Wasi::FdPwrite},
      {"fd_read", "iiii", true, &Wasi::FdRead},
      {"fd_readdir", "iiiIi", true, &Wasi::FdReaddir},
      {"fd_renumber", "ii", true, &Wasi::FdRenumber},
      {"fd_seek", "iIii", true, &Wasi::FdSeek},
      {"fd_sync", "i", true, &Wasi::FdSync},
      {"fd_tell", "ii", true, &Wasi::FdTell},
      {"fd_write", "iiii", true, &Wasi::FdWrite},
      {"path_create_directory", "iii", true, &Wasi::PathCreateDirectory},
      {"path_filestat_get", "iiiii", true, &Wasi::PathFilestatGet},
      {"path_filestat_set_times", "iiiiIIi", true, &Wasi::PathFilestatSetTimes},
      {"path_link", "iiiiiii", true, &Wasi::PathLink},
      {"path_open", "iiiiiIIii", true, &Wasi::PathOpen},
      {"path_readlink", "iiiiii", true, &Wasi::PathReadlink},
      {"path_remove_directory", "iii", true, &Wasi::PathRemoveDirectory},
      {"path_rename", "iiiiii", true, &Wasi::PathRename},
      {"path_symlink", "iiiii", true, &Wasi::PathSymlink},
      {"path_unlink_file", "iii", true, &Wasi::PathUnlinkFile},
      {"poll_oneoff", "iiii", true, &Wasi::PollOneoff},
      {"proc_exit", "i", false, &Wasi::ProcExit},
      {"proc_raise", "i", true, &Wasi::ProcRaise},
      {"sched_yield", "", true, &Wasi::SchedYield},
      {"random_get", "ii", true, &Wasi::RandomGet},
      {"sock_accept", "iii", true, &Wasi::SockUnsupported},
      {"sock_recv", "iiiiii", true, &Wasi::SockUnsupported},
      {"sock_send", "iiiii", true, &Wasi::SockUnsupported},
      {"sock_shutdown", "ii", true, &Wasi::SockUnsupported},
  };
  return functions;
}

const Wasi::Function* Wasi::Find(std::string_view name) {
  for (const auto& f : Functions()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

Wasi::Wasi(WasiOptions options) : options_(std::move(options)) {
  fds_[0] = Fd{options_.stdin_fd, false, kCharacterDevice, "", {}};
  fds_[1] = Fd{options_.stdout_fd, false, kCharacterDevice, "", {}};
  fds_[2] = Fd{options_.stderr_fd, false, kCharacterDevice, "", {}};
  for (auto& [n, fd] : fds_) {
    struct stat st {};
    if (fstat(fd.host, &st) == 0) fd.filetype = FiletypeOf(st.st_mode);
  }
}

Wasi::~Wasi() {
  for (auto& [n, fd] : fds_) {
    if (fd.owned && fd.host >= 0) close(fd.host);
  }
}

Status Wasi::Open() {
  for (const auto& p : options_.preopens) {
    int fd = open(p.host.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      return MakeStatus(Code::kInvalidArgument, "preopened directory {} ({}): {}", p.guest, p.host,
                        strerror(errno));
    }
    AddFd(Fd{fd, true, kDirectory, p.guest, {}});
  }
  return {};
}

uint32_t Wasi::AddFd(Fd fd) {
  uint32_t n = 0;
  while (fds_.contains(n)) ++n;
  fds_[n] = std::move(fd);
  return n;
}

Wasi::Fd* Wasi::Get(uint64_t fd) {
  auto it = fds_.find(static_cast<uint32_t>(fd));
  return it == fds_.end() ? nullptr : &it->second;
}

bool Wasi::InBounds(uint64_t ptr, uint64_t len) const {
  uint64_t size = Mem().size;
  return ptr <= size && len <= size - ptr;
}

bool Wasi::Store32(uint64_t ptr, uint32_t v) const {
  if (!InBounds(ptr, 4)) return false;
  std::memcpy(Mem().data + ptr, &v, 4);  // Little-endian, as the guest's memory.
  return true;
}

bool Wasi::Store64(uint64_t ptr, uint64_t v) const {
  if (!InBounds(ptr, 8)) return false;
  std::memcpy(Mem().data + ptr, &v, 8);
  return true;
}

std::optional<std::string> Wasi::Path(uint64_t ptr, uint64_t len) const {
  if (!InBounds(ptr, len) || len > PATH_MAX) return std::nullopt;
  std::string path(reinterpret_cast<const char*>(Mem().data + ptr), len);
  if (path.find('\0') != std::string::npos) return std::nullopt;
  return path;
}

int Wasi::OpenBeneath(int dirfd, const std::string& path, uint64_t flags, bool follow) {
  struct open_how how {};
  how.flags = flags | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  how.mode = (flags & O_CREAT) ? 0666 : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  // An absolute path is not beneath anything; RESOLVE_BENEATH refuses it too.
  long fd = syscall(SYS_openat2, dirfd, path.empty() ? "." : path.c_str(), &how, sizeof(how));
  return fd < 0 ? -errno : static_cast<int>(fd);
}

int Wasi::OpenParent(int dirfd, const std::string& path, std::string* last) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  size_t slash = trimmed.rfind('/');
  std::string parent = slash == std::string::npos ? "." : trimmed.substr(0, slash);
  *last = slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
  if (last->empty() || *last == "." || *last == "..") return -EINVAL;
  if (parent.empty()) return -EPERM;  // "/name": absolute.
  return OpenBeneath(dirfd, parent, O_PATH | O_DIRECTORY, true);
}

// ---- arguments and environment ----

uint32_t Wasi::StringsSizes(const std::vector<std::string>& list, uint64_t count_ptr,
                            uint64_t size_ptr) const {
  uint64_t size = 0;
  for (const auto& s : list) size += s.size() + 1;
  if (!Store32(count_ptr, static_cast<uint32_t>(list.size())) ||
      !Store32(size_ptr, static_cast<uint32_t>(size)))
    return kFault;
  return kSuccess;
}

uint32_t Wasi::StringsGet(const std::vector<std::string>& list, uint64_t ptrs, uint64_t buf) const {
  for (const auto& s : list) {
    if (!Store32(ptrs, static_cast<uint32_t>(buf)) || !InBounds(buf, s.size() + 1)) return kFault;
    std::memcpy(Mem().data + buf, s.c_str(), s.size() + 1);
    ptrs += 4;
    buf += s.size() + 1;
  }
  return kSuccess;
}

uint32_t Wasi::ArgsGet(const uint64_t* a) { return StringsGet(options_.args, a[0], a[1]); }
uint32_t Wasi::ArgsSizesGet(const uint64_t* a) { return StringsSizes(options_.args, a[0], a[1]); }
uint32_t Wasi::EnvironGet(const uint64_t* a) { return StringsGet(options_.env, a[0], a[1]); }
uint32_t Wasi::EnvironSizesGet(const uint64_t* a) { return StringsSizes(options_.env, a[0], a[1]); }

// ---- clocks, random, scheduling ----

uint32_t Wasi::ClockResGet(const uint64_t* a) {
  clockid_t id;
  if (!ClockOf(a[0], &id)) return kInval;
  struct timespec ts {};
  if (clock_getres(id, &ts) != 0) return Errno();
  return Store64(a[1], Nanos(ts)) ? kSuccess : kFault;
}

uint32_t Wasi::ClockTimeGet(const uint64_t* a) {
  clockid_t id;
  if (!ClockOf(a[0], &id)) return kInval;
  struct timespec ts {};
  if (clock_gettime(id, &ts) != 0) return Errno();
  return Store64(a[2], Nanos(ts)) ? kSuccess : kFault;
}

uint32_t Wasi::RandomGet(const uint64_t* a) {
  if (!InBounds(a[0], a[1])) return kFault;
  uint8_t* p = Mem().data + a[0];
  for (uint64_t done = 0; done < a[1];) {
    ssize_t n = getrandom(p + done, a[1] - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno();
    }
    done += static_cast<uint64_t>(n);
  }
  return kSuccess;
}

uint32_t Wasi::SchedYield(const uint64_t* /*a*/) {
  sched_yield();
  return kSuccess;
}

uint32_t Wasi::ProcExit(const uint64_t* a) {
  exit_code_ = static_cast<uint32_t>(a[0]);
  return kSuccess;
}

uint32_t Wasi::ProcRaise(const uint64_t* /*a*/) { return kNosys; }
uint32_t Wasi::SockUnsupported(const uint64_t* /*a*/) { return kNotsup; }

// poll_oneoff: clock subscriptions wait (the earliest deadline among them);
// descriptor subscriptions are reported ready at once.
uint32_t Wasi::PollOneoff(const uint64_t* a) {
  constexpr uint64_t kSubscriptionSize = 48, kEventSize = 32;
  uint64_t in = a[0], out = a[1], n = a[2];
  if (n == 0) return kInval;
  if (n > 4096 || !InBounds(in, n * kSubscriptionSize) || !InBounds(out, n * kEventSize))
    return kFault;
  struct Sub {
    uint64_t userdata;
    uint8_t tag;
    uint64_t deadline;  // CLOCK_MONOTONIC nanoseconds, for clocks.
    uint32_t error;
  };
  std::vector<Sub> subs;
  bool any_fd = false;
  uint64_t earliest = UINT64_MAX;
  struct timespec now_ts {};
  clock_gettime(CLOCK_MONOTONIC, &now_ts);
  uint64_t now = Nanos(now_ts);
  for (uint64_t i = 0; i < n; ++i) {
    const uint8_t* s = Mem().data + in + i * kSubscriptionSize;
    Sub sub{};
    std::memcpy(&sub.userdata, s, 8);
    sub.tag = s[8];
    if (sub.tag == 0) {  // clock
      uint32_t id;
      uint64_t timeout;
      uint16_t flags;
      std::memcpy(&id, s + 16, 4);
      std::memcpy(&timeout, s + 24, 8);
      std::memcpy(&flags, s + 40, 2);
      clockid_t clock;
      if (!ClockOf(id, &clock)) {
        sub.error = kInval;
        sub.deadline = now;
      } else if (flags & 1) {  // An absolute time on that clock.
        struct timespec c {};
        clock_gettime(clock, &c);
        uint64_t at = Nanos(c);
        sub.deadline = now + (timeout > at ? timeout - at : 0);
      } else {
        sub.deadline = timeout > UINT64_MAX - now ? UINT64_MAX : now + timeout;
      }
      earliest = std::min(earliest, sub.deadline);
    } else if (sub.tag == 1 || sub.tag == 2) {  // fd_read, fd_write
      uint32_t fd;
      std::memcpy(&fd, s + 16, 4);
      sub.error = Get(fd) ? kSuccess : kBadf;
      any_fd = true;
    } else {
      return kInval;
    }
    subs.push_back(sub);
  }
  if (!any_fd && earliest != UINT64_MAX && earliest > now) {
    struct timespec until = Timespec(earliest);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {
    }
    clock_gettime(CLOCK_MONOTONIC, &now_ts);
    now = Nanos(now_ts);
  }
  uint32_t events = 0;
  for (const auto& sub : subs) {
    if (sub.tag == 0 && sub.deadline > now && sub.error == kSuccess) continue;
    uint8_t* e = Mem().data + out + uint64_t{events} * kEventSize;
    std::memset(e, 0, kEventSize);
    std::memcpy(e, &sub.userdata, 8);
    auto error = static_cast<uint16_t>(sub.error);
    std::memcpy(e + 8, &error, 2);
    e[10] = sub.tag;
    ++events;
  }
  return Store32(a[3], events) ? kSuccess : kFault;
}

// ---- descriptors ----

uint32_t Wasi::Transfer(uint64_t fd, uint64_t iovs, uint64_t count, int64_t offset, bool write,
                        uint64_t done_ptr) {
  Fd* f = Get(fd);
  if (!f) return kBadf;
  if (f->filetype == kDirectory) return kIsdir;
  if (count > kMaxIovs || !InBounds(iovs, count * 8)) return kFault;
  std::vector<struct iovec> vec(count);
  for (uint64_t i = 0; i < count; ++i) {
    uint32_t buf, len;
    std::memcpy(&buf, Mem().data + iovs + i * 8, 4);
    std::memcpy(&len, Mem().data + iovs + i * 8 + 4, 4);
    if (!InBounds(buf, len)) return kFault;
    vec[i] = {Mem().data + buf, len};
  }
  ssize_t n;
  if (offset < 0) {
    n = write ? writev(f->host, vec.data(), static_cast<int>(count))
              : readv(f->host, vec.data(), static_cast<int>(count));
  } else {
    n = write ? pwritev(f->host, vec.data(), static_cast<int>(count), offset)
              : preadv(f->host, vec.data(), static_cast<int>(count), offset);
  }
  if (n < 0) return Errno();
  return Store32(done_ptr, static_cast<uint32_t>(n)) ? kSuccess : kFault;
}

uint32_t Wasi::FdRead(const uint64_t* a) { return Transfer(a[0], a[1], a[2], -1, false, a[3]); }
uint32_t Wasi::FdWrite(const uint64_t* a) { return Transfer(a[0], a[1], a[2], -1, true, a[3]); }
uint32_t Wasi::FdPread(const uint64_t* a) {
  if (static_cast<int64_t>(a[3]) < 0) return kInval;
  return Transfer(a[0], a[1], a[2], static_cast<int64_t>(a[3]), false, a[4]);
}
uint32_t Wasi::FdPwrite(const uint64_t* a) {
  if (static_cast<int64_t>(a[3]) < 0) return kInval;
  return Transfer(a[0], a[1], a[2], static_cast<int64_t>(a[3]), true, a[4]);
}

uint32_t Wasi::FdClose(const uint64_t* a) {
  auto it = fds_.find(static_cast<uint32_t>(a[0]));
  if (it == fds_.end()) return kBadf;
  if (it->second.owned) close(it->second.host);
  fds_.erase(it);
  return kSuccess;
}

uint32_t Wasi::FdRenumber(const uint64_t* a) {
  auto from = fds_.find(static_cast<uint32_t>(a[0]));
  auto to = fds_.find(static_cast<uint32_t>(a[1]));
  if (from == fds_.end() || to == fds_.end()) return kBadf;
  if (from == to) return kSuccess;
  if (to->second.owned) close(to->second.host);
  to->second = std::move(from->second);
  fds_.erase(from);
  return kSuccess;
}

uint32_t Wasi::FdSeek(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  if (f->filetype == kDirectory) return kIsdir;
  int whence = a[2] == 0 ? SEEK_SET : a[2] == 1 ? SEEK_CUR : a[2] == 2 ? SEEK_END : -1;
  if (whence < 0) return kInval;
  off_t pos = lseek(f->host, static_cast<off_t>(a[1]), whence);
  if (pos < 0) return Errno();
  return Store64(a[3], static_cast<uint64_t>(pos)) ? kSuccess : kFault;
}

uint32_t Wasi::FdTell(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  off_t pos = lseek(f->host, 0, SEEK_CUR);
  if (pos < 0) return Errno();
  return Store64(a[1], static_cast<uint64_t>(pos)) ? kSuccess : kFault;
}

uint32_t Wasi::FdSync(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  return fsync(f->host) == 0 ? kSuccess : Errno();
}

uint32_t Wasi::FdDatasync(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  return fdatasync(f->host) == 0 ? kSuccess : Errno();
}

uint32_t Wasi::FdAdvise(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  if (a[3] > 5) return kInval;
  // WASI's advice numbers are POSIX's order: normal, sequential, random, willneed, dontneed,
  // noreuse.
  static constexpr int kAdvice[] = {POSIX_FADV_NORMAL,   POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM,
                                    POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED,   POSIX_FADV_NOREUSE};
  int e = posix_fadvise(f->host, static_cast<off_t>(a[1]), static_cast<off_t>(a[2]), kAdvice[a[3]]);
  return FromErrno(e == ESPIPE ? 0 : e);
}

uint32_t Wasi::FdAllocate(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  return FromErrno(posix_fallocate(f->host, static_cast<off_t>(a[1]), static_cast<off_t>(a[2])));
}

uint32_t Wasi::FdFdstatGet(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  if (!InBounds(a[1], 24)) return kFault;
  uint16_t flags = 0;
  if (f->filetype != kDirectory) {
    int fl = fcntl(f->host, F_GETFL);
    if (fl >= 0) {
      if (fl & O_APPEND) flags |= 1;
      if (fl & O_DSYNC) flags |= 2;
      if (fl & O_NONBLOCK) flags |= 4;
      if ((fl & O_SYNC) == O_SYNC) flags |= 16;
    }
  }
  uint8_t* p = Mem().data + a[1];
  std::memset(p, 0, 24);
  p[0] = f->filetype;
  std::memcpy(p + 2, &flags, 2);
  std::memcpy(p + 8, &kAllRights, 8);
  std::memcpy(p + 16, &kAllRights, 8);
  return kSuccess;
}

uint32_t Wasi::FdFdstatSetFlags(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  int fl = fcntl(f->host, F_GETFL);
  if (fl < 0) return Errno();
  fl &= ~(O_APPEND | O_NONBLOCK);
  if (a[1] & 1) fl |= O_APPEND;
  if (a[1] & 4) fl |= O_NONBLOCK;
  return fcntl(f->host, F_SETFL, fl) == 0 ? kSuccess : Errno();
}

uint32_t Wasi::FdFdstatSetRights(const uint64_t* a) {
  // Rights are not narrowed (every descriptor reports them all): accepted.
  return Get(a[0]) ? kSuccess : kBadf;
}

namespace {

bool WriteFilestat(GuestMemory mem, uint64_t ptr, const struct stat& st) {
  if (ptr > mem.size || mem.size - ptr < 64) return false;
  uint8_t* p = mem.data + ptr;
  std::memset(p, 0, 64);
  auto put = [&](size_t at, uint64_t v) { std::memcpy(p + at, &v, 8); };
  put(0, st.st_dev);
  put(8, st.st_ino);
  p[16] = FiletypeOf(st.st_mode);
  put(24, st.st_nlink);
  put(32, static_cast<uint64_t>(st.st_size));
  put(40, Nanos(st.st_atim));
  put(48, Nanos(st.st_mtim));
  put(56, Nanos(st.st_ctim));
  return true;
}

}  // namespace

uint32_t Wasi::FdFilestatGet(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  struct stat st {};
  if (fstat(f->host, &st) != 0) return Errno();
  return WriteFilestat(Mem(), a[1], st) ? kSuccess : kFault;
}

uint32_t Wasi::FdFilestatSetSize(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  return ftruncate(f->host, static_cast<off_t>(a[1])) == 0 ? kSuccess : Errno();
}

uint32_t Wasi::FdFilestatSetTimes(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  struct timespec times[2];
  if (!TimesOf(a[1], a[2], a[3], times)) return kInval;
  return futimens(f->host, times) == 0 ? kSuccess : Errno();
}

uint32_t Wasi::FdPrestatGet(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f || f->preopen.empty()) return kBadf;
  if (!InBounds(a[1], 8)) return kFault;
  uint8_t* p = Mem().data + a[1];
  std::memset(p, 0, 8);  // tag 0: a directory.
  auto len = static_cast<uint32_t>(f->preopen.size());
  std::memcpy(p + 4, &len, 4);
  return kSuccess;
}

uint32_t Wasi::FdPrestatDirName(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f || f->preopen.empty()) return kBadf;
  if (a[2] < f->preopen.size()) return kNametoolong;
  if (!InBounds(a[1], f->preopen.size())) return kFault;
  std::memcpy(Mem().data + a[1], f->preopen.data(), f->preopen.size());
  return kSuccess;
}

// fd_readdir: the directory is listed when the guest starts from cookie 0;
// a cookie is the index of the entry after the one it follows.
uint32_t Wasi::FdReaddir(const uint64_t* a) {
  Fd* f = Get(a[0]);
  if (!f) return kBadf;
  if (f->filetype != kDirectory) return kNotdir;
  uint64_t buf = a[1], len = a[2], cookie = a[3];
  if (!InBounds(buf, len)) return kFault;
  if (cookie == 0 || f->dir_names.empty()) {
    int fd = openat(f->host, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Errno();
    DIR* dir = fdopendir(fd);
    if (!dir) {
      close(fd);
      return Errno();
    }
    f->dir_names.clear();
    while (struct dirent* d = readdir(dir)) {
      // Each entry kept as its inode, type and name, packed for the guest.
      std::string entry(9, '\0');
      uint64_t ino = d->d_ino;
      std::memcpy(entry.data(), &ino, 8);
      entry[8] = static_cast<char>(FiletypeOfDirent(d->d_type));
      entry += d->d_name;
      f->dir_names.push_back(std::move(entry));
    }
    closedir(dir);
  }
  uint64_t used = 0;
  for (uint64_t i = cookie; i < f->dir_names.size() && used < len; ++i) {
    const std::string& entry = f->dir_names[i];
    std::string_view name = std::string_view(entry).substr(9);
    uint8_t header[24] = {};
    uint64_t next = i + 1;
    std::memcpy(header, &next, 8);
    std::memcpy(header + 8, entry.data(), 8);
    auto namelen = static_cast<uint32_t>(name.size());
    std::memcpy(header + 16, &namelen, 4);
    header[20] = static_cast<uint8_t>(entry[8]);
    // As much of the entry as fits: a full buffer tells the guest to ask again.
    uint64_t n = std::min<uint64_t>(24, len - used);
    std::memcpy(Mem().data + buf + used, header, n);
    used += n;
    n = std::min<uint64_t>(name.size(), len - used);
    std::memcpy(Mem().data + buf + used, name.data(), n);
    used += n;
  }
  return Store32(a[4], static_cast<uint32_t>(used)) ? kSuccess : kFault;
}

// ---- paths ----

uint32_t Wasi::PathOpen(const uint64_t* a) {
  Fd* dir = Get(a[0]);
  if (!dir) return kBadf;
  if (dir->filetype != kDirectory) return kNotdir;
  auto path = Path(a[2], a[3]);
  if (!path) return kFault;
  uint64_t oflags = a[4], rights = a[5], fdflags = a[7];
  constexpr uint64_t kRead = (1 << 1) | (1 << 14);  // fd_read, fd_readdir
  constexpr uint64_t kWrite = (1 << 0) | (1 << 6) | (1 << 8) | (1 << 22);
  bool read = (rights & kRead) != 0, write = (rights & kWrite) != 0;
  uint64_t flags = 0;
  if (oflags & 2) {  // directory
    flags = O_RDONLY | O_DIRECTORY;
  } else if (read && write) {
    flags = O_RDWR;
  } else if (write) {
    flags = O_WRONLY;
  } else {
    flags = O_RDONLY;
  }
  if (oflags & 1) flags |= O_CREAT;
  if (oflags & 4) flags |= O_EXCL;
  if (oflags & 8) flags |= O_TRUNC;
  if (fdflags & 1) flags |= O_APPEND;
  if (fdflags & 2) flags |= O_DSYNC;
  if (fdflags & 4) flags |= O_NONBLOCK;
  if (fdflags & (8 | 16)) flags |= O_SYNC;
  int fd = OpenBeneath(dir->host, *path, flags, (a[1] & 1) != 0);
  if (fd == -EXDEV) return kNotcapable;  // Out of the directory: not this descriptor's to reach.
  if (fd < 0) return FromErrno(-fd);
  struct stat st {};
  fstat(fd, &st);
  uint32_t n = AddFd(Fd{fd, true, FiletypeOf(st.st_mode), "", {}});
  if (!Store32(a[8], n)) {
    close(fd);
    fds_.erase(n);
    return kFault;
  }
  return kSuccess;
}

uint32_t Wasi::PathFilestatGet(const uint64_t* a) {
  Fd* dir = Get(a[0]);
  if (!dir) return kBadf;
  auto path = Path(a[2], a[3]);
  if (!path) return kFault;
  int fd = OpenBeneath(dir->host, *path, O_PATH, (a[1] & 1) != 0);
  if (fd == -EXDEV) return kNotcapable;
  if (fd < 0) return FromErrno(-fd);
  struct stat st {};
  int r = fstat(fd, &st);
  close(fd);
  if (r != 0) return Errno();
  return WriteFilestat(Mem(), a[4], st) ? kSuccess : kFault;
}

uint32_t Wasi::PathFilestatSetTimes(const uint64_t* a) {
  Fd* dir = Get(a[0]);
  if (!dir) return kBadf;
  auto path = Path(a[2], a[3]);
  if (!path) return kFault;
  struct timespec times[2];
  if (!TimesOf(a[4], a[5], a[6], times)) return kInval;
  std::string last;
  int parent = OpenParent(dir->host, *path, &last);
  if (parent == -EXDEV) return kNotcapable;
  if (parent < 0) return FromErrno(-parent);
  int r = utimensat(parent, last.c_str(), times, (a[1] & 1) ? 0 : AT_SYMLINK_NOFOLLOW);
  int e = errno;
  close(parent);
  return r == 0 ? kSuccess : FromErrno(e);
}

// The calls that act on a path's last component in its parent directory.
namespace {

template <typename F>
uint32_t AtParent(int parent, F f) {
  if (parent == -EXDEV) return kNotcapable;
  if (parent < 0) return FromErrno(-parent);
  int r = f(parent);
  int e = errno;
  close(parent);
  return r == 0 ? kSuccess : FromErrno(e);
}

}  // namespace

template <typename F>
uint32_t Wasi::AtLast(uint64_t fd, uint64_t path_ptr, uint64_t path_len, F f) {
  Fd* dir = Get(fd);
  if (!dir) return kBadf;
  auto path = Path(path_ptr, path_len);
  if (!path) return kFault;
  std::string last;
  return AtParent(OpenParent(dir->host, *path, &last),
                  [&](int parent) { return f(parent, last.c_str()); });
}

uint32_t Wasi::PathCreateDirectory(const uint64_t* a) {
  return AtLast(a[0], a[1], a[2], [](int p, const char* name) { return mkdirat(p, name, 0777); });
}

uint32_t Wasi::PathRemoveDirectory(const uint64_t* a) {
  return AtLast(a[0], a[1], a[2],
                [](int p, const char* name) { return unlinkat(p, name, AT_REMOVEDIR); });
}

uint32_t Wasi::PathUnlinkFile(const uint64_t* a) {
  return AtLast(a[0], a[1], a[2], [](int p, const char* name) { return unlinkat(p, name, 0); });
}

uint32_t Wasi::PathSymlink(const uint64_t* a) {
  auto target = Path(a[0], a[1]);
  Fd* dir = Get(a[2]);
  if (!dir) return kBadf;
  auto path = Path(a[3], a[4]);
  if (!target || !path) return kFault;
  // The link may say anything; following it stays beneath the directory.
  std::string last;
  return AtParent(OpenParent(dir->host, *path, &last),
                  [&](int p) { return symlinkat(target->c_str(), p, last.c_str()); });
}

uint32_t Wasi::PathReadlink(const uint64_t* a) {
  if (!InBounds(a[3], a[4])) return kFault;
  ssize_t n = -1;
  uint32_t r = AtLast(a[0], a[1], a[2], [&](int p, const char* name) {
    n = readlinkat(p, name, reinterpret_cast<char*>(Mem().data + a[3]), a[4]);
    return n < 0 ? -1 : 0;
  });
  if (r != kSuccess) return r;
  return Store32(a[5], static_cast<uint32_t>(n)) ? kSuccess : kFault;
}

template <typename F>
uint32_t Wasi::AtTwo(uint64_t from_fd, uint64_t from_ptr, uint64_t from_len, uint64_t to_fd,
                     uint64_t to_ptr, uint64_t to_len, F f) {
  Fd* from = Get(from_fd);
  Fd* to = Get(to_fd);
  if (!from || !to) return kBadf;
  auto old_path = Path(from_ptr, from_len);
  auto new_path = Path(to_ptr, to_len);
  if (!old_path || !new_path) return kFault;
  std::string old_last, new_last;
  int new_parent = OpenParent(to->host, *new_path, &new_last);
  if (new_parent < 0) return new_parent == -EXDEV ? kNotcapable : FromErrno(-new_parent);
  uint32_t r = AtParent(OpenParent(from->host, *old_path, &old_last), [&](int p) {
    return f(p, old_last.c_str(), new_parent, new_last.c_str());
  });
  close(new_parent);
  return r;
}

uint32_t Wasi::PathRename(const uint64_t* a) {
  return AtTwo(a[0], a[1], a[2], a[3], a[4], a[5],
               [](int p, const char* old_name, int q, const char* new_name) {
                 return renameat(p, old_name, q, new_name);
               });
}

uint32_t Wasi::PathLink(const uint64_t* a) {
  // a[1], the source's lookup flags: it is not followed past its own directory.
  return AtTwo(a[0], a[2], a[3], a[4], a[5], a[6],
               [](int p, const char* old_name, int q, const char* new_name) {
                 return linkat(p, old_name, q, new_name, 0);
               });
}

}  // namespace kiso::runtime::wasm
