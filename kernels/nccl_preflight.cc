// hpo-nccl-preflight: the NCCL check a worker runs on each host of a multi-host GPU training job
// before its program starts (worker/agent.h). Two parts, so that every GPU of the attempt takes
// part in an all-reduce without the hosts having to know each other's GPU counts:
//   1. across the hosts: one rank per host on the host's first GPU of the attempt (--gpu); the
//      ranks find each other through NCCL's own bootstrap at --root (algo-1's address and a port
//      the attempt chose, passed as NCCL_COMM_ID: rank 0 listens there);
//   2. on this host, when --local-gpus names more than one GPU: one communicator over all of them
//      (ncclCommInitAll in this process), which checks the GPUs and the links between them.
// Each part runs a few all-reduces of --bytes. The last line of the output sums both up (bus
// bandwidth of each); exit 0. On any failure it prints `error: ...` naming the step and GPU and
// exits 1. Built only with CUDA and NCCL (HPO_WITH_CUDA).
//
//   hpo-nccl-preflight --rank R --nranks N --root HOST:PORT --gpu G [--local-gpus G,G2,...]
//                      [--bytes 67108864] [--iters 20]
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

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
  std::vector<int> local;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--rank") rank = std::atoi(v.c_str());
    else if (k == "--nranks") nranks = std::atoi(v.c_str());
    else if (k == "--root") root = v;
    else if (k == "--gpu") gpu = std::atoi(v.c_str());
    else if (k == "--bytes") bytes = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--iters") iters = std::atoi(v.c_str());
    else if (k == "--local-gpus") {
      std::stringstream ss(v);
      std::string g;
      while (std::getline(ss, g, ',')) {
        if (!g.empty()) local.push_back(std::atoi(g.c_str()));
      }
    }
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
  char across[256];
  std::snprintf(across, sizeof across, "%d hosts, %.2f GB/s bus bandwidth (%.3f ms per %zu-byte all-reduce)", nranks,
                busbw, seconds * 1e3, count * sizeof(float));
  std::printf("NCCL all-reduce across hosts: %s\n", across);
  std::fflush(stdout);
  cudaFree(buf);
  cudaStreamDestroy(stream);
  ncclCommDestroy(comm);

  if (local.size() < 2) {
    std::printf("NCCL all-reduce: %s\n", across);
    return 0;
  }
  // Every GPU of the attempt on this host, in one communicator driven by this process.
  const int n = static_cast<int>(local.size());
  std::vector<ncclComm_t> comms(local.size());
  if (ncclResult_t r = ncclCommInitAll(comms.data(), n, local.data()); r != ncclSuccess) {
    return Fail("ncclCommInitAll over this host's " + std::to_string(n) + " GPUs: " + ncclGetErrorString(r));
  }
  std::vector<float*> bufs(local.size(), nullptr);
  std::vector<cudaStream_t> streams(local.size());
  for (int i = 0; i < n; ++i) {
    if (cudaSetDevice(local[i]) != cudaSuccess || cudaMalloc(&bufs[i], count * sizeof(float)) != cudaSuccess ||
        cudaMemset(bufs[i], 0, count * sizeof(float)) != cudaSuccess || cudaStreamCreate(&streams[i]) != cudaSuccess) {
      return Fail("cannot allocate " + std::to_string(bytes) + " bytes on GPU " + std::to_string(local[i]));
    }
  }
  auto local_reduce = [&]() -> std::string {
    if (ncclGroupStart() != ncclSuccess) return "ncclGroupStart";
    for (int i = 0; i < n; ++i) {
      if (ncclAllReduce(bufs[i], bufs[i], count, ncclFloat, ncclSum, comms[i], streams[i]) != ncclSuccess) {
        ncclGroupEnd();
        return "ncclAllReduce on GPU " + std::to_string(local[i]);
      }
    }
    if (ncclGroupEnd() != ncclSuccess) return "ncclGroupEnd";
    for (int i = 0; i < n; ++i) {
      if (cudaSetDevice(local[i]) != cudaSuccess || cudaStreamSynchronize(streams[i]) != cudaSuccess) {
        return "the all-reduce on GPU " + std::to_string(local[i]);
      }
    }
    return "";
  };
  for (int i = 0; i < 3; ++i) {
    if (std::string e = local_reduce(); !e.empty()) return Fail("on this host (warm-up): " + e + " failed");
  }
  const auto local_start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) {
    if (std::string e = local_reduce(); !e.empty()) return Fail("on this host: " + e + " failed");
  }
  const double lsec = std::chrono::duration<double>(std::chrono::steady_clock::now() - local_start).count() / iters;
  const double lalg = static_cast<double>(count * sizeof(float)) / lsec / 1e9;
  const double lbus = lalg * 2.0 * (n - 1) / n;
  std::printf("NCCL all-reduce: %s; on this host %d GPUs, %.2f GB/s bus bandwidth (%.3f ms)\n", across, n, lbus,
              lsec * 1e3);
  std::fflush(stdout);
  for (int i = 0; i < n; ++i) {
    cudaSetDevice(local[i]);
    cudaFree(bufs[i]);
    cudaStreamDestroy(streams[i]);
    ncclCommDestroy(comms[i]);
  }
  return 0;
}
