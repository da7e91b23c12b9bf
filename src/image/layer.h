// Layers as tar archives (plain, gzip or zstd: libarchive detects which),
// applied in order onto a directory with the OCI image spec's whiteouts:
// ".wh.NAME" removes NAME from the layers below, ".wh..wh..opq" hides all
// of a directory's lower contents. Entries may not escape the directory
// ("..", or writing through a symlink, are refused; absolute entry paths are
// taken as relative to the directory, as tar does).
//
// The work is done by libarchive, which with its compressors and their own
// libraries is about 1.5 MB of a process's memory once mapped. It lives in a
// plugin, kiso-layers.so, loaded by the first layer a process applies, so an
// API server, or a node that pulls nothing, never maps it (see common/plugin.h).
#pragma once

#include <string>

#include "common/plugin.h"
#include "common/status.h"

namespace kiso::image {

// Applies the layer archive at `layer` onto `dir` (which must exist).
Status ApplyLayer(const std::string& layer, const std::string& dir);

// Extracts every entry of the archive at `archive` into `dir`, with the same
// path checks and no whiteout handling (an image tar being imported).
Status ExtractArchive(const std::string& archive, const std::string& dir);

}  // namespace kiso::image

// kiso-layers.so's entry points, behind ApplyLayer and ExtractArchive.
KISO_PLUGIN_ENTRY void KisoApplyLayer(const std::string* layer, const std::string* dir,
                                      kiso::Status* out);
KISO_PLUGIN_ENTRY void KisoExtractArchive(const std::string* archive, const std::string* dir,
                                          kiso::Status* out);
