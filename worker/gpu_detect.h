// worker/gpu_detect.h: which GPUs this worker may give to trials.
//
// What it is: the `--gpus auto|none|LIST` decision of `hpo worker`. GPUs are found at run time
// through NVML, loaded with dlopen("libnvidia-ml.so.1"): the worker has no link-time dependency
// on the NVIDIA driver, so one binary runs on GPU and CPU-only machines alike. For each device it
// reads the model name, the total memory and the UUID, which the worker registers
// (proto/messages.h GpuInfo).
//
// What it is not: a scheduler. Which trial gets which GPU is the coordinator's decision; the
// worker only passes the indices of an attempt's slot on as CUDA_VISIBLE_DEVICES.
//
// No GPU is not an error: DetectGpus() then returns no devices and says why in `reason` (the
// library is missing, nvmlInit failed, no devices), which the worker logs.
//
// Thread safety: every function is reentrant. DetectGpus() loads and unloads the library on
// each call (nvmlInit/nvmlShutdown are reference counted by NVML itself).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace hpo::worker {

struct GpuDevice {
  int index = 0;           // the NVML / CUDA device index (CUDA_VISIBLE_DEVICES uses it)
  std::string uuid;        // "GPU-..."; empty = unknown
  std::string name;        // model, e.g. "NVIDIA H200"; empty = unknown
  uint64_t memory_mb = 0;  // total memory in MiB; 0 = unknown
  bool operator==(const GpuDevice&) const = default;
};

struct GpuDetection {
  std::vector<GpuDevice> devices;  // in index order
  std::string reason;              // why there are none, or which library answered; never empty
};

// The name dlopen is given by default.
inline constexpr const char* kNvmlLibrary = "libnvidia-ml.so.1";

// Enumerates the GPUs through NVML loaded from `library` (a soname searched like dlopen does, or
// a path). Never fails: a missing library, a missing symbol or an NVML error yield no devices and
// a reason naming the library and the error. A device whose name or memory cannot be read is
// still listed, with those fields unknown.
GpuDetection DetectGpus(const std::string& library = kNvmlLibrary);

// Parses a `--gpus` list: comma-separated device indices such as "0,1,3" (each 0-1023, no
// duplicates, no blanks). Errors: InvalidArgument naming the bad entry.
[[nodiscard]] Result<std::vector<int>> ParseGpuList(const std::string& text);

// The GPUs a worker uses, from its `--gpus` flag:
//   "auto"          every device `detected` lists (none on a machine without NVML);
//   "none" or ""    none;
//   a list          those indices, with name/memory/uuid filled in from `detected` where it
//                   knows the index. When `detected` found devices, an index it does not know is
//                   an error (a typo would otherwise hand trials a GPU that does not exist); when
//                   it found none (no driver library here), the list is taken as given.
// Errors: InvalidArgument for a malformed list or an index `detected` does not have.
[[nodiscard]] Result<std::vector<GpuDevice>> ResolveGpus(const std::string& flag, const GpuDetection& detected);

}  // namespace hpo::worker
