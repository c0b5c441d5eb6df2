// epoll(7) and eventfd(2), which Swift's Glibc module does not expose (see
// shared/design/TOOLCHAIN-NOTES.md). `struct epoll_event` is packed on x86-64, so Swift never
// touches it: these wrappers take and return plain integers.
#ifndef CQUIVER_POLL_H
#define CQUIVER_POLL_H

#include <stdint.h>

/// Readiness bits, as in `EPOLLIN`, `EPOLLOUT`, `EPOLLERR`, `EPOLLHUP`, `EPOLLRDHUP`, `EPOLLET`.
#define QUIVER_POLL_IN 0x001u
#define QUIVER_POLL_OUT 0x004u
#define QUIVER_POLL_ERR 0x008u
#define QUIVER_POLL_HUP 0x010u
#define QUIVER_POLL_RDHUP 0x2000u
#define QUIVER_POLL_ET (1u << 31)

/// `epoll_create1(EPOLL_CLOEXEC)`.
int quiver_epoll_create(void);
/// `epoll_ctl(ADD)` (or `MOD` when `modify` is non-zero) of `fd` with `events`, tagged `tag`.
int quiver_epoll_set(int epfd, int fd, uint32_t events, uint64_t tag, int modify);
/// `epoll_ctl(DEL)`.
int quiver_epoll_remove(int epfd, int fd);
/// `epoll_wait`: fills up to `capacity` tags and event masks; returns the count or -1 (errno).
int quiver_epoll_wait(int epfd, uint64_t *tags, uint32_t *events, int capacity, int timeout_ms);
/// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`.
int quiver_eventfd(void);
/// Adds one to an eventfd counter.
void quiver_eventfd_signal(int fd);
/// Resets an eventfd counter (reads it until empty).
void quiver_eventfd_drain(int fd);

/// Returns the allocator's free memory to the system (glibc `malloc_trim(0)`; a no-op where
/// there is none).
void quiver_heap_trim(void);

#endif
