#include "CQuiverPoll.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

_Static_assert(QUIVER_POLL_IN == EPOLLIN && QUIVER_POLL_OUT == EPOLLOUT && QUIVER_POLL_ERR == EPOLLERR &&
               QUIVER_POLL_HUP == EPOLLHUP && QUIVER_POLL_RDHUP == EPOLLRDHUP && QUIVER_POLL_ET == EPOLLET,
               "epoll constants");

int quiver_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int quiver_epoll_set(int epfd, int fd, uint32_t events, uint64_t tag, int modify) {
    struct epoll_event event = { .events = events, .data = { .u64 = tag } };
    return epoll_ctl(epfd, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event);
}

int quiver_epoll_remove(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int quiver_epoll_wait(int epfd, uint64_t *tags, uint32_t *events, int capacity, int timeout_ms) {
    struct epoll_event ready[64];
    if (capacity > 64) capacity = 64;
    int count = epoll_wait(epfd, ready, capacity, timeout_ms);
    for (int i = 0; i < count; i++) {
        tags[i] = ready[i].data.u64;
        events[i] = ready[i].events;
    }
    return count;
}

int quiver_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void quiver_eventfd_signal(int fd) {
    uint64_t one = 1;
    (void)!write(fd, &one, sizeof one);
}

void quiver_eventfd_drain(int fd) {
    uint64_t value;
    while (read(fd, &value, sizeof value) == sizeof value) {}
}

#if defined(__GLIBC__)
#include <malloc.h>
void quiver_heap_trim(void) { malloc_trim(0); }
#else
void quiver_heap_trim(void) {}
#endif
