// WASI preview 1 (the `wasi_snapshot_preview1` import module) for kiso's
// WebAssembly runtime, written from the WASI witx definitions: arguments,
// environment, clocks, random, stdio and files and directories under the
// preopened directories (a pod's volumes) and nothing else, proc_exit,
// sched_yield and poll_oneoff on clocks. Sockets are answered `notsup`.
//
// The host side of each call works on the guest's linear memory as the engine
// hands it over at that moment (memory.grow may move it): every pointer and
// length the guest passes is checked against it (`fault` past its end).
// Paths resolve beneath their directory's descriptor with openat2's
// RESOLVE_BENEATH, so neither `..` nor a symbolic link leads out of a
// preopened directory: the kernel enforces the confinement, not string checks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace kiso::runtime::wasm {

inline constexpr std::string_view kWasiModule = "wasi_snapshot_preview1";

// The guest's linear memory at one moment. (Not std::span: the engine that
// hands it over is compiled as C++17, as wabt's headers require.)
struct GuestMemory {
  uint8_t* data = nullptr;
  size_t size = 0;
};

struct WasiOptions {
  std::vector<std::string> args;  // argv[0] first.
  std::vector<std::string> env;   // "NAME=value".
  struct Preopen {
    std::string host;   // A directory on the host.
    std::string guest;  // Its name for the guest ("/data").
  };
  std::vector<Preopen> preopens;
  int stdin_fd = 0;  // Guest descriptors 0–2; not closed by Wasi.
  int stdout_fd = 1;
  int stderr_fd = 2;
};

class Wasi {
 public:
  // A host function: its WASI name, its parameters ('i' i32, 'I' i64) and
  // whether it returns an errno (every one but proc_exit).
  struct Function {
    std::string_view name;
    std::string_view params;
    bool returns_errno;
    uint32_t (Wasi::*call)(const uint64_t* args);
  };
  // The function `name` of the module, or null.
  static const Function* Find(std::string_view name);

  explicit Wasi(WasiOptions options);
  ~Wasi();
  Wasi(const Wasi&) = delete;
  Wasi& operator=(const Wasi&) = delete;

  // Opens the preopened directories; an error names one that cannot be.
  Status Open();
  // How the host functions reach the guest's memory now.
  void SetMemory(std::function<GuestMemory()> memory) { memory_ = std::move(memory); }
  // Set once the guest called proc_exit: the engine then unwinds it.
  std::optional<uint32_t> exit_code() const { return exit_code_; }

  uint32_t Call(const Function& f, const uint64_t* args) { return (this->*f.call)(args); }

 private:
  struct Fd {
    int host = -1;
    bool owned = true;                   // Closed with the entry.
    uint8_t filetype = 0;                // WASI filetype.
    std::string preopen;                 // The guest's name for a preopened directory.
    std::vector<std::string> dir_names;  // fd_readdir: the listing its cookies index.
  };

  static const std::vector<Function>& Functions();
  GuestMemory Mem() const { return memory_ ? memory_() : GuestMemory{}; }
  bool InBounds(uint64_t ptr, uint64_t len) const;
  bool Store32(uint64_t ptr, uint32_t v) const;
  bool Store64(uint64_t ptr, uint64_t v) const;
  Fd* Get(uint64_t fd);
  // The guest path at (ptr, len), or nullopt when out of bounds or holding a NUL.
  std::optional<std::string> Path(uint64_t ptr, uint64_t len) const;
  // Opens `path` beneath directory `dirfd` (openat2 RESOLVE_BENEATH); -errno on failure.
  static int OpenBeneath(int dirfd, const std::string& path, uint64_t flags, bool follow);
  // The parent of `path` beneath `dirfd` (an O_PATH descriptor, or -errno)
  // and its last component.
  static int OpenParent(int dirfd, const std::string& path, std::string* last);
  // Calls f(parent descriptor, last component) for the path (path_ptr,
  // path_len) beneath descriptor `fd`: the calls that act on a name in its directory.
  template <typename F>
  uint32_t AtLast(uint64_t fd, uint64_t path_ptr, uint64_t path_len, F f);
  // The same for two paths (rename, link): f(old parent, old name, new parent, new name).
  template <typename F>
  uint32_t AtTwo(uint64_t from_fd, uint64_t from_ptr, uint64_t from_len, uint64_t to_fd,
                 uint64_t to_ptr, uint64_t to_len, F f);
  uint32_t AddFd(Fd fd);
  uint32_t StringsSizes(const std::vector<std::string>& list, uint64_t count_ptr,
                        uint64_t size_ptr) const;
  uint32_t StringsGet(const std::vector<std::string>& list, uint64_t ptrs, uint64_t buf) const;
  // Reads or writes through the guest's iovec array; `offset` < 0: at the file position.
  uint32_t Transfer(uint64_t fd, uint64_t iovs, uint64_t count, int64_t offset, bool write,
                    uint64_t done_ptr);

  uint32_t ArgsGet(const uint64_t* a);
  uint32_t ArgsSizesGet(const uint64_t* a);
  uint32_t EnvironGet(const uint64_t* a);
  uint32_t EnvironSizesGet(const uint64_t* a);
  uint32_t ClockResGet(const uint64_t* a);
  uint32_t ClockTimeGet(const uint64_t* a);
  uint32_t FdAdvise(const uint64_t* a);
  uint32_t FdAllocate(const uint64_t* a);
  uint32_t FdClose(const uint64_t* a);
  uint32_t FdDatasync(const uint64_t* a);
  uint32_t FdFdstatGet(const uint64_t* a);
  uint32_t FdFdstatSetFlags(const uint64_t* a);
  uint32_t FdFdstatSetRights(const uint64_t* a);
  uint32_t FdFilestatGet(const uint64_t* a);
  uint32_t FdFilestatSetSize(const uint64_t* a);
  uint32_t FdFilestatSetTimes(const uint64_t* a);
  uint32_t FdPread(const uint64_t* a);
  uint32_t FdPrestatGet(const uint64_t* a);
  uint32_t FdPrestatDirName(const uint64_t* a);
  uint32_t FdPwrite(const uint64_t* a);
  uint32_t FdRead(const uint64_t* a);
  uint32_t FdReaddir(const uint64_t* a);
  uint32_t FdRenumber(const uint64_t* a);
  uint32_t FdSeek(const uint64_t* a);
  uint32_t FdSync(const uint64_t* a);
  uint32_t FdTell(const uint64_t* a);
  uint32_t FdWrite(const uint64_t* a);
  uint32_t PathCreateDirectory(const uint64_t* a);
  uint32_t PathFilestatGet(const uint64_t* a);
  uint32_t PathFilestatSetTimes(const uint64_t* a);
  uint32_t PathLink(const uint64_t* a);
  uint32_t PathOpen(const uint64_t* a);
  uint32_t PathReadlink(const uint64_t* a);
  uint32_t PathRemoveDirectory(const uint64_t* a);
  uint32_t PathRename(const uint64_t* a);
  uint32_t PathSymlink(const uint64_t* a);
  uint32_t PathUnlinkFile(const uint64_t* a);
  uint32_t PollOneoff(const uint64_t* a);
  uint32_t ProcExit(const uint64_t* a);
  uint32_t ProcRaise(const uint64_t* a);
  uint32_t SchedYield(const uint64_t* a);
  uint32_t RandomGet(const uint64_t* a);
  uint32_t SockUnsupported(const uint64_t* a);

  WasiOptions options_;
  std::function<GuestMemory()> memory_;
  std::map<uint32_t, Fd> fds_;
  std::optional<uint32_t> exit_code_;
};

}  // namespace kiso::runtime::wasm
