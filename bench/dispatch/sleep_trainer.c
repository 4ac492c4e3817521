/* The trial program of the dispatch-overhead benchmark (bench/dispatch/run.sh): one real process
 * per trial that sleeps and exits, written to the SageMaker training-container contract the hpo
 * worker speaks (run as `sleep_trainer train`, hyperparameters in SM_HP_<NAME>).
 *
 * Just before it exits it prints three metric lines; the benchmark's MetricDefinitions capture them:
 *   bench_start_ms=<Unix epoch ms at the top of main()>     (when the program started running)
 *   loss=<(x-0.3)^2>                                        (the tuning objective)
 *   bench_end_ms=<Unix epoch ms after the sleep>            (the program is about to exit)
 * so the stored metrics carry user-code start/end timestamps taken by the same clock as the
 * coordinator's, comparable to the timestamps ray_bench.py takes inside its Ray Tune trainable.
 *
 * Hyperparameters: sleep_ms (200), x (0).  Plain C, no allocation beyond stdio: the process costs
 * an exec and a dynamic load of libc, nothing else. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double hp(const char* name, double fallback) {
  const char* v = getenv(name);
  if (!v || !*v) return fallback;
  char* end = NULL;
  double d = strtod(v, &end);
  return (end && *end == '\0') ? d : fallback;
}

int main(int argc, char** argv) {
  long long start = now_ms();
  if (argc < 2 || strcmp(argv[1], "train") != 0) {
    fprintf(stderr, "usage: %s train   (run by an hpo worker)\n", argv[0]);
    return 2;
  }
  double sleep_ms = hp("SM_HP_SLEEP_MS", 200), x = hp("SM_HP_X", 0);
  struct timespec d = {(time_t)(sleep_ms / 1000), (long)((long long)sleep_ms % 1000) * 1000000L};
  while (nanosleep(&d, &d) != 0) {
  }
  long long end = now_ms();
  /* All output at the end, in one write: the worker then sends one metric batch and one log
   * batch per trial, as for a trainer that prints a single final metric line. Printing the start
   * stamp at the start would cost the runtime an extra batch (and database commit) per trial. */
  printf("bench_start_ms=%lld\nloss=%.17g\nbench_end_ms=%lld\n", start, (x - 0.3) * (x - 0.3), end);
  fflush(stdout);
  return 0;
}
