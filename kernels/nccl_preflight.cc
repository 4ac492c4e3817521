// hpo-nccl-preflight: the NCCL check a worker runs on each host of a multi-host GPU training job
// before its program starts (worker/agent.h). One rank per host on the host's first GPU of the
// attempt; the ranks find each other through NCCL's own bootstrap at --root (algo-1's address and
// a port the attempt chose, passed as NCCL_COMM_ID: rank 0 listens there). It runs a few
// all-reduces of --bytes, prints one line with the bus bandwidth, and exits 0; on any failure it
// prints `error: ...` naming the step and exits 1. Built only with CUDA and NCCL (HPO_WITH_CUDA).
//
//   hpo-nccl-preflight --rank R --nranks N --root HOST:PORT --gpu G [--bytes 67108864] [--iters 20]
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

int Fail(const std::string& what) {
  std::printf("error: %s\n", what.c_str());
  std::fflush(stdout);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int rank = -1, nranks = 0, gpu = 0, iters = 20;
  size_t bytes = size_t{64} << 20;
  std::string root;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--rank") rank = std::atoi(v.c_str());
    else if (k == "--nranks") nranks = std::atoi(v.c_str());
    else if (k == "--root") root = v;
    else if (k == "--gpu") gpu = std::atoi(v.c_str());
    else if (k == "--bytes") bytes = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--iters") iters = std::atoi(v.c_str());
    else return Fail("unknown option " + k + " (see the header of kernels/nccl_preflight.cc)");
  }
  if (rank < 0 || nranks < 1 || rank >= nranks || root.empty() || bytes < 4 || iters < 1) {
    return Fail("usage: hpo-nccl-preflight --rank R --nranks N --root HOST:PORT --gpu G [--bytes B] [--iters I]");
  }
  ::setenv("NCCL_COMM_ID", root.c_str(), 1);
  if (cudaError_t e = cudaSetDevice(gpu); e != cudaSuccess) {
    return Fail("cudaSetDevice(" + std::to_string(gpu) + "): " + cudaGetErrorString(e));
  }
  ncclUniqueId id;
  if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) return Fail(std::string("ncclGetUniqueId: ") + ncclGetErrorString(r));
  ncclComm_t comm;
  if (ncclResult_t r = ncclCommInitRank(&comm, nranks, id, rank); r != ncclSuccess) {
    return Fail("ncclCommInitRank (rank " + std::to_string(rank) + " of " + std::to_string(nranks) + ", root " + root +
                "): " + ncclGetErrorString(r));
  }
  const size_t count = bytes / sizeof(float);
  float* buf = nullptr;
  cudaStream_t stream;
  if (cudaMalloc(&buf, count * sizeof(float)) != cudaSuccess || cudaMemset(buf, 0, count * sizeof(float)) != cudaSuccess ||
      cudaStreamCreate(&stream) != cudaSuccess) {
    return Fail("cannot allocate " + std::to_string(bytes) + " bytes on GPU " + std::to_string(gpu));
  }
  auto all_reduce = [&]() -> bool {
    return ncclAllReduce(buf, buf, count, ncclFloat, ncclSum, comm, stream) == ncclSuccess &&
           cudaStreamSynchronize(stream) == cudaSuccess;
  };
  for (int i = 0; i < 3; ++i) {
    if (!all_reduce()) return Fail("ncclAllReduce (warm-up) failed");
  }
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) {
    if (!all_reduce()) return Fail("ncclAllReduce failed");
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters;
  const double algbw = static_cast<double>(count * sizeof(float)) / seconds / 1e9;
  const double busbw = nranks > 1 ? algbw * 2.0 * (nranks - 1) / nranks : algbw;
  std::printf("NCCL all-reduce: %d ranks, %zu bytes, %.2f GB/s bus bandwidth (%.2f GB/s algorithm), %.3f ms each\n",
              nranks, count * sizeof(float), busbw, algbw, seconds * 1e3);
  std::fflush(stdout);
  cudaFree(buf);
  cudaStreamDestroy(stream);
  ncclCommDestroy(comm);
  return 0;
}
