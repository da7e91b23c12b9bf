// Allocates 1 MiB at a time until malloc says no (or argv[1] MiB); prints how
// much it got. The blocks are kept and read back, so the compiler cannot drop them.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char* blocks[4096];

int main(int argc, char** argv) {
  int limit = argc > 1 ? atoi(argv[1]) : 64;
  int got = 0;
  while (got < limit && got < 4096) {
    char* p = malloc(1 << 20);
    if (!p) break;
    memset(p, got + 1, 1 << 20);
    blocks[got++] = p;
  }
  long sum = 0;
  for (int i = 0; i < got; ++i) sum += blocks[i][i];
  printf("allocated %d MiB (%s)\n", got, sum == (long)got * (got + 1) / 2 ? "kept" : "lost");
  return 0;
}
