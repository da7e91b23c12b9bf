// The patch engine: the input is a document and a patch separated by the
// first NUL byte (or newline); every patch type and server-side apply run on them.
#include <boost/json.hpp>
#include <cstdint>
#include <string_view>

#include "api/managed_fields.h"
#include "api/object.h"
#include "api/patch.h"
#include "api/resources.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiso::api;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t split = text.find('\0');
  if (split == std::string_view::npos) split = text.find('\n');
  if (split == std::string_view::npos) return 0;
  auto doc = ParseJson(text.substr(0, split));
  auto patch = ParseJson(text.substr(split + 1));
  if (!doc.ok() || !patch.ok()) return 0;
  (void)ApplyJsonPatch(*doc, *patch);
  (void)ApplyMergePatch(*doc, *patch);
  for (const char* kind : {"Pod", "Deployment", "Service", "Node", "ConfigMap"}) {
    (void)ApplyStrategicMergePatch(*doc, *patch, kind);
  }
  if (doc->is_object() && patch->is_object()) {
    const ResourceType* type = FindResource("apps", "v1", "deployments");
    boost::json::object live = doc->get_object();
    (void)Apply(*type, "fuzz", false, patch->get_object(), live);
    (void)Apply(*type, "other", true, patch->get_object(), live);
    RecordUpdate(*type, "update", &doc->get_object(), live);
  }
  return 0;
}
