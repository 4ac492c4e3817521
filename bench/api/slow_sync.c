// A slow disk for the coordinator's database, by LD_PRELOAD: fsync and fdatasync of a file whose
// name ends in "hpo.db" or "hpo.db-wal" take SLOW_SYNC_MS milliseconds longer (default 20), as
// on a network volume (a Kubernetes PersistentVolume on Ceph RBD or EBS, NFS). Every other file
// syncs as it would. Used by bench/api/run.sh; built there with `cc -shared -fPIC`.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int delay_ms(void) {
  static int ms = -1;
  if (ms < 0) {
    const char* v = getenv("SLOW_SYNC_MS");
    ms = v ? atoi(v) : 20;
  }
  return ms;
}

static int is_database(int fd) {
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  const size_t len = (size_t)n;
  return (len >= 6 && strcmp(path + len - 6, "hpo.db") == 0) || (len >= 10 && strcmp(path + len - 10, "hpo.db-wal") == 0);
}

static void slow(int fd) {
  if (!is_database(fd)) return;
  const int ms = delay_ms();
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

int fsync(int fd) {
  static int (*real)(int) = NULL;
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  slow(fd);
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int) = NULL;
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  slow(fd);
  return real(fd);
}
