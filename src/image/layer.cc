// Layers applied with libarchive: the kiso-layers.so plugin (see layer.h).
#include "image/layer.h"

#include <archive.h>
#include <archive_entry.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <vector>

namespace kiso::image {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kWhiteout = ".wh.";
constexpr std::string_view kOpaque = ".wh..wh..opq";

using ReadArchive = std::unique_ptr<struct archive, int (*)(struct archive*)>;

Result<ReadArchive> Open(const std::string& path) {
  ReadArchive a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_all(a.get());  // gzip, zstd, none…
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return MakeStatus(Code::kInvalidArgument, "open archive {}: {}", path,
                      archive_error_string(a.get()));
  }
  return a;
}

// The entry's path relative to the root, normalised; nullopt if it would escape.
std::optional<std::string> CleanPath(const char* raw) {
  if (raw == nullptr) return std::nullopt;
  std::string out;
  std::string_view p(raw);
  while (!p.empty()) {
    size_t slash = p.find('/');
    std::string_view part = p.substr(0, slash);
    p = slash == std::string_view::npos ? "" : p.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") return std::nullopt;
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

// Extracts the archive's entries under `dir`; with `whiteouts`, skips the
// whiteout markers (applied beforehand by the caller).
Status Extract(const std::string& path, const std::string& root, bool whiteouts) {
  // Entries are written to absolute paths under the root (no chdir in a threaded
  // process), so the root itself must be free of symlinks for SECURE_SYMLINKS.
  std::error_code ec;
  std::string dir = fs::canonical(root, ec).string();
  if (ec) return MakeStatus(Code::kNotFound, "extract {}: {}: {}", path, root, ec.message());
  KISO_ASSIGN_OR_RETURN(auto in, Open(path));
  std::unique_ptr<struct archive, int (*)(struct archive*)> out(archive_write_disk_new(),
                                                                archive_write_free);
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM |
                                                ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_UNLINK |
                                                ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                                ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  archive_write_disk_set_standard_lookup(out.get());
  struct archive_entry* entry = nullptr;
  while (true) {
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      return MakeStatus(Code::kInvalidArgument, "read {}: {}", path,
                        archive_error_string(in.get()));
    }
    auto rel = CleanPath(archive_entry_pathname(entry));
    if (!rel) {
      return MakeStatus(Code::kInvalidArgument, "{}: entry {:?} escapes the root", path,
                        archive_entry_pathname(entry));
    }
    std::string base = rel->substr(rel->rfind('/') + 1);
    if (whiteouts && base.starts_with(kWhiteout)) continue;
    if (rel->empty()) continue;  // The root itself.
    std::string target = dir + "/" + *rel;
    archive_entry_set_pathname(entry, target.c_str());
    if (const char* link = archive_entry_hardlink(entry)) {
      auto link_rel = CleanPath(link);
      if (!link_rel)
        return MakeStatus(Code::kInvalidArgument, "{}: bad hard link {:?}", path, link);
      std::string link_target = dir + "/" + *link_rel;
      archive_entry_set_hardlink(entry, link_target.c_str());
    }
    r = archive_write_header(out.get(), entry);
    if (r < ARCHIVE_WARN) {
      return MakeStatus(Code::kInvalidArgument, "{}: extract {}: {}", path, *rel,
                        archive_error_string(out.get()));
    }
    if (archive_entry_size(entry) > 0) {
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      while ((r = archive_read_data_block(in.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
        if (archive_write_data_block(out.get(), buf, size, offset) < ARCHIVE_WARN) {
          return MakeStatus(Code::kResourceExhausted, "{}: write {}: {}", path, *rel,
                            archive_error_string(out.get()));
        }
      }
      if (r != ARCHIVE_EOF) {
        return MakeStatus(Code::kInvalidArgument, "{}: read {}: {}", path, *rel,
                          archive_error_string(in.get()));
      }
    }
    if (archive_write_finish_entry(out.get()) < ARCHIVE_WARN) {
      return MakeStatus(Code::kInternal, "{}: finish {}: {}", path, *rel,
                        archive_error_string(out.get()));
    }
  }
  return Status::Ok();
}

Status Apply(const std::string& layer, const std::string& dir) {
  // Pass 1: the whiteouts, which act on the layers below only.
  {
    KISO_ASSIGN_OR_RETURN(auto in, Open(layer));
    struct archive_entry* entry = nullptr;
    int r = 0;
    while ((r = archive_read_next_header(in.get(), &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
      auto rel = CleanPath(archive_entry_pathname(entry));
      if (!rel) continue;  // Refused with its name in pass 2.
      size_t slash = rel->rfind('/');
      std::string parent = slash == std::string::npos ? "" : rel->substr(0, slash);
      std::string base = rel->substr(slash == std::string::npos ? 0 : slash + 1);
      if (!base.starts_with(kWhiteout)) continue;
      fs::path parent_path = fs::path(dir) / parent;
      std::error_code ec;
      // Never follow a symlink out of the root.
      if (fs::is_symlink(parent_path, ec)) continue;
      if (base == kOpaque) {
        for (const auto& child : fs::directory_iterator(parent_path, ec)) {
          fs::remove_all(child.path(), ec);
        }
      } else {
        fs::remove_all(parent_path / base.substr(kWhiteout.size()), ec);
      }
      if (ec && ec != std::errc::no_such_file_or_directory) {
        return MakeStatus(Code::kInternal, "{}: whiteout {}: {}", layer, *rel, ec.message());
      }
    }
    if (r != ARCHIVE_EOF) {
      return MakeStatus(Code::kInvalidArgument, "read layer {}: {}", layer,
                        archive_error_string(in.get()));
    }
  }
  // Pass 2: everything else.
  return Extract(layer, dir, /*whiteouts=*/true);
}

}  // namespace

}  // namespace kiso::image

// The plugin's entry points (see layer.h).
KISO_PLUGIN_ENTRY void KisoApplyLayer(const std::string* layer, const std::string* dir,
                                      kiso::Status* out) {
  *out = kiso::image::Apply(*layer, *dir);
}

KISO_PLUGIN_ENTRY void KisoExtractArchive(const std::string* archive, const std::string* dir,
                                          kiso::Status* out) {
  *out = kiso::image::Extract(*archive, *dir, /*whiteouts=*/false);
}
