// Custom resources' structural schemas: the input is a schema and an object
// separated by the first NUL byte (or newline). The schema is checked as a
// CustomResourceDefinition's would be; whatever passes prunes, defaults and
// validates the object, in bounded work (api/structural.h), and the defaults
// and pruning leave an object that prunes to itself.
#include <boost/json.hpp>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/object.h"
#include "api/structural.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiso::api;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t split = text.find('\0');
  if (split == std::string_view::npos) split = text.find('\n');
  if (split == std::string_view::npos) return 0;
  auto schema = ParseJson(text.substr(0, split));
  auto object = ParseJson(text.substr(split + 1));
  if (!schema.ok() || !object.ok()) return 0;
  (void)ValidateSchema(*schema, *object);  // Any schema, checked or not: bounded, no crash.
  if (!CheckStructural(*schema, "s").empty()) return 0;
  boost::json::value obj = *object;
  Prune(*schema, obj);
  ApplySchemaDefaults(*schema, obj);
  (void)ValidateSchema(*schema, obj);
  // Pruning is idempotent: what is left has nothing more to prune, unless a
  // default brought in a field its schema does not declare.
  boost::json::value again = obj;
  Prune(*schema, again);
  boost::json::value twice = again;
  if (!Prune(*schema, twice).empty()) std::abort();
  return 0;
}
