// Layers as tar archives (plain, gzip or zstd: libarchive detects which),
// applied in order onto a directory with the OCI image spec's whiteouts:
// ".wh.NAME" removes NAME from the layers below, ".wh..wh..opq" hides all
// of a directory's lower contents. Entries may not escape the directory
// ("..", or writing through a symlink, are refused; absolute entry paths are
// taken as relative to the directory, as tar does).
#pragma once

#include <string>

#include "common/status.h"

namespace kiso::image {

// Applies the layer archive at `layer` onto `dir` (which must exist).
Status ApplyLayer(const std::string& layer, const std::string& dir);

// Extracts every entry of the archive at `archive` into `dir`, with the same
// path checks and no whiteout handling (an image tar being imported).
Status ExtractArchive(const std::string& archive, const std::string& dir);

}  // namespace kiso::image
