// kernels/cuda_support.h (internal to the CUDA engine module): what its files share: CUDA and
// cuBLAS errors as GpStatus values (Unavailable, naming the call and the error), the HPO_*_TRY
// macros that return them, the HPO_CUDA_* A/B switches (HostAsked), and grow-only arrays of doubles in device memory (DeviceArray) and in
// page-locked host memory (PinnedArray).
// Included only by files compiled into hpo-cuda-engine.so (cuda_engine.cc, cuda_likelihood.cc).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <string>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kernels/gp_engine.h"

namespace hpo::kernels {

// True when environment variable `name` is set to "host": the module's A/B switches
// (HPO_CUDA_ASCENT, HPO_CUDA_FIT) that keep a part on the host.
inline bool HostAsked(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string(v) == "host";
}

inline std::string CudaErrorText(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

inline GpStatus CudaFailure(const char* what, cudaError_t e) {
  return GpStatus::Unavailable(std::string("CUDA engine: ") + what + " failed (" + CudaErrorText(e) + ")");
}

inline GpStatus CublasFailure(const char* what, cublasStatus_t s) {
  return GpStatus::Unavailable(std::string("CUDA engine: ") + what + " failed (" + cublasGetStatusName(s) + ": " +
                               cublasGetStatusString(s) + ")");
}

#define HPO_CUDA_TRY(expr)                                \
  do {                                                    \
    const cudaError_t hpo_e_ = (expr);                    \
    if (hpo_e_ != cudaSuccess) return CudaFailure(#expr, hpo_e_); \
  } while (0)

#define HPO_CUBLAS_TRY(expr)                                  \
  do {                                                        \
    const cublasStatus_t hpo_s_ = (expr);                     \
    if (hpo_s_ != CUBLAS_STATUS_SUCCESS) return CublasFailure(#expr, hpo_s_); \
  } while (0)

#define HPO_GP_TRY(expr)              \
  do {                                \
    GpStatus hpo_st_ = (expr);        \
    if (!hpo_st_.ok()) return hpo_st_; \
  } while (0)

// An array of doubles in device memory (kPinnedHost false) or in page-locked host memory (true:
// what a copy to or from the device reads or writes without staging); grow-only.
template <bool kPinnedHost>
class CudaDoubles {
 public:
  CudaDoubles() = default;
  CudaDoubles(const CudaDoubles&) = delete;
  CudaDoubles& operator=(const CudaDoubles&) = delete;
  ~CudaDoubles() { Release(); }

  double* get() const { return p_; }
  size_t size() const { return size_; }
  void swap(CudaDoubles& o) {
    std::swap(p_, o.p_);
    std::swap(size_, o.size_);
  }
  void Release() {
    if (p_) {
      if (kPinnedHost) cudaFreeHost(p_); else cudaFree(p_);
    }
    p_ = nullptr;
    size_ = 0;
  }
  // At least `count` doubles; the content is lost when it grows.
  cudaError_t Reserve(size_t count) {
    if (count <= size_ && p_) return cudaSuccess;
    Release();
    const size_t bytes = std::max<size_t>(count, 1) * sizeof(double);
    void** where = reinterpret_cast<void**>(&p_);
    const cudaError_t e = kPinnedHost ? cudaMallocHost(where, bytes) : cudaMalloc(where, bytes);
    if (e != cudaSuccess) {
      p_ = nullptr;
      return e;
    }
    size_ = std::max<size_t>(count, 1);
    return cudaSuccess;
  }

 private:
  double* p_ = nullptr;
  size_t size_ = 0;
};
using DeviceArray = CudaDoubles<false>;
using PinnedArray = CudaDoubles<true>;

}  // namespace hpo::kernels
