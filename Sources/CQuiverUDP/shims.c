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
