#include "kernels/gp_engine.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/cpu_engine.h"
#include "kernels/cuda_engine_module.h"

namespace hpo::kernels {

namespace {

// The CUDA engine module, loaded on first use (kernels/cuda_engine_module.h): its entry, or why
// there is none.
struct CudaModule {
  const CudaEngineEntry* entry = nullptr;
  std::string why;
};

std::string ExecutableDir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

bool LooksLikeElf(const std::string& path) {
  char magic[4] = {};
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  const size_t n = std::fread(magic, 1, sizeof magic, f);
  std::fclose(f);
  return n == sizeof magic && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

CudaModule LoadCudaModule() {
  CudaModule m;
  std::vector<std::string> paths;
  const char* env = std::getenv("HPO_CUDA_ENGINE");
  if (env && *env) {
    paths.push_back(env);
  } else {
    if (const std::string dir = ExecutableDir(); !dir.empty()) paths.push_back(dir + "/" + kCudaEngineModule);
#ifdef HPO_CUDA_ENGINE_BUILD_PATH
    paths.push_back(HPO_CUDA_ENGINE_BUILD_PATH);
#endif
  }
  std::string looked;
  for (const std::string& path : paths) {
    if (::access(path.c_str(), F_OK) != 0) {
      looked += (looked.empty() ? "" : ", ") + path;
      continue;
    }
    if (!LooksLikeElf(path)) {
      m.why = path + " is not a shared object (no ELF header): reinstall hpo-cuda-engine.so from the build";
      return m;
    }
    // No driver, no device: the module (cuBLAS and the CUDA runtime, about 200 MB once mapped)
    // is not loaded for nothing on the CPU-only machines that run most coordinators.
    if (!::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {
      const char* err = ::dlerror();
      m.why = std::string("no NVIDIA driver on this machine, so no CUDA device (") + (err ? err : "libcuda.so.1") + ")";
      return m;
    }
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* err = ::dlerror();
      m.why = "cannot load the CUDA engine " + path + ": " + (err ? err : "unknown error") +
              " (are the CUDA 13 runtime and cuBLAS libraries on this machine's library path?)";
      return m;
    }
    auto fn = reinterpret_cast<HpoCudaEngineEntryFn>(::dlsym(handle, kCudaEngineSymbol));
    const CudaEngineEntry* entry = fn ? fn() : nullptr;
    if (!entry) {
      m.why = path + " is not an hpo CUDA engine (it has no " + kCudaEngineSymbol + ")";
      return m;
    }
    if (entry->interface != kCudaEngineInterface || entry->options_size != sizeof(EngineOptions) ||
        entry->posterior_size != sizeof(Posterior) || entry->engine_size != sizeof(GpEngine)) {
      m.why = path + " was built with another version of hpo (engine interface " + std::to_string(entry->interface) +
              ", this hpo speaks " + std::to_string(kCudaEngineInterface) + "): install the two from one build";
      return m;
    }
    m.entry = entry;
    return m;
  }
#ifdef HPO_CUDA_ENGINE_BUILD_PATH
  m.why = "this hpo's CUDA engine, " + std::string(kCudaEngineModule) + ", is not where it looks (" + looked +
          "): install it beside hpo, or set HPO_CUDA_ENGINE=PATH";
#else
  m.why = "this hpo has no CUDA GP engine (built without CUDA" +
          (env && *env ? "; HPO_CUDA_ENGINE=" + std::string(env) + " is not there" : std::string()) + ")";
#endif
  return m;
}

const CudaModule& Cuda() {
  static const CudaModule module = LoadCudaModule();
  return module;
}

}  // namespace

const char* DeviceName(Device device) {
  switch (device) {
    case Device::kCpu: return "cpu";
    case Device::kCuda: return "cuda";
    case Device::kAuto: return "auto";
  }
  return "?";
}

bool ParseDevice(std::string_view text, Device* out) {
  if (text == "cpu") *out = Device::kCpu;
  else if (text == "cuda") *out = Device::kCuda;
  else if (text == "auto") *out = Device::kAuto;
  else return false;
  return true;
}

std::string CudaUnavailableReason() {
  const CudaModule& cuda = Cuda();
  return cuda.entry ? cuda.entry->unavailable_reason() : cuda.why;
}

GpStatus MakeGpEngine(Device device, const EngineOptions& options, std::unique_ptr<GpEngine>* out,
                      std::string* note) {
  if (note) note->clear();
  if (device == Device::kCpu) {
    *out = MakeCpuEngine(options);
    return GpStatus::Ok();
  }
  const CudaModule& cuda = Cuda();
  std::string reason = cuda.why;
  if (cuda.entry) {
    GpStatus st = cuda.entry->make(options, out);
    if (st.ok()) return st;
    reason = st.message();
  }
  if (device == Device::kCuda) return GpStatus::Unavailable("CUDA GP engine unavailable: " + reason);
  if (note) *note = "CUDA not used: " + reason;
  *out = MakeCpuEngine(options);
  return GpStatus::Ok();
}

}  // namespace hpo::kernels
