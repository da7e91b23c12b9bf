// Clocks, sleeping (poll_oneoff on a clock) and random bytes.
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void) {
  struct timespec a, b, wall;
  clock_gettime(CLOCK_MONOTONIC, &a);
  struct timespec nap = {0, 30 * 1000 * 1000};
  nanosleep(&nap, NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  long long ms = (b.tv_sec - a.tv_sec) * 1000LL + (b.tv_nsec - a.tv_nsec) / 1000000;
  printf("slept at least 30 ms: %d\n", ms >= 30);
  clock_gettime(CLOCK_REALTIME, &wall);
  printf("wall clock after 2020: %d\n", wall.tv_sec > 1577836800);
  unsigned char bytes[32] = {0};
  int nonzero = 0;
  if (getentropy(bytes, sizeof bytes) == 0)
    for (unsigned i = 0; i < sizeof bytes; ++i) nonzero += bytes[i] != 0;
  printf("random: %d\n", nonzero > 8);
  return 0;
}
