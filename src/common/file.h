// Whole-file reads and atomic writes.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso {

// The file's bytes; NotFound when it cannot be opened.
Result<std::string> ReadFile(const std::string& path);
// Writes `content` to a temporary file beside `path` with `mode`, syncs it
// and renames it over `path`: readers see the old file or the new one, and
// after a crash one of the two. ResourceExhausted when the disk is full.
Status WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode = 0644);

}  // namespace kiso
