#include "runtime/wasm/engine.h"

#include <fmt/format.h>
#include <wabt/binary-reader.h>
#include <wabt/error-formatter.h>
#include <wabt/feature.h>
#include <wabt/interp/binary-reader-interp.h>
#include <wabt/interp/interp.h>

#include <fstream>
#include <iterator>
#include <vector>

namespace kiso::runtime::wasm {

namespace interp = wabt::interp;

namespace {

constexpr uint64_t kPageSize = 65536;
constexpr uint64_t kMaxPages = 65536;  // 4 GiB: wasm32's whole address space.
// A module file larger than this is refused before it is read.
constexpr uint64_t kMaxModuleBytes = 256ULL << 20;

Result<std::vector<uint8_t>> ReadModule(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return MakeStatus(Code::kNotFound, "wasm module {}: cannot be read", path);
  auto size = static_cast<uint64_t>(in.tellg());
  if (size > kMaxModuleBytes) {
    return MakeStatus(Code::kInvalidArgument, "wasm module {}: {} bytes, more than {}", path, size,
                      kMaxModuleBytes);
  }
  std::vector<uint8_t> data(size);
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(size))) {
    return MakeStatus(Code::kInvalidArgument, "wasm module {}: short read", path);
  }
  return data;
}

// Whether an import's declared type is the WASI function's.
bool SameSignature(const interp::FuncType& type, const Wasi::Function& f) {
  if (type.params.size() != f.params.size()) return false;
  for (size_t i = 0; i < f.params.size(); ++i) {
    wabt::Type want = f.params[i] == 'I' ? wabt::Type::I64 : wabt::Type::I32;
    if (type.params[i] != want) return false;
  }
  if (f.returns_errno) return type.results.size() == 1 && type.results[0] == wabt::Type::I32;
  return type.results.empty();
}

}  // namespace

Result<WasmExit> RunWasm(const WasmOptions& options) {
  auto data = ReadModule(options.module);
  if (!data.ok()) return data.status();

  wabt::Features features;  // The core specification and its finished proposals.
  wabt::ReadBinaryOptions read_options(features, nullptr, /*read_debug_names=*/false,
                                       /*stop_on_first_error=*/true,
                                       /*fail_on_custom_section_error=*/false);
  wabt::Errors errors;
  interp::ModuleDesc desc;
  if (wabt::Failed(interp::ReadBinaryInterp(options.module, data->data(), data->size(),
                                            read_options, &errors, &desc))) {
    std::string why = wabt::FormatErrorsToString(errors, wabt::Location::Type::Binary);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return MakeStatus(Code::kInvalidArgument, "wasm module {} is not valid: {}", options.module,
                      why);
  }

  // The memory limit, as the module's maximum.
  uint64_t limit_pages = kMaxPages;
  if (options.max_memory_bytes > 0) {
    limit_pages = std::min(kMaxPages, options.max_memory_bytes / kPageSize);
  }
  for (auto& memory : desc.memories) {
    wabt::Limits& limits = memory.type.limits;
    if (limits.initial > limit_pages) {
      return MakeStatus(Code::kResourceExhausted,
                        "wasm module {} needs {} bytes of memory at start, more than its limit "
                        "of {}",
                        options.module, limits.initial * kPageSize, limit_pages * kPageSize);
    }
    if (!limits.has_max || limits.max > limit_pages) {
      limits.has_max = true;
      limits.max = limit_pages;
    }
  }

  Wasi wasi(options.wasi);
  if (Status st = wasi.Open(); !st.ok()) return st;

  interp::Store store(features);
  interp::Module::Ptr module = interp::Module::New(store, std::move(desc));
  interp::RefVec imports;
  for (const auto& import : module->desc().imports) {
    const interp::ImportType& type = import.type;
    const Wasi::Function* f = type.module == kWasiModule ? Wasi::Find(type.name) : nullptr;
    if (!f || type.type->kind != interp::ExternKind::Func) {
      return MakeStatus(Code::kInvalidArgument,
                        "wasm module {} imports {}.{}, which kiso's WASI preview 1 does not "
                        "provide",
                        options.module, type.module, type.name);
    }
    const auto& func_type = *wabt::cast<interp::FuncType>(type.type.get());
    if (!SameSignature(func_type, *f)) {
      return MakeStatus(Code::kInvalidArgument, "wasm module {} imports {}.{} with another type",
                        options.module, type.module, type.name);
    }
    auto host = interp::HostFunc::New(
        store, func_type,
        [&wasi, f, &store](interp::Thread& /*thread*/, const interp::Values& params,
                           interp::Values& results, interp::Trap::Ptr* trap) -> wabt::Result {
          uint64_t args[16] = {};
          for (size_t i = 0; i < f->params.size(); ++i) {
            args[i] = f->params[i] == 'I' ? params[i].Get<uint64_t>()
                                          : uint64_t{params[i].Get<uint32_t>()};
          }
          uint32_t errno_value = wasi.Call(*f, args);
          if (wasi.exit_code()) {  // proc_exit: unwind the guest.
            *trap = interp::Trap::New(store, "proc_exit");
            return wabt::Result::Error;
          }
          if (f->returns_errno) results[0] = interp::Value::Make(errno_value);
          return wabt::Result::Ok;
        });
    imports.push_back(host.ref());
  }

  interp::Trap::Ptr trap;
  interp::Instance::Ptr instance =
      interp::Instance::Instantiate(store, module.ref(), imports, &trap);
  if (!instance) {
    if (wasi.exit_code()) return WasmExit{*wasi.exit_code(), ""};
    return MakeStatus(Code::kInvalidArgument, "wasm module {} cannot be instantiated: {}",
                      options.module, trap ? trap->message() : "unknown");
  }
  interp::Memory::Ptr memory;
  interp::Func::Ptr start;
  const auto& exports = module->desc().exports;
  for (size_t i = 0; i < exports.size(); ++i) {
    const auto& e = exports[i].type;
    if (e.name == "memory" && e.type->kind == interp::ExternKind::Memory) {
      memory = store.UnsafeGet<interp::Memory>(instance->exports()[i]);
    } else if (e.name == "_start" && e.type->kind == interp::ExternKind::Func) {
      start = store.UnsafeGet<interp::Func>(instance->exports()[i]);
    }
  }
  if (!start) {
    return MakeStatus(Code::kInvalidArgument,
                      "wasm module {} exports no _start function (not a WASI command)",
                      options.module);
  }
  interp::Memory* mem = memory.get();
  wasi.SetMemory([mem]() -> GuestMemory {
    if (!mem) return {};
    return {mem->UnsafeData(), static_cast<size_t>(mem->ByteSize())};
  });
  interp::Values params, results;
  wabt::Result r = start->Call(store, params, results, &trap);
  if (wasi.exit_code()) return WasmExit{*wasi.exit_code(), ""};
  if (wabt::Failed(r)) {
    return WasmExit{kTrapExitCode, trap ? trap->message() : "unknown trap"};
  }
  return WasmExit{0, ""};
}

}  // namespace kiso::runtime::wasm
