// ImageStore: the node's images — {manifest, config, layers} (the seed's image
// tuple, 07.3.4) over a content-addressed BlobStore, with OCI and Docker v2
// schema 2 manifests treated alike. Names map to manifest digests in
// images.json; a root file system is unpacked once per image and shared
// read-only by every container made from it. Thread-safe.
#pragma once

#include <boost/json/value.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "image/blob_store.h"
#include "image/reference.h"

namespace kiso::image {

// The parts of an image config a runtime needs (OCI image spec "config").
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "K=V".
  std::string working_dir;
  std::string user;
};

struct Image {
  std::string name;             // Normalised reference: docker.io/library/busybox:latest.
  std::string manifest_digest;  // What the name points at.
  std::string config_digest;    // The image ID.
  std::vector<std::string> layers;
  int64_t size = 0;  // Config plus layers, bytes as stored.
  ImageConfig config;
};

// The linux/amd64 manifest's digest in an index (OCI index or Docker list).
Result<std::string> SelectPlatform(const boost::json::value& index);
bool IsIndexMediaType(std::string_view media_type);

class ImageStore {
 public:
  static Result<std::unique_ptr<ImageStore>> Open(std::string root);

  // Imports an OCI image layout tar or a docker-archive (`docker save`) tar.
  // Images without a full name in the archive are named `default_name`.
  Result<std::vector<Image>> Import(const std::string& tar, std::string_view default_name = "");
  // Records `ref` → the manifest (or index) blob `digest`, already stored.
  Result<Image> Tag(const Reference& ref, const std::string& digest);
  // By name (normalised first), by image ID (config digest) or its prefix.
  Result<Image> Get(std::string_view ref) const;
  std::vector<Image> List() const;
  // Forgets the name; blobs of images no name refers to are removed.
  Status Remove(std::string_view ref);
  // The unpacked root file system of `image` (read-only; made on first use).
  Result<std::string> Rootfs(const Image& image);

  BlobStore& blobs() { return blobs_; }
  const std::string& root() const { return root_; }

 private:
  explicit ImageStore(std::string root);
  Result<Image> Load(const std::string& name, const std::string& digest) const;
  Status Save() const;  // REQUIRES: mu_ held.
  // Re-reads images.json when another process (kiso image import) changed it.
  // REQUIRES: mu_ held.
  Status Refresh() const;

  std::string root_;
  BlobStore blobs_;
  mutable std::mutex mu_;
  mutable std::vector<std::pair<std::string, std::string>> refs_;  // name → manifest digest.
  mutable std::filesystem::file_time_type loaded_at_{};
  std::mutex unpack_mu_;
};

}  // namespace kiso::image
