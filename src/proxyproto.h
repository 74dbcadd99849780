/* proxyproto.h - the PROXY protocol (HAProxy's, versions 1 and 2) that an
 * L4 load balancer in front of corral sends before the client's first byte,
 * naming the client's real address; and the source-address lists
 * (listeners[].proxy_from) that say who may send it.
 *
 * Pure: no I/O, no clock, no allocation. conn.c reads the header from the
 * socket before TLS (only bytes this parser says belong to the header, so
 * the ClientHello stays in the socket for OpenSSL) and refuses the
 * connection when it is malformed, too long, or slow.
 *
 * Accepted:
 *   v1  "PROXY TCP4 SRC DST SPORT DPORT\r\n", TCP6 likewise, and
 *       "PROXY UNKNOWN...\r\n" (the socket's address is kept); at most
 *       CR_PP_V1_MAX bytes with the CRLF.
 *   v2  the 12-byte signature, version 2, command LOCAL (the balancer's
 *       own health check: the socket's address is kept) or PROXY; family
 *       INET or INET6 over STREAM (UNSPEC and UNIX keep the socket's
 *       address); then TLVs, of which PP2_TYPE_UNIQUE_ID (the balancer's
 *       id of the connection, at most 128 bytes) is kept. The whole header
 *       is at most CR_PP_V2_MAX bytes (16 + its length). */
#ifndef CR_PROXYPROTO_H
#define CR_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CR_PP_V1_MAX 107  /* the spec's bound, CRLF included */
#define CR_PP_V2_MAX 1024 /* 16-byte fixed part + addresses + TLVs */
#define CR_PP_MAX CR_PP_V2_MAX
#define CR_PP_ID_MAX 128  /* PP2_TYPE_UNIQUE_ID, the spec's bound */
#define CR_PP_MAX_FROM 32 /* entries of a proxy_from list */

/* What a whole header said. */
struct cr_pp_result {
    int version;                 /* 1 or 2 */
    bool local;                  /* LOCAL, UNKNOWN, UNSPEC or UNIX: keep the
                                  * socket's own address; src is unset */
    struct sockaddr_storage src; /* the client (AF_INET or AF_INET6) */
    socklen_t srclen;
    uint8_t unique_id[CR_PP_ID_MAX]; /* v2 PP2_TYPE_UNIQUE_ID */
    size_t unique_id_len;            /* 0: none */
    const char *error;               /* after CR_EPROTO: why, a static string */
};

/* Parses the header at the start of buf[0..len). Returns:
 *   > 0        the header is whole and valid, and that long (bytes after it
 *              are the client's); *out is filled in;
 *   CR_EAGAIN  buf is the start of a header that may still be valid: every
 *              byte of buf belongs to it, more are needed;
 *   CR_EPROTO  not a valid header (a bad signature or version, a wrong
 *              family or length, a v1 line without CRLF, over the bound):
 *              out->error says which.
 * out is written in every case. */
int cr_pp_parse(const uint8_t *buf, size_t len, struct cr_pp_result *out);

/* An address range of proxy_from: "10.0.0.0/8", "2001:db8::/32", or an
 * address alone (all its bits). */
struct cr_pp_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned bits;
};

/* Parses s into *out. Returns 0, or CR_EINVAL when s is not an address with
 * an optional /BITS within its family's length (host bits set past the
 * prefix are refused too: "10.1.0.0/8" is a typo, not a range). */
int cr_pp_cidr_parse(const char *s, struct cr_pp_cidr *out);

/* Whether sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as
 * its IPv4 address) is in one of the n ranges. */
bool cr_pp_cidr_match(const struct cr_pp_cidr *ranges, size_t n, const struct sockaddr *sa);

#endif
