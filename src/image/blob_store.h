// BlobStore: content-addressed blobs (OCI image layout's blobs/sha256/<hex>).
// Every blob is verified against its digest before it becomes visible, so a
// reader never sees a partial or corrupt blob. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace kiso::image {

// "sha256:<hex>" of `data`.
std::string Sha256Digest(std::string_view data);
// "sha256:<hex>" of a file's contents.
Result<std::string> Sha256DigestOfFile(const std::string& path);

class BlobStore {
 public:
  explicit BlobStore(std::string root);  // Creates root/blobs/sha256 on first write.

  // Stores `data`; with `expected` (a digest), refuses data that does not match it.
  Result<std::string> Put(std::string_view data, std::string_view expected = "");
  // Moves the file at `path` in (same file system), verifying it as Put does.
  Result<std::string> Adopt(const std::string& path, std::string_view expected = "");
  bool Has(std::string_view digest) const;
  Result<std::string> Read(std::string_view digest) const;
  // Where the blob lives (whether or not it exists yet).
  std::string Path(std::string_view digest) const;
  Status Remove(std::string_view digest);

 private:
  std::string root_;
};

}  // namespace kiso::image
