// kernels/cpu_engine.h (internal to kernels/): the Eigen engine, the reference implementation of
// GpEngine. Use MakeGpEngine (gp_engine.h) from outside kernels/.
//
// Threads: options.threads (0: OpenMP's default, normally the number of cores); built without
// OpenMP it runs on one thread. Results do not depend on the thread count.
#pragma once

#include <memory>

#include "kernels/gp_engine.h"

namespace hpo::kernels {

std::unique_ptr<GpEngine> MakeCpuEngine(const EngineOptions& options);

}  // namespace hpo::kernels
