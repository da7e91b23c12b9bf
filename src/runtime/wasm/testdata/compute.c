// A compute kernel for the benchmark: primes below N by a sieve, M times.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1000000;
  int rounds = argc > 2 ? atoi(argv[2]) : 1;
  char* composite = malloc(n + 1);
  long long total = 0;
  for (int r = 0; r < rounds; ++r) {
    memset(composite, 0, n + 1);
    for (long long i = 2; i * i <= n; ++i)
      if (!composite[i])
        for (long long j = i * i; j <= n; j += i) composite[j] = 1;
    for (int i = 2; i <= n; ++i) total += !composite[i];
  }
  printf("primes %lld\n", total);
  return 0;
}
