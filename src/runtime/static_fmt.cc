// fmt's compiled part for the helpers kiso links statically (kiso-shim,
// kiso-wasm; see CMakeLists.txt): Debian's fmt ships no static library, and
// the one function of it they call, fmt::vformat (through fmt::format), is
// compiled here from fmt's header-only form.
#define FMT_HEADER_ONLY
#include <fmt/format.h>

#include <string>

namespace kiso::runtime {

// Its address, kept where the linker sees it: this file then defines the
// function (an inline one in the header-only form) for the other objects.
using Vformat = std::string (*)(fmt::string_view, fmt::format_args);
extern const Vformat kStaticVformat;
const Vformat kStaticVformat = &fmt::vformat;

}  // namespace kiso::runtime
