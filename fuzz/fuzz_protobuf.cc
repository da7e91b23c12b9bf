// Decoding protobuf request bodies (what kubectl's generators send): the
// envelope, runtime.Unknown, then the kind's message, with every size and
// the total work bounded; a decoded object is encoded again, as a response
// would be. No input may crash, hang or allocate past the bounds.
#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "api/protobuf.h"

// The codec is a plugin (kiso-protobuf.so): loaded here, before the fuzzing
// starts, so that libFuzzer counts its code's coverage (it takes the
// instrumented modules loaded by then).
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  const auto& errors = kiso::api::ProtobufSchemaErrors();
  for (const auto& e : errors) std::fprintf(stderr, "protobuf codec: %s\n", e.c_str());
  if (!errors.empty()) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto decoded = kiso::api::DecodeProtobuf(body);
  if (decoded.ok()) (void)kiso::api::EncodeProtobuf(*decoded);
  return 0;
}
