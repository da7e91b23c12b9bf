#include "image/image_service.h"

namespace kiso::image {

Result<std::unique_ptr<LocalImageService>> LocalImageService::Open(
    const std::string& images_dir, const std::string& registries_yaml) {
  KISO_ASSIGN_OR_RETURN(auto store, ImageStore::Open(images_dir));
  KISO_ASSIGN_OR_RETURN(auto registries, RegistryConfig::Load(registries_yaml));
  return std::unique_ptr<LocalImageService>(
      new LocalImageService(std::move(store), std::move(registries)));
}

Result<Image> LocalImageService::PullImage(std::string_view ref, const Progress& progress) {
  KISO_ASSIGN_OR_RETURN(auto parsed, ParseReference(ref));
  return registry_.Pull(*store_, parsed, progress);
}

}  // namespace kiso::image
