// ApplyLayer and ExtractArchive: kiso-layers.so's entry points, loaded on first use.
#include "common/plugin.h"
#include "image/layer.h"

namespace kiso::image {

namespace {

using Entry = decltype(&KisoApplyLayer);

Status Call(const char* symbol, const std::string& archive, const std::string& dir) {
  auto entry = PluginSymbol("kiso-layers.so", KISO_LAYERS_PLUGIN_BUILT, symbol);
  if (!entry.ok()) return entry.status();
  Status out;
  reinterpret_cast<Entry> (*entry)(&archive, &dir, &out);
  return out;
}

}  // namespace

Status ApplyLayer(const std::string& layer, const std::string& dir) {
  return Call("KisoApplyLayer", layer, dir);
}

Status ExtractArchive(const std::string& archive, const std::string& dir) {
  return Call("KisoExtractArchive", archive, dir);
}

}  // namespace kiso::image
