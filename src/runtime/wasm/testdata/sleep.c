// Sleeps until killed, a second at a time: a wasm pod that stays Running.
#include <time.h>

int main(void) {
  for (;;) {
    struct timespec second = {1, 0};
    nanosleep(&second, 0);
  }
}
