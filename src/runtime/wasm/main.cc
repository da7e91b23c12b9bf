// kiso-wasm: runs a WASI command module (engine.h): its stdio are the
// process's, its exit code the module's (134 after a trap, as after an abort;
// 125 when it never ran).
//
//   kiso-wasm [--max-memory BYTES] [--dir HOST:GUEST]... [--env NAME=VALUE]... MODULE [ARG]...
//
// Given an OCI runtime's command line instead (create, start, state, kill,
// delete: oci.h), it is the runtime of RuntimeClass `wasm`.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/wasm/engine.h"
#include "runtime/wasm/oci.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (kiso::runtime::wasm::IsOciCommand(args)) return kiso::runtime::wasm::OciMain(args);
  CLI::App app{"kiso-wasm: run a WASI command module"};
  kiso::runtime::wasm::WasmOptions options;
  std::vector<std::string> dirs;
  app.add_option("--max-memory", options.max_memory_bytes,
                 "The module's memory limit in bytes (its maximum pages lowered to it)");
  app.add_option("--dir", dirs, "HOST:GUEST, a directory the module may use (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--env", options.wasi.env, "NAME=VALUE in the module's environment (repeatable)")
      ->allow_extra_args(false);
  app.prefix_command();  // MODULE and its arguments, untouched.
  CLI11_PARSE(app, argc, argv);
  std::vector<std::string> rest = app.remaining();
  if (!rest.empty() && rest[0] == "--") rest.erase(rest.begin());
  if (rest.empty()) {
    std::fprintf(stderr, "kiso-wasm: no module given\n");
    return 125;
  }
  options.module = rest[0];
  options.wasi.args = rest;
  for (const auto& d : dirs) {
    size_t colon = d.find(':');
    if (colon == std::string::npos) {
      options.wasi.preopens.push_back({d, d});
    } else {
      options.wasi.preopens.push_back({d.substr(0, colon), d.substr(colon + 1)});
    }
  }
  auto exit = kiso::runtime::wasm::RunWasm(options);
  if (!exit.ok()) {
    std::fprintf(stderr, "kiso-wasm: %s\n", std::string(exit.status().message()).c_str());
    return 125;
  }
  if (!exit->trap.empty()) std::fprintf(stderr, "wasm trap: %s\n", exit->trap.c_str());
  std::fflush(stdout);
  return static_cast<int>(exit->code & 0xff);
}
