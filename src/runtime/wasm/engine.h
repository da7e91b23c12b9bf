// kiso's WebAssembly engine: a WASI command module run by wabt's interpreter
// (Debian's `wabt` ships it as libwabt.a: decoding, validation and execution
// per the WebAssembly core specification, the same interpreter as wabt's
// spectest-interp) with kiso's WASI preview 1 (wasi.h) as its imports.
// The module's memory is capped at `max_memory_bytes` (its maximum pages
// lowered to the limit: memory.grow past it fails as the guest asks, so its
// malloc returns null); a module that needs more from the start is refused.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "runtime/wasm/wasi.h"

namespace kiso::runtime::wasm {

struct WasmOptions {
  std::string module;             // The .wasm file.
  WasiOptions wasi;               // args[0] is the module's name for itself.
  uint64_t max_memory_bytes = 0;  // 0: the module's own maximum (4 GiB at most).
};

// What a run came to: the exit code of proc_exit (or 0 when _start returned),
// or a trap (its message; the process convention is an abort's exit code).
struct WasmExit {
  uint32_t code = 0;
  std::string trap;  // Empty unless the guest trapped.
};

// The exit code a trapped module reports, as a process killed by SIGABRT.
inline constexpr uint32_t kTrapExitCode = 134;

// Loads, validates, links and runs the module's _start. An error (not a
// trap) means it never ran: unreadable, invalid, an import kiso does not
// provide, more memory than allowed.
Result<WasmExit> RunWasm(const WasmOptions& options);

}  // namespace kiso::runtime::wasm
