// ppoll(2), which Swift's Glibc module does not expose (it is a _GNU_SOURCE declaration; see
// shared/design/TOOLCHAIN-NOTES.md): poll with a nanosecond timeout, for quiver-bench's relay.
#ifndef CPRECISE_POLL_H
#define CPRECISE_POLL_H

#include <poll.h>
#include <stdint.h>

/// `ppoll(fds, count, timeout, NULL)` with the timeout in nanoseconds (negative: wait for ever);
/// returns what ppoll returns (-1 with errno on failure, EINTR when a signal came).
int quiver_precise_poll(struct pollfd *fds, unsigned int count, int64_t timeout_ns);

#endif
