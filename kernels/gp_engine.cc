#include "kernels/gp_engine.h"

#include "kernels/cpu_engine.h"

namespace hpo::kernels {

#ifdef HPO_KERNELS_HAVE_CUDA_ENGINE
// Defined in the CUDA sources (cuda_engine.cu): the engine, or Unavailable with the reason.
GpStatus MakeCudaEngine(const EngineOptions& options, std::unique_ptr<GpEngine>* out);
std::string CudaEngineUnavailableReason();
#endif

GpEngine::~GpEngine() = default;

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
#ifdef HPO_KERNELS_HAVE_CUDA_ENGINE
  return CudaEngineUnavailableReason();
#else
  return "this hpo has no CUDA GP engine (built without CUDA, or the CUDA engine is not part of this build)";
#endif
}

GpStatus MakeGpEngine(Device device, const EngineOptions& options, std::unique_ptr<GpEngine>* out,
                      std::string* note) {
  if (note) note->clear();
  if (device == Device::kCpu) {
    *out = MakeCpuEngine(options);
    return GpStatus::Ok();
  }
#ifdef HPO_KERNELS_HAVE_CUDA_ENGINE
  GpStatus st = MakeCudaEngine(options, out);
  if (st.ok()) return st;
  const std::string reason = st.message();
#else
  const std::string reason = CudaUnavailableReason();
#endif
  if (device == Device::kCuda) return GpStatus::Unavailable("CUDA GP engine unavailable: " + reason);
  if (note) *note = "CUDA not used: " + reason;
  *out = MakeCpuEngine(options);
  return GpStatus::Ok();
}

}  // namespace hpo::kernels
