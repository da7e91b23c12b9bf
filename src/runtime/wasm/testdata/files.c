// Files and directories under the preopened /data, and what stays out of reach.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp(const void* a, const void* b) { return strcmp(*(char* const*)a, *(char* const*)b); }

static void try_open(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd >= 0) {
    printf("open %s: ok\n", path);
    close(fd);
  } else {
    printf("open %s: %s\n", path, strerror(errno));
  }
}

int main(void) {
  FILE* f = fopen("/data/note.txt", "w");
  if (!f) {
    perror("fopen");
    return 1;
  }
  fputs("hello, file\n", f);
  fclose(f);
  char buf[64] = {0};
  int fd = open("/data/note.txt", O_RDONLY);
  lseek(fd, 7, SEEK_SET);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  printf("read from 7: %zd %s", n, buf);
  struct stat st;
  fstat(fd, &st);
  printf("size %lld regular %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
  close(fd);
  mkdir("/data/sub", 0755);
  rename("/data/note.txt", "/data/sub/moved.txt");
  printf("stat moved: %d\n", stat("/data/sub/moved.txt", &st));
  DIR* d = opendir("/data");
  char* names[64];
  int count = 0;
  struct dirent* e;
  while ((e = readdir(d)) && count < 64) names[count++] = strdup(e->d_name);
  closedir(d);
  qsort(names, count, sizeof names[0], cmp);
  for (int i = 0; i < count; ++i) printf("entry %s\n", names[i]);
  unlink("/data/sub/moved.txt");
  printf("rmdir: %d\n", rmdir("/data/sub"));
  try_open("/data/../outside.txt");
  try_open("/data/escape/outside.txt");
  try_open("/etc/passwd");
  return 0;
}
