/* netpol: the network-policy suite's server and prober (upstream's agnhost
 * "serve-hostname" and "connect" roles), built static by the test and put in
 * the test image, since busybox has no UDP server.
 *
 *   netpol serve PORT...        answers every TCP connection and every UDP
 *                               datagram on each PORT with the host name
 *                               (TCP: then closes; port 82 echoes lines instead)
 *   netpol probe MS TARGET...   TARGET is IP:PORT/tcp or IP:PORT/udp; tries all
 *                               at once, MS milliseconds at most, and prints
 *                               one line per target: "TARGET ok NAME" or
 *                               "TARGET fail". A UDP probe is a DNS query (for
 *                               kubernetes.default.svc.cluster.local), which
 *                               the cluster DNS answers too. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX 256

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int listener(int type, int port) {
  int fd = socket(AF_INET, type, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("bind");
    exit(1);
  }
  if (type == SOCK_STREAM) listen(fd, 64);
  return fd;
}

static void echo_lines(int c) {
  char buf[512];
  ssize_t n;
  while ((n = read(c, buf, sizeof buf)) > 0)
    if (write(c, buf, n) != n) break;
  _exit(0);
}

static void serve(int argc, char **argv) __attribute__((noreturn));
static void serve(int argc, char **argv) {
  char name[128] = "?";
  gethostname(name, sizeof name - 1);
  strcat(name, "\n");
  struct pollfd fds[MAX];
  int kinds[MAX], ports[MAX], n = 0;
  for (int i = 0; i < argc && n + 2 <= MAX; ++i) {
    int port = atoi(argv[i]);
    fds[n] = (struct pollfd){.fd = listener(SOCK_STREAM, port), .events = POLLIN};
    kinds[n] = SOCK_STREAM;
    ports[n++] = port;
    fds[n] = (struct pollfd){.fd = listener(SOCK_DGRAM, port), .events = POLLIN};
    kinds[n] = SOCK_DGRAM;
    ports[n++] = port;
  }
  signal(SIGCHLD, SIG_IGN); /* Echoing children are reaped by the kernel. */
  for (;;) {
    if (poll(fds, n, -1) < 0) continue;
    for (int i = 0; i < n; ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      if (kinds[i] == SOCK_DGRAM) {
        char buf[1500];
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        if (recvfrom(fds[i].fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len) >= 0)
          sendto(fds[i].fd, name, strlen(name), 0, (struct sockaddr *)&from, len);
        continue;
      }
      int c = accept(fds[i].fd, NULL, NULL);
      if (c < 0) continue;
      if (ports[i] == 82) {
        if (fork() == 0) echo_lines(c);
      } else {
        (void)!write(c, name, strlen(name));
      }
      close(c);
    }
  }
}

/* A DNS query for kubernetes.default.svc.cluster.local, type A. */
static size_t dns_query(unsigned char *q) {
  static const char *labels[] = {"kubernetes", "default", "svc", "cluster", "local"};
  size_t at = 0;
  unsigned char header[12] = {0x6b, 0x69, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  memcpy(q, header, 12);
  at = 12;
  for (int i = 0; i < 5; ++i) {
    size_t l = strlen(labels[i]);
    q[at++] = (unsigned char)l;
    memcpy(q + at, labels[i], l);
    at += l;
  }
  q[at++] = 0;
  q[at++] = 0;
  q[at++] = 1;
  q[at++] = 0;
  q[at++] = 1;
  return at;
}

static int probe(int argc, char **argv) {
  long deadline = now_ms() + atol(argv[0]);
  int count = argc - 1;
  struct pollfd fds[MAX];
  int done[MAX], udp[MAX];
  char answer[MAX][128];
  if (count > MAX) count = MAX;
  for (int i = 0; i < count; ++i) {
    char target[64], proto[8];
    unsigned port = 0;
    done[i] = 0;
    answer[i][0] = 0;
    snprintf(target, sizeof target, "%s", argv[i + 1]);
    char *colon = strrchr(target, ':');
    if (!colon || sscanf(colon + 1, "%u/%7s", &port, proto) != 2) {
      done[i] = -1;
      fds[i].fd = -1;
      continue;
    }
    *colon = 0;
    udp[i] = strcmp(proto, "udp") == 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, target, &a.sin_addr);
    int fd = socket(AF_INET, (udp[i] ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
    fds[i] = (struct pollfd){.fd = fd, .events = POLLIN};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
      done[i] = -1;
      fds[i].fd = -1;
      continue;
    }
    if (udp[i]) {
      unsigned char q[64];
      size_t len = dns_query(q);
      (void)!send(fd, q, len, 0);
    }
  }
  for (;;) {
    int left = 0;
    for (int i = 0; i < count; ++i) left += done[i] == 0;
    long wait = deadline - now_ms();
    if (left == 0 || wait <= 0) break;
    if (poll(fds, count, (int)wait) <= 0) continue;
    for (int i = 0; i < count; ++i) {
      if (done[i] || !fds[i].revents) continue;
      char buf[512];
      ssize_t n = recv(fds[i].fd, buf, sizeof buf - 1, 0);
      if (n > 0) {
        buf[n] = 0;
        if (udp[i] && n >= 12 && (unsigned char)buf[0] == 0x6b && (unsigned char)buf[1] == 0x69) {
          snprintf(answer[i], sizeof answer[i], "dns");
        } else {
          buf[strcspn(buf, "\r\n")] = 0;
          snprintf(answer[i], sizeof answer[i], "%.120s", buf);
        }
        done[i] = 1;
      } else {
        done[i] = -1;
      }
      fds[i].fd = -1;
    }
  }
  for (int i = 0; i < count; ++i)
    printf("%s %s%s%s\n", argv[i + 1], done[i] == 1 ? "ok" : "fail", done[i] == 1 ? " " : "",
           done[i] == 1 ? answer[i] : "");
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "serve") == 0) serve(argc - 2, argv + 2);
  if (argc >= 3 && strcmp(argv[1], "probe") == 0) return probe(argc - 2, argv + 2);
  fprintf(stderr, "usage: netpol serve PORT... | netpol probe MS IP:PORT/tcp|udp...\n");
  return 2;
}
