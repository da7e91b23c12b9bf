// The runtime conformance suite's workload (runtime_conformance_test.cc):
// one C program built twice, as a static Linux executable for runc and crun
// and as a WASI command module for the wasm runtime, so that every handler
// runs the same workload. Its arguments are steps, done in order:
//   out TEXT, err TEXT   TEXT as a line on stdout, on stderr
//   hostname             "hostname NAME" (Linux: WASI has no host name)
//   env NAME             "NAME=value", or "NAME unset"
//   lines N              "line 1" to "line N"
//   read PATH            the file's bytes on stdout, or "cannot read PATH: <error>"
//   write PATH TEXT      TEXT and a newline as the whole of PATH: "wrote PATH",
//                        or "cannot write PATH: <error>"
//   grow MIB             1 MiB at a time, each written to: "have N MiB" after
//                        each; "refused at N MiB" when malloc says no
//   sleep SECONDS
//   on-term TEXT         from now on SIGTERM prints TEXT and exits 0 (Linux:
//                        a WASI module has no signals)
//   exit CODE
// After the last step it exits 0.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifndef __wasi__
#include <signal.h>
#endif

#ifndef __wasi__
static char term_line[256];  // The text and its newline: one write, one whole log line.

static void on_term(int sig) {
  (void)sig;
  // write(2) only: async-signal-safe.
  ssize_t n = write(1, term_line, strlen(term_line));
  _exit(n < 0);
}
#endif

static void do_read(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) {
    printf("cannot read %s: %s\n", path, strerror(errno));
    return;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
  fclose(f);
}

static void do_write(const char* path, const char* text) {
  FILE* f = fopen(path, "w");
  if (!f) {
    printf("cannot write %s: %s\n", path, strerror(errno));
    return;
  }
  int ok = fprintf(f, "%s\n", text) >= 0;
  ok = (fclose(f) == 0) && ok;
  if (ok) {
    printf("wrote %s\n", path);
  } else {
    printf("cannot write %s: %s\n", path, strerror(errno));
  }
}

static void do_grow(int mib) {
  static char* kept[4096];
  int have = 0;
  while (have < mib && have < 4096) {
    char* p = malloc(1 << 20);
    if (!p) {
      printf("refused at %d MiB\n", have);
      break;
    }
    memset(p, have + 1, 1 << 20);
    kept[have++] = p;
    printf("have %d MiB\n", have);
  }
  long sum = 0;  // Read back, so that the blocks are not optimised away.
  for (int i = 0; i < have; ++i) sum += kept[i][i];
  if (sum != (long)have * (have + 1) / 2) printf("memory lost\n");
}

static void do_sleep(double seconds) {
  struct timespec t;
  t.tv_sec = (time_t)seconds;
  t.tv_nsec = (long)((seconds - (double)t.tv_sec) * 1e9);
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);  // Each line out at once: a killed process loses none.
  for (int i = 1; i < argc; ++i) {
    const char* step = argv[i];
    const char* arg = i + 1 < argc ? argv[i + 1] : "";
    if (strcmp(step, "out") == 0) {
      printf("%s\n", arg);
      ++i;
    } else if (strcmp(step, "err") == 0) {
      fprintf(stderr, "%s\n", arg);
      ++i;
    } else if (strcmp(step, "hostname") == 0) {
      char name[256] = "";
#ifndef __wasi__
      gethostname(name, sizeof name - 1);
#endif
      printf("hostname %s\n", name);
    } else if (strcmp(step, "env") == 0) {
      const char* v = getenv(arg);
      if (v) {
        printf("%s=%s\n", arg, v);
      } else {
        printf("%s unset\n", arg);
      }
      ++i;
    } else if (strcmp(step, "lines") == 0) {
      int n = atoi(arg);
      for (int k = 1; k <= n; ++k) printf("line %d\n", k);
      ++i;
    } else if (strcmp(step, "read") == 0) {
      do_read(arg);
      ++i;
    } else if (strcmp(step, "write") == 0 && i + 2 < argc) {
      do_write(arg, argv[i + 2]);
      i += 2;
    } else if (strcmp(step, "grow") == 0) {
      do_grow(atoi(arg));
      ++i;
    } else if (strcmp(step, "sleep") == 0) {
      do_sleep(atof(arg));
      ++i;
    } else if (strcmp(step, "on-term") == 0) {
#ifndef __wasi__
      snprintf(term_line, sizeof term_line, "%s\n", arg);
      signal(SIGTERM, on_term);
#endif
      ++i;
    } else if (strcmp(step, "exit") == 0) {
      return atoi(arg);
    } else {
      fprintf(stderr, "workload: unknown step %s\n", step);
      return 64;
    }
  }
  return 0;
}
