// kernels/cuda_engine_module.h: the CUDA GP engine as a module, loaded at run time.
//
// What it is: the contract between MakeGpEngine (gp_engine.cc) and hpo-cuda-engine.so, the
// shared module that holds the CUDA engine (cuda_engine.cc, cuda_kernels.cu) with its cuBLAS and
// CUDA runtime. The module exports one C symbol, hpo_cuda_engine_entry, returning the table
// below. Linked into `hpo` instead, cuBLAS was mapped and initialised by every hpo process, so
// `hpo list` or a worker took about 220 MB resident and 80 ms to start, and a CUDA build did not
// start at all on a node without the CUDA libraries. Loaded, only a process that asks for a
// `cuda` or `auto` engine pays that, once.
//
// Where it is looked for, first found wins: $HPO_CUDA_ENGINE (a path; when set, nothing else is
// tried); hpo-cuda-engine.so beside the running executable (/proc/self/exe), where the build
// and the install put it beside `hpo`; the build tree's copy (for tests and benchmarks run from
// there). It is loaded only where the NVIDIA driver (libcuda.so.1) loads: without one there is
// no device to use, and the CPU-only machines most coordinators run on do not map cuBLAS for
// nothing. Not found, not an ELF file, no driver, unloadable (a CUDA library missing: dlopen's
// message says which) or from another build (the interface number or a size disagrees): the
// engine is unavailable with that reason, `auto` runs on the CPU and says why.
//
// Thread safety: the module is loaded once per process (a function-local static).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/gp_engine.h"

namespace hpo::kernels {

// Raised whenever GpEngine, EngineOptions, Posterior or this table change shape.
inline constexpr uint32_t kCudaEngineInterface = 3;
inline constexpr const char* kCudaEngineModule = "hpo-cuda-engine.so";
inline constexpr const char* kCudaEngineSymbol = "hpo_cuda_engine_entry";

struct CudaEngineEntry {
  uint32_t interface;       // kCudaEngineInterface as the module was built
  size_t options_size;      // sizeof(EngineOptions) there
  size_t posterior_size;    // sizeof(Posterior) there
  size_t engine_size;       // sizeof(GpEngine) there
  GpStatus (*make)(const EngineOptions& options, std::unique_ptr<GpEngine>* out);
  std::string (*unavailable_reason)();  // "" when a device can be used
};

}  // namespace hpo::kernels

extern "C" {
using HpoCudaEngineEntryFn = const hpo::kernels::CudaEngineEntry* (*)();
}
