#ifndef CQUIVER_ALLOCATION_COUNTER_H
#define CQUIVER_ALLOCATION_COUNTER_H

#include <stdint.h>

/// The heap allocations (malloc, calloc, realloc and the aligned forms) the calling thread has
/// made so far. Linked into a test executable only: it defines those functions, which then
/// count and forward to glibc's own, for the whole process.
uint64_t quiver_thread_allocations(void);

#endif
