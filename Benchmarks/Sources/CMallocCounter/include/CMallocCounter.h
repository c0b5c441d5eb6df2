#ifndef CMALLOC_COUNTER_H
#define CMALLOC_COUNTER_H
#include <stdint.h>
/// Number of heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc,
/// memalign) made by the process since it started. Linked into the benchmark executable,
/// these definitions interpose glibc's and forward to its __libc_* implementations.
uint64_t quiver_malloc_count(void);
#endif
