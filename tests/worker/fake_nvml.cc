// A stand-in for libnvidia-ml.so.1 with two devices, so that the dlopen path of
// worker/gpu_detect.cc is tested on machines without a GPU. It exports the NVML entry points
// DetectGpus uses, with NVML's C ABI; FAKE_NVML_FAIL_INIT=1 makes nvmlInit_v2 fail.
#include <cstdlib>
#include <cstring>

extern "C" {
struct nvmlDevice_st {
  int index;
};
struct nvmlMemory_t {
  unsigned long long total, free, used;
};
static nvmlDevice_st g_devices[2] = {{0}, {1}};

int nvmlInit_v2() { return std::getenv("FAKE_NVML_FAIL_INIT") ? 9 : 0; }  // 9 = NVML_ERROR_DRIVER_NOT_LOADED
int nvmlShutdown() { return 0; }
const char* nvmlErrorString(int rc) { return rc == 9 ? "Driver Not Loaded" : "Unknown Error"; }
int nvmlDeviceGetCount_v2(unsigned int* n) {
  *n = 2;
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_st** d) {
  if (i >= 2) return 2;
  *d = &g_devices[i];
  return 0;
}
int nvmlDeviceGetName(nvmlDevice_st* d, char* buf, unsigned int len) {
  std::strncpy(buf, d->index == 0 ? "NVIDIA H200" : "NVIDIA L4", len);
  return 0;
}
int nvmlDeviceGetUUID(nvmlDevice_st* d, char* buf, unsigned int len) {
  std::strncpy(buf, d->index == 0 ? "GPU-00000000-aaaa" : "GPU-11111111-bbbb", len);
  return 0;
}
int nvmlDeviceGetMemoryInfo(nvmlDevice_st* d, nvmlMemory_t* m) {
  if (d->index == 1) return 3;  // NVML_ERROR_NOT_SUPPORTED: memory stays unknown
  m->total = 143771ull * 1024 * 1024;
  m->free = m->total;
  m->used = 0;
  return 0;
}
}
