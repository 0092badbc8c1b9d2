// An LD_PRELOAD shim that counts heap allocations (malloc, calloc, realloc, posix_memalign,
// aligned_alloc, memalign; C++'s operator new goes through malloc in libstdc++) by passing each
// to glibc's own __libc_* function. On SIGUSR1 it writes the count so far, in decimal and a
// newline, to the file named by MALLOC_COUNT_FILE (appended). tun_test uses it to check that
// tun mode's packet path allocates nothing per packet. glibc only; not under ASan (whose
// allocator must come first).
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

static atomic_ulong count;

void* malloc(size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(size_t align, size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_memalign(align, n);
}
void* aligned_alloc(size_t align, size_t n) { return memalign(align, n); }
int posix_memalign(void** out, size_t align, size_t n) {
  void* p = memalign(align, n);
  if (p == NULL) return 12;  // ENOMEM
  *out = p;
  return 0;
}

static void report(int sig) {
  (void)sig;
  const char* path = getenv("MALLOC_COUNT_FILE");
  if (path == NULL) return;
  char buf[32];
  char* end = buf + sizeof buf;
  char* p = end;
  *--p = '\n';
  unsigned long v = atomic_load(&count);
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  const int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return;
  ssize_t w = write(fd, p, (size_t)(end - p));
  (void)w;
  close(fd);
}

__attribute__((constructor)) static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = report;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
}
