// Whole-file reads and atomic writes; where the running executable is.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso {

// The file's bytes; NotFound when it cannot be opened.
Result<std::string> ReadFile(const std::string& path);
// Writes `content` to a temporary file of its own beside `path` with `mode`
// (as it is: the umask does not narrow it),
// syncs it (unless not `durable`) and renames it over `path`: readers see the
// old file or the new one, and after a crash one of the two (with `durable`,
// after a power loss too). Writers at once each rename a whole file; the last
// one stays. ResourceExhausted when the disk is full.
Status WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode = 0644,
                       bool durable = true);

// The directory of the running executable (/proc/self/exe), where the files
// shipped beside it are (kiso-shim, kiso-etcd.so); "" if it cannot be read.
std::string ExecutableDir();

}  // namespace kiso
