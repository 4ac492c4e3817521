// kernels/cuda_likelihood.h (internal to the CUDA engine module): the fit's likelihood on the
// device, LikelihoodDevice (gp_engine.h) for the CUDA engine. Each device has its own CUDA stream
// and cuSOLVER handle, so that the fit's L-BFGS starts, one per host thread, evaluate side by
// side.
//
// One evaluation (kernels/likelihood_terms.h has the arithmetic): the hyperparameters go up
// (4 D + 2 doubles), then, on the device's stream, the warped and scaled inputs and K (own
// kernels), its Cholesky factor, alpha and, for the gradient, K^-1 (cuSOLVER potrf, potrs,
// potri), the pair and row sums and the value and gradient (own kernels); 1 + P doubles come
// back in one copy. A factorisation that fails is reported as +infinity, as on the host.
// Memory: four n x n arrays (8 n^2 bytes each), 200 points take 1.3 MB.
//
// HPO_CUDA_FIT=host: the engine offers no likelihood devices (the fit stays on the host), an
// A/B switch for the device benchmark and a way out should the device fit misbehave.
#pragma once

#include <memory>
#include <string>

#include "kernels/gp_engine.h"

namespace hpo::kernels {

// A likelihood device on CUDA device `device`, or null with the reason in *why.
std::unique_ptr<LikelihoodDevice> MakeCudaLikelihood(int device, std::string* why);

// True when HPO_CUDA_FIT=host asks for the host fit.
bool HostFitAsked();

}  // namespace hpo::kernels
