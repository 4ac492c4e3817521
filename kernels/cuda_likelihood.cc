// The fit's likelihood on a CUDA device (kernels/cuda_likelihood.h). Part of the module
// hpo-cuda-engine.so; plain C++ with the CUDA runtime and cuSOLVER C APIs, the kernels in
// cuda_kernels.cu.
#include "kernels/cuda_likelihood.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>
#include <cusolverDn.h>

#include <Eigen/Core>

#include "kernels/cuda_kernels.h"
#include "kernels/cuda_support.h"
#include "kernels/likelihood_terms.h"

namespace hpo::kernels {

bool HostFitAsked() { return HostAsked("HPO_CUDA_FIT"); }

namespace {

GpStatus CusolverFailure(const char* what, cusolverStatus_t s) {
  return GpStatus::Unavailable(std::string("CUDA fit: ") + what + " failed (cuSOLVER status " +
                               std::to_string(static_cast<int>(s)) + ")");
}

#define HPO_CUSOLVER_TRY(expr)                                           \
  do {                                                                   \
    const cusolverStatus_t hpo_s_ = (expr);                              \
    if (hpo_s_ != CUSOLVER_STATUS_SUCCESS) return CusolverFailure(#expr, hpo_s_); \
  } while (0)

class CudaLikelihood final : public LikelihoodDevice {
 public:
  CudaLikelihood(int device, cudaStream_t stream, cusolverDnHandle_t solver)
      : device_(device), stream_(stream), solver_(solver) {}
  ~CudaLikelihood() override {
    if (solver_) cusolverDnDestroy(solver_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  GpStatus Load(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const std::vector<uint8_t>& mask) override {
    loaded_ = false;
    const Eigen::Index dims = x.rows(), n = x.cols();
    if (dims == 0 || n == 0 || y.size() != n) return GpStatus::InvalidArgument("CUDA fit: the inputs' and targets' shapes do not match");
    if (!mask.empty() && mask.size() != static_cast<size_t>(dims)) {
      return GpStatus::InvalidArgument("CUDA fit: the warp mask does not match the dimensions");
    }
    if (n > 65535) return GpStatus::Unavailable("CUDA fit: more than 65535 fit points (one grid row per point)");
    HPO_CUDA_TRY(cudaSetDevice(device_));
    dims_ = static_cast<int>(dims);
    n_ = static_cast<int>(n);
    // On the device: the warped index of each coordinate (-1: not warped), each warped index's
    // coordinate, then the three cuSOLVER status words.
    std::vector<int> ints(static_cast<size_t>(dims), -1);
    std::vector<int> warped_dims;
    for (int d = 0; d < dims_; ++d) {
      if (!mask.empty() && mask[static_cast<size_t>(d)]) {
        ints[static_cast<size_t>(d)] = static_cast<int>(warped_dims.size());
        warped_dims.push_back(d);
      }
    }
    warped_ = static_cast<int>(warped_dims.size());
    warp_of_ = ints;
    ints.insert(ints.end(), warped_dims.begin(), warped_dims.end());
    ints.insert(ints.end(), {0, 0, 0});
    const size_t nn = static_cast<size_t>(n) * static_cast<size_t>(n), nd = static_cast<size_t>(n) * dims_;
    size_t free_bytes = 0, total_bytes = 0;
    HPO_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    const double need = (4.0 * static_cast<double>(nn) + 4.0 * static_cast<double>(nd)) * sizeof(double);
    if (need > 0.5 * static_cast<double>(free_bytes)) {
      return GpStatus::Unavailable("CUDA fit: " + std::to_string(n) + " fit points need " +
                                   std::to_string(static_cast<long long>(need / 1048576.0)) + " MiB, more than half of " +
                                   std::to_string(free_bytes / 1048576) + " MiB free");
    }
    const size_t params = static_cast<size_t>(LikelihoodParamsSize(dims_));
    const size_t outs = 1 + static_cast<size_t>(dims_) + 2 + 2 * static_cast<size_t>(warped_);
    HPO_CUDA_TRY(x_.Reserve(nd));
    HPO_CUDA_TRY(y_.Reserve(static_cast<size_t>(n)));
    HPO_CUDA_TRY(params_.Reserve(params));
    HPO_CUDA_TRY(ints_.Reserve((ints.size() + 1) / 2));  // ints in an array of doubles
    HPO_CUDA_TRY(z_.Reserve(nd));
    HPO_CUDA_TRY(dwa_.Reserve(static_cast<size_t>(n) * std::max(warped_, 1)));
    HPO_CUDA_TRY(dwb_.Reserve(static_cast<size_t>(n) * std::max(warped_, 1)));
    HPO_CUDA_TRY(chol_.Reserve(nn));
    HPO_CUDA_TRY(alpha_.Reserve(static_cast<size_t>(n)));
    HPO_CUDA_TRY(kinv_.Reserve(nn));
    HPO_CUDA_TRY(c_.Reserve(nn));
    HPO_CUDA_TRY(s_.Reserve(nn));
    HPO_CUDA_TRY(zr_.Reserve(nd));
    HPO_CUDA_TRY(ls_.Reserve(nd));
    HPO_CUDA_TRY(sig_.Reserve(static_cast<size_t>(n)));
    HPO_CUDA_TRY(dg_.Reserve(static_cast<size_t>(n)));
    HPO_CUDA_TRY(out_.Reserve(outs));
    HPO_CUDA_TRY(params_host_.Reserve(params));
    HPO_CUDA_TRY(out_host_.Reserve(outs));
    HPO_CUDA_TRY(cudaMemcpyAsync(x_.get(), x.data(), nd * sizeof(double), cudaMemcpyHostToDevice, stream_));
    HPO_CUDA_TRY(cudaMemcpyAsync(y_.get(), y.data(), static_cast<size_t>(n) * sizeof(double), cudaMemcpyHostToDevice,
                                 stream_));
    HPO_CUDA_TRY(cudaMemcpyAsync(ints_.get(), ints.data(), ints.size() * sizeof(int), cudaMemcpyHostToDevice, stream_));
    int lwork_potrf = 0, lwork_potri = 0;
    HPO_CUSOLVER_TRY(cusolverDnDpotrf_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER, n_, chol_.get(), n_, &lwork_potrf));
    HPO_CUSOLVER_TRY(cusolverDnDpotri_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER, n_, kinv_.get(), n_, &lwork_potri));
    lwork_ = std::max({lwork_potrf, lwork_potri, 1});
    HPO_CUDA_TRY(work_.Reserve(static_cast<size_t>(lwork_)));
    HPO_CUDA_TRY(cudaStreamSynchronize(stream_));  // `ints` goes out of scope

    int* ip = reinterpret_cast<int*>(ints_.get());
    info_ = ip + dims_ + warped_;
    arrays_ = {.x = x_.get(), .y = y_.get(), .params = params_.get(), .warp_index = ip, .warped_dims = ip + dims_,
               .warped_count = warped_, .z = z_.get(), .dwa = dwa_.get(), .dwb = dwb_.get(), .chol = chol_.get(),
               .alpha = alpha_.get(), .kinv = kinv_.get(), .info = info_, .c = c_.get(), .s = s_.get(),
               .zr = zr_.get(), .ls = ls_.get(), .sig = sig_.get(), .dg = dg_.get(), .out = out_.get()};
    loaded_ = true;
    return GpStatus::Ok();
  }

  GpStatus Evaluate(const Eigen::VectorXd& theta, double* value, Eigen::VectorXd* grad) override {
    if (!loaded_) return GpStatus::InvalidArgument("CUDA fit: Evaluate before Load");
    const Eigen::Index count = dims_ + 2 + 2 * warped_;
    if (theta.size() != count) {
      return GpStatus::InvalidArgument("CUDA fit: " + std::to_string(theta.size()) + " hyperparameters for " +
                                       std::to_string(count));
    }
    double* hp = params_host_.get();
    const int dims = dims_;
    FillLikelihoodParams(theta.data(), dims, warp_of_.data(), warped_, hp);
    const bool gradient = grad != nullptr;
    HPO_CUDA_TRY(cudaSetDevice(device_));
    HPO_CUDA_TRY(cudaMemcpyAsync(params_.get(), hp, static_cast<size_t>(LikelihoodParamsSize(dims)) * sizeof(double),
                                 cudaMemcpyHostToDevice, stream_));
    HPO_CUDA_TRY(cuda::LaunchLikelihoodInputs(arrays_, dims, n_, gradient, stream_));
    HPO_CUSOLVER_TRY(
        cusolverDnDpotrf(solver_, CUBLAS_FILL_MODE_LOWER, n_, chol_.get(), n_, work_.get(), lwork_, info_));
    HPO_CUDA_TRY(cudaMemcpyAsync(alpha_.get(), y_.get(), static_cast<size_t>(n_) * sizeof(double),
                                 cudaMemcpyDeviceToDevice, stream_));
    HPO_CUSOLVER_TRY(cusolverDnDpotrs(solver_, CUBLAS_FILL_MODE_LOWER, n_, 1, chol_.get(), n_, alpha_.get(), n_, info_ + 1));
    if (gradient) {
      HPO_CUDA_TRY(cudaMemcpyAsync(kinv_.get(), chol_.get(), Sq() * sizeof(double), cudaMemcpyDeviceToDevice, stream_));
      HPO_CUSOLVER_TRY(
          cusolverDnDpotri(solver_, CUBLAS_FILL_MODE_LOWER, n_, kinv_.get(), n_, work_.get(), lwork_, info_ + 2));
    }
    HPO_CUDA_TRY(cuda::LaunchLikelihoodResult(arrays_, dims, n_, gradient, stream_));
    const size_t back = 1 + (gradient ? static_cast<size_t>(count) : 0);
    HPO_CUDA_TRY(cudaMemcpyAsync(out_host_.get(), out_.get(), back * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    HPO_CUDA_TRY(cudaStreamSynchronize(stream_));
    const double* o = out_host_.get();
    *value = o[0];
    if (gradient && std::isfinite(o[0])) *grad = Eigen::Map<const Eigen::VectorXd>(o + 1, count);
    return GpStatus::Ok();
  }

 private:
  size_t Sq() const { return static_cast<size_t>(n_) * static_cast<size_t>(n_); }

  int device_;
  cudaStream_t stream_;
  cusolverDnHandle_t solver_;
  bool loaded_ = false;
  int dims_ = 0, n_ = 0, warped_ = 0, lwork_ = 0;
  std::vector<int> warp_of_;  // per coordinate: its index among the warped ones, or -1
  int* info_ = nullptr;
  DeviceArray x_, y_, params_, ints_, z_, dwa_, dwb_, chol_, alpha_, kinv_, c_, s_, zr_, ls_, sig_, dg_, out_, work_;
  PinnedArray params_host_, out_host_;
  cuda::LikelihoodArrays arrays_{};
};

}  // namespace

std::unique_ptr<LikelihoodDevice> MakeCudaLikelihood(int device, std::string* why) {
  const auto fail = [&](const std::string& reason) -> std::unique_ptr<LikelihoodDevice> {
    if (why != nullptr) *why = "CUDA fit: " + reason;
    return nullptr;
  };
  if (cudaSetDevice(device) != cudaSuccess) return fail("cudaSetDevice failed");
  cudaStream_t stream = nullptr;
  const cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) return fail("cudaStreamCreateWithFlags failed (" + CudaErrorText(e) + ")");
  cusolverDnHandle_t solver = nullptr;
  cusolverStatus_t s = cusolverDnCreate(&solver);
  if (s != CUSOLVER_STATUS_SUCCESS) {
    cudaStreamDestroy(stream);
    return fail("cusolverDnCreate failed (status " + std::to_string(static_cast<int>(s)) + ")");
  }
  s = cusolverDnSetStream(solver, stream);
  if (s != CUSOLVER_STATUS_SUCCESS) {
    cusolverDnDestroy(solver);
    cudaStreamDestroy(stream);
    return fail("cusolverDnSetStream failed (status " + std::to_string(static_cast<int>(s)) + ")");
  }
  return std::make_unique<CudaLikelihood>(device, stream, solver);
}

}  // namespace hpo::kernels
