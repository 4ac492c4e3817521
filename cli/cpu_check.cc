// cli/cpu_check.cc: a binary built for x86-64-v3 (HPO_CPU_BASELINE, the top-level
// CMakeLists.txt) says so and exits 3 when the CPU it runs on lacks those instructions, instead
// of dying on an illegal instruction somewhere in the linear algebra. It runs as a constructor
// before the program's own static initialisers (priority 101; the libraries hpo links are static,
// so theirs run after it too), and this file is built for any x86-64 (cli/CMakeLists.txt), so
// nothing built for the baseline has run yet. Built with HPO_CPU_CHECK_MAIN it is instead the
// configure-time probe: it exits 0 when this machine has x86-64-v3, 1 when not.
//
// x86-64-v3: AVX, AVX2, BMI1, BMI2, F16C, FMA, LZCNT, MOVBE, and the OS saving the AVX state
// (XSAVE enabled, XCR0's SSE and AVX bits). Read with CPUID directly: clang before 18 knows no
// "f16c" for __builtin_cpu_supports, and GCC's "x86-64-v3" name is GCC 12 and later.
#if (defined(HPO_CHECK_X86_64_V3) || defined(HPO_CPU_CHECK_MAIN)) && defined(__x86_64__)
#include <cpuid.h>
#include <unistd.h>

#include <cstdint>

namespace {

bool HasX86_64V3() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool fma = c & (1u << 12), movbe = c & (1u << 22), osxsave = c & (1u << 27), avx = c & (1u << 28),
             f16c = c & (1u << 29);
  if (!(fma && movbe && osxsave && avx && f16c)) return false;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 0x6u) != 0x6u) return false;  // the OS saves the SSE and AVX registers
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool bmi1 = b & (1u << 3), avx2 = b & (1u << 5), bmi2 = b & (1u << 8);
  if (!(bmi1 && avx2 && bmi2)) return false;
  if (!__get_cpuid(0x80000001u, &a, &b, &c, &d)) return false;
  return c & (1u << 5);  // LZCNT (ABM)
}

}  // namespace

#if defined(HPO_CPU_CHECK_MAIN)
int main() { return HasX86_64V3() ? 0 : 1; }
#else
namespace {

__attribute__((constructor(101))) void HpoCheckCpu() {
  if (HasX86_64V3()) return;
  static const char kMessage[] =
      "hpo: this binary was built for x86-64-v3 (AVX2, FMA, BMI2), which this CPU does not have; rebuild it on "
      "this machine (cmake's HPO_CPU_BASELINE=AUTO builds for what the building machine has) or with "
      "-DHPO_CPU_BASELINE=DEFAULT for any x86-64\n";
  ssize_t unused = ::write(2, kMessage, sizeof kMessage - 1);
  (void)unused;
  ::_exit(3);
}

}  // namespace
#endif
#endif
