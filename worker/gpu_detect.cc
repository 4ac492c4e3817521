#include "worker/gpu_detect.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <set>

namespace hpo::worker {

namespace {

// The few NVML declarations used, as nvml.h declares them (the ABI is stable across drivers).
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
struct nvmlMemory_t {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
constexpr nvmlReturn_t kNvmlSuccess = 0;

using InitFn = nvmlReturn_t (*)();
using ShutdownFn = nvmlReturn_t (*)();
using CountFn = nvmlReturn_t (*)(unsigned int*);
using HandleFn = nvmlReturn_t (*)(unsigned int, nvmlDevice_t*);
using NameFn = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned int);
using MemoryFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*);
using ErrorStringFn = const char* (*)(nvmlReturn_t);

class Library {
 public:
  explicit Library(const std::string& name) : handle_(::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) {}
  ~Library() {
    if (handle_ != nullptr) ::dlclose(handle_);
  }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  bool loaded() const { return handle_ != nullptr; }
  template <class F>
  F Symbol(const char* name) const {
    return reinterpret_cast<F>(::dlsym(handle_, name));
  }

 private:
  void* handle_;
};

}  // namespace

GpuDetection DetectGpus(const std::string& library) {
  GpuDetection out;
  Library lib(library);
  if (!lib.loaded()) {
    const char* err = ::dlerror();
    out.reason = "no GPUs: the NVIDIA management library " + library + " cannot be loaded (" +
                 (err != nullptr ? err : "unknown error") + ")";
    return out;
  }
  auto init = lib.Symbol<InitFn>("nvmlInit_v2");
  auto shutdown = lib.Symbol<ShutdownFn>("nvmlShutdown");
  auto count_fn = lib.Symbol<CountFn>("nvmlDeviceGetCount_v2");
  auto handle_fn = lib.Symbol<HandleFn>("nvmlDeviceGetHandleByIndex_v2");
  auto name_fn = lib.Symbol<NameFn>("nvmlDeviceGetName");
  auto memory_fn = lib.Symbol<MemoryFn>("nvmlDeviceGetMemoryInfo");
  auto uuid_fn = lib.Symbol<NameFn>("nvmlDeviceGetUUID");
  auto error_fn = lib.Symbol<ErrorStringFn>("nvmlErrorString");
  if (init == nullptr || shutdown == nullptr || count_fn == nullptr || handle_fn == nullptr) {
    out.reason = "no GPUs: " + library + " lacks nvmlInit_v2, nvmlShutdown, nvmlDeviceGetCount_v2 or "
                 "nvmlDeviceGetHandleByIndex_v2 (not an NVML library?)";
    return out;
  }
  auto error_text = [&](nvmlReturn_t rc) {
    const char* s = error_fn != nullptr ? error_fn(rc) : nullptr;
    return "NVML error " + std::to_string(rc) + (s != nullptr ? std::string(" (") + s + ")" : std::string());
  };
  if (nvmlReturn_t rc = init(); rc != kNvmlSuccess) {
    out.reason = "no GPUs: nvmlInit failed: " + error_text(rc);
    return out;
  }
  unsigned int count = 0;
  if (nvmlReturn_t rc = count_fn(&count); rc != kNvmlSuccess) {
    out.reason = "no GPUs: nvmlDeviceGetCount failed: " + error_text(rc);
    shutdown();
    return out;
  }
  for (unsigned int i = 0; i < count; ++i) {
    GpuDevice d;
    d.index = static_cast<int>(i);
    nvmlDevice_t dev = nullptr;
    if (handle_fn(i, &dev) == kNvmlSuccess) {
      char buf[256] = {0};
      if (name_fn != nullptr && name_fn(dev, buf, sizeof buf - 1) == kNvmlSuccess) d.name = buf;
      char ubuf[128] = {0};
      if (uuid_fn != nullptr && uuid_fn(dev, ubuf, sizeof ubuf - 1) == kNvmlSuccess) d.uuid = ubuf;
      nvmlMemory_t mem{};
      if (memory_fn != nullptr && memory_fn(dev, &mem) == kNvmlSuccess) d.memory_mb = mem.total / (1024 * 1024);
    }
    out.devices.push_back(std::move(d));
  }
  shutdown();
  out.reason = count == 0 ? "no GPUs: NVML (" + library + ") reports no devices"
                          : std::to_string(count) + " GPU(s) found through NVML (" + library + ")";
  return out;
}

Result<std::vector<int>> ParseGpuList(const std::string& text) {
  std::vector<int> out;
  std::set<int> seen;
  std::size_t pos = 0;
  while (true) {
    std::size_t comma = text.find(',', pos);
    std::string tok = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    bool digits = !tok.empty() && tok.size() <= 4 &&
                  std::all_of(tok.begin(), tok.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) {
      return Status::InvalidArgument("--gpus: \"" + tok + "\" in \"" + text +
                                     "\" is not a device index; use auto, none or a list such as 0,1,2");
    }
    int v = std::atoi(tok.c_str());
    if (v > 1023) return Status::InvalidArgument("--gpus: device index " + tok + " is out of range 0-1023");
    if (!seen.insert(v).second) return Status::InvalidArgument("--gpus: device index " + tok + " is listed twice");
    out.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

Result<std::vector<GpuDevice>> ResolveGpus(const std::string& flag, const GpuDetection& detected) {
  if (flag == "auto") return detected.devices;
  if (flag == "none" || flag.empty()) return std::vector<GpuDevice>{};
  auto list = ParseGpuList(flag);
  if (!list.ok()) return list.status();
  std::vector<GpuDevice> out;
  for (int i : *list) {
    auto it = std::find_if(detected.devices.begin(), detected.devices.end(),
                           [i](const GpuDevice& d) { return d.index == i; });
    if (it != detected.devices.end()) {
      out.push_back(*it);
    } else if (!detected.devices.empty()) {
      return Status::InvalidArgument("--gpus: device " + std::to_string(i) + " does not exist; this machine has " +
                                     std::to_string(detected.devices.size()) + " GPU(s), indices 0-" +
                                     std::to_string(detected.devices.size() - 1));
    } else {
      GpuDevice d;
      d.index = i;
      out.push_back(d);
    }
  }
  return out;
}

}  // namespace hpo::worker
