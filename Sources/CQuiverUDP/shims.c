#define _GNU_SOURCE
#include "CQuiverUDP.h"

#include <linux/errqueue.h>
#include <netinet/udp.h>

_Static_assert(sizeof(struct quiver_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
_Static_assert(offsetof(struct quiver_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr layout");
_Static_assert(sizeof(struct quiver_in6_pktinfo) == sizeof(struct in6_pktinfo), "in6_pktinfo layout");
_Static_assert(sizeof(struct quiver_sock_extended_err) == sizeof(struct sock_extended_err), "sock_extended_err layout");
_Static_assert(QUIVER_SOL_UDP == SOL_UDP, "SOL_UDP");
_Static_assert(QUIVER_UDP_SEGMENT == UDP_SEGMENT, "UDP_SEGMENT");
_Static_assert(QUIVER_UDP_GRO == UDP_GRO, "UDP_GRO");
_Static_assert(QUIVER_SO_EE_ORIGIN_LOCAL == SO_EE_ORIGIN_LOCAL, "SO_EE_ORIGIN_LOCAL");
_Static_assert(QUIVER_SO_EE_ORIGIN_ICMP == SO_EE_ORIGIN_ICMP, "SO_EE_ORIGIN_ICMP");
_Static_assert(QUIVER_SO_EE_ORIGIN_ICMP6 == SO_EE_ORIGIN_ICMP6, "SO_EE_ORIGIN_ICMP6");

int quiver_sendmmsg(int fd, struct quiver_mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}

int quiver_recvmmsg(int fd, struct quiver_mmsghdr *messages, unsigned int count, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, NULL);
}

size_t quiver_cmsg_space(size_t length) { return CMSG_SPACE(length); }
size_t quiver_cmsg_len(size_t length) { return CMSG_LEN(length); }
struct cmsghdr *quiver_cmsg_firsthdr(struct msghdr *message) { return CMSG_FIRSTHDR(message); }
struct cmsghdr *quiver_cmsg_nxthdr(struct msghdr *message, struct cmsghdr *header) { return CMSG_NXTHDR(message, header); }
unsigned char *quiver_cmsg_data(struct cmsghdr *header) { return CMSG_DATA(header); }

#include <linux/filter.h>

int quiver_attach_cid_steering(int fd, unsigned int short_offset, unsigned int long_offset, unsigned int count) {
    // Offsets are into the UDP payload: the kernel runs reuseport programs past the UDP header.
    // The socket index is DCID bytes 1-2 modulo the group's size: our connection IDs carry an
    // index below it (so they keep it), a client's own first DCID is random and so spreads its
    // Initials over the group - by connection, not by address, so many clients behind one
    // address and port do not all land on one socket. A datagram too short to hold the bytes
    // ends the program (socket 0).
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),                   // A = first byte
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80, 3, 0),        // long header? skip to 5
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, short_offset),        // A = worker id in the DCID
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, count),
        BPF_STMT(BPF_RET | BPF_A, 0),
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, long_offset),         // the same DCID bytes of a long header
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, count),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog program = { .len = sizeof code / sizeof code[0], .filter = code };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program);
}

int quiver_attach_dtls_cid_steering(int fd, unsigned int count) {
    // DTLS records with a Connection ID go to the socket whose index is CID bytes 1-2 modulo
    // the group's size: a DTLS 1.2 tls12_cid record (first byte 25; the CID at offset 11, RFC
    // 9146) or a DTLS 1.3 unified header with the C bit (first bits 0011; the CID at offset 1,
    // RFC 9147). Any other datagram (handshakes, records without an ID) gets an index past the
    // group, which makes the kernel fall back to its 4-tuple hash.
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),                   // A = first byte
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 25, 0, 3),           // tls12_cid? else skip to 5
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                  // A = CID bytes 1-2
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, count),
        BPF_STMT(BPF_RET | BPF_A, 0),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xF0),               // 5
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x30, 0, 3),         // unified header with C? else skip to 10
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 2),                   // A = CID bytes 1-2
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, count),
        BPF_STMT(BPF_RET | BPF_A, 0),
        BPF_STMT(BPF_RET | BPF_K, 0xFFFFFFFF),                   // 10: the kernel's hash
    };
    struct sock_fprog program = { .len = sizeof code / sizeof code[0], .filter = code };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program);
}

int quiver_attach_generation_steering(int fd, unsigned int short_offset, unsigned int long_offset, unsigned int count,
                                      unsigned int new_base, unsigned int old_base) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),                   // A = first byte
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80, 3, 0),        // long header? skip to 5
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, short_offset),        // A = worker id in the DCID
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 2 * count),          // both generations' sockets
        BPF_STMT(BPF_RET | BPF_A, 0),
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, long_offset),         // 5: the same DCID bytes of a long header
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, old_base, 0, 2),     // below the old range? skip to 9
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, old_base + count, 1, 0), // past it? skip to 9
        BPF_STMT(BPF_RET | BPF_A, 0),                            // the old generation's worker
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, count),              // 9: a worker of the new generation
        BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, new_base),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog program = { .len = sizeof code / sizeof code[0], .filter = code };
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program);
}

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int quiver_pending_datagram_bytes(int fd) {
    int bytes = 0;
    return ioctl(fd, FIONREAD, &bytes) == 0 ? bytes : -1;
}

#define QUIVER_MAX_PASSED_DESCRIPTORS 64

long quiver_send_descriptors(int fd, const void *bytes, size_t length, const int *descriptors, int count) {
    if (count < 0 || count > QUIVER_MAX_PASSED_DESCRIPTORS || length == 0) { errno = EINVAL; return -1; }
    char control[CMSG_SPACE(sizeof(int) * QUIVER_MAX_PASSED_DESCRIPTORS)];
    memset(control, 0, sizeof control);
    struct iovec vector = { .iov_base = (void *)bytes, .iov_len = length };
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1 };
    if (count > 0) {
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(header), descriptors, sizeof(int) * count);
    }
    long sent;
    do { sent = sendmsg(fd, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return sent;
}

long quiver_receive_descriptors(int fd, void *bytes, size_t capacity, int *descriptors, int max_descriptors, int *received) {
    *received = 0;
    if (max_descriptors < 0 || max_descriptors > QUIVER_MAX_PASSED_DESCRIPTORS) { errno = EINVAL; return -1; }
    char control[CMSG_SPACE(sizeof(int) * QUIVER_MAX_PASSED_DESCRIPTORS)];
    struct iovec vector = { .iov_base = bytes, .iov_len = capacity };
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    long length;
    do { length = recvmsg(fd, &message, MSG_CMSG_CLOEXEC); } while (length < 0 && errno == EINTR);
    if (length < 0) return -1;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *passed = (int *)CMSG_DATA(header);
        for (int i = 0; i < count; i++) {
            if (*received < max_descriptors) descriptors[(*received)++] = passed[i];
            else close(passed[i]);   // more than asked for: not ours to keep
        }
    }
    return length;
}

long quiver_peer_user_id(int fd) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    return (long)credentials.uid;
}
