// The few Linux socket interfaces Swift's Glibc module leaves out (see
// shared/design/TOOLCHAIN-NOTES.md): sendmmsg/recvmmsg and struct mmsghdr (glibc declares them
// only under _GNU_SOURCE), struct in6_pktinfo, the CMSG_* macros, UDP_SEGMENT/UDP_GRO and the
// extended error of IP_RECVERR. The wrappers are compiled with _GNU_SOURCE in shims.c, which also
// checks at compile time that the structs below match the system's layout.
#ifndef CQUIVER_UDP_H
#define CQUIVER_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

/// `SOL_UDP`, the level of UDP socket options and control messages.
#define QUIVER_SOL_UDP 17
/// `UDP_SEGMENT` (Linux 4.18): the GSO segment size, as a socket option or a control message.
#define QUIVER_UDP_SEGMENT 103
/// `UDP_GRO` (Linux 5.0): coalesce received datagrams; the segment size arrives as a control message.
#define QUIVER_UDP_GRO 104
/// `SO_EE_ORIGIN_LOCAL`, `SO_EE_ORIGIN_ICMP`, `SO_EE_ORIGIN_ICMP6` (linux/errqueue.h).
#define QUIVER_SO_EE_ORIGIN_LOCAL 1
#define QUIVER_SO_EE_ORIGIN_ICMP 2
#define QUIVER_SO_EE_ORIGIN_ICMP6 3

/// `struct mmsghdr`: one message of a `sendmmsg`/`recvmmsg` batch.
struct quiver_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// `struct in6_pktinfo` (RFC 3542): the local address and interface of an IPv6 datagram.
struct quiver_in6_pktinfo {
    struct in6_addr ipi6_addr;
    unsigned int ipi6_ifindex;
};

/// `struct sock_extended_err` (linux/errqueue.h): one entry of a socket's error queue.
struct quiver_sock_extended_err {
    uint32_t ee_errno;
    uint8_t ee_origin;
    uint8_t ee_type;
    uint8_t ee_code;
    uint8_t ee_pad;
    uint32_t ee_info;
    uint32_t ee_data;
};

/// `sendmmsg(2)`: the number of messages sent, or -1 with `errno` set.
int quiver_sendmmsg(int fd, struct quiver_mmsghdr *messages, unsigned int count, int flags);
/// `recvmmsg(2)` without a timeout: the number of messages received, or -1 with `errno` set.
int quiver_recvmmsg(int fd, struct quiver_mmsghdr *messages, unsigned int count, int flags);

/// `CMSG_SPACE(length)`: bytes a control message with `length` data bytes occupies.
size_t quiver_cmsg_space(size_t length);
/// `CMSG_LEN(length)`: the `cmsg_len` of a control message with `length` data bytes.
size_t quiver_cmsg_len(size_t length);
/// `CMSG_FIRSTHDR(message)`: the first control message, or NULL.
struct cmsghdr *quiver_cmsg_firsthdr(struct msghdr *message);
/// `CMSG_NXTHDR(message, header)`: the control message after `header`, or NULL.
struct cmsghdr *quiver_cmsg_nxthdr(struct msghdr *message, struct cmsghdr *header);
/// `CMSG_DATA(header)`: the data of a control message.
unsigned char *quiver_cmsg_data(struct cmsghdr *header);

/// Attaches a classic BPF program to `fd`'s SO_REUSEPORT group (SO_ATTACH_REUSEPORT_CBPF) that
/// picks the group's socket for each datagram by QUIC connection ID: the 16-bit big-endian value
/// at `short_offset` of a short-header packet, or at `long_offset` of a long-header one (the same
/// DCID bytes), modulo `count` (the group's size) is the socket's index — the worker id a server
/// puts in its connection IDs is below `count` and keeps it. A client's first Initials carry a
/// DCID the client chose at random: they spread over the group by connection, each connection's
/// to one socket. Returns 0, or -1 with errno set.
int quiver_attach_cid_steering(int fd, unsigned int short_offset, unsigned int long_offset, unsigned int count);
int quiver_attach_dtls_cid_steering(int fd, unsigned int count);
/// Attaches the steering program of a group of `2 * count` sockets shared by two generations of
/// a server across a restart: socket *i* serves worker id *i*; generation 0 owns sockets and
/// worker ids 0..<count, generation 1 count..<2*count. Short headers go to the socket of their
/// worker id (the 16-bit value at `short_offset`, modulo `2 * count`). A long header whose worker
/// id (at `long_offset`) lies in `[old_base, old_base + count)` goes to that socket — the
/// previous generation's handshakes in progress, and the rare client-chosen DCID that falls
/// there; `old_base` 0x10000 (no previous generation) makes the range empty. Every other long
/// header — clients' first Initials above all — goes to `new_base + worker id % count`.
/// Returns 0, or -1 with errno set.
int quiver_attach_generation_steering(int fd, unsigned int short_offset, unsigned int long_offset, unsigned int count,
                                      unsigned int new_base, unsigned int old_base);
/// The size of the next datagram waiting in `fd`'s receive queue (FIONREAD), 0 when none, -1
/// with errno set.
int quiver_pending_datagram_bytes(int fd);
/// Sends `length` bytes (at least 1) with `count` descriptors attached (SCM_RIGHTS) on the unix
/// stream socket `fd`. Returns the bytes sent, or -1 with errno set.
long quiver_send_descriptors(int fd, const void *bytes, size_t length, const int *descriptors, int count);
/// Receives up to `capacity` bytes on the unix stream socket `fd` and up to `max_descriptors`
/// descriptors passed with them (SCM_RIGHTS, made close-on-exec), stored in `descriptors` and
/// counted in `*received`. Returns the bytes received (0 at end of stream), or -1 with errno set.
long quiver_receive_descriptors(int fd, void *bytes, size_t capacity, int *descriptors, int max_descriptors, int *received);
/// The user id of the process at the other end of the unix socket `fd` (SO_PEERCRED: its
/// credentials when it connected or listened), or -1 with errno set.
long quiver_peer_user_id(int fd);

#endif
