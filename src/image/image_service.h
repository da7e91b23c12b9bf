// ImageService: the CRI's image verbs — PullImage, ListImages, ImageStatus,
// RemoveImage (the seed's runtime interface, 07.3.1) — what a node agent asks
// of its images, whoever keeps them. LocalImageService keeps them in the
// node's ImageStore and pulls through a Registry with its mirrors; the agent
// and `kiso image` both go through it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "image/image_store.h"
#include "image/registry.h"

namespace kiso::image {

class ImageService {
 public:
  using Progress = std::function<void(const PullProgress&)>;
  virtual ~ImageService() = default;

  // Pulls `ref` from its registry (or a mirror of it) and names it here.
  // Errors carry the registry's answer.
  virtual Result<Image> PullImage(std::string_view ref, const Progress& progress) = 0;
  virtual std::vector<Image> ListImages() = 0;
  // The image `ref` names here (name, image ID or an ID prefix); NotFound
  // when the node does not have it.
  virtual Result<Image> ImageStatus(std::string_view ref) = 0;
  virtual Status RemoveImage(std::string_view ref) = 0;
  // Its root file system, unpacked read-only for containers (the runtime's
  // side of an image, which the CRI leaves to the runtime).
  virtual Result<std::string> ImageRootfs(const Image& image) = 0;
};

class LocalImageService : public ImageService {
 public:
  // Images under `images_dir`; mirrors from `registries_yaml` (absent: none).
  static Result<std::unique_ptr<LocalImageService>> Open(const std::string& images_dir,
                                                         const std::string& registries_yaml);

  Result<Image> PullImage(std::string_view ref, const Progress& progress) override;
  std::vector<Image> ListImages() override { return store_->List(); }
  Result<Image> ImageStatus(std::string_view ref) override { return store_->Get(ref); }
  Status RemoveImage(std::string_view ref) override { return store_->Remove(ref); }
  Result<std::string> ImageRootfs(const Image& image) override { return store_->Rootfs(image); }

  // What the CRI has no verb for: importing archives (`kiso image import`).
  ImageStore& store() { return *store_; }

 private:
  LocalImageService(std::unique_ptr<ImageStore> store, RegistryConfig registries)
      : store_(std::move(store)), registry_(std::move(registries)) {}

  std::unique_ptr<ImageStore> store_;
  Registry registry_;
};

}  // namespace kiso::image
