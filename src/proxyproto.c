/* proxyproto.c - PROXY protocol v1/v2 headers and proxy_from ranges. */
#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const uint8_t v2sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char v1sig[] = "PROXY ";

#define PP2_TYPE_UNIQUE_ID 0x05

static int fail(struct cr_pp_result *out, const char *why)
{
    out->error = why;
    return CR_EPROTO;
}

/* A decimal port, 0..65535, 1 to 5 digits. */
static bool port_of(const char *s, uint16_t *port)
{
    size_t n = strlen(s);
    unsigned long v = 0;
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

static void set_src(struct cr_pp_result *out, int family, const void *addr, const void *port_be)
{
    memset(&out->src, 0, sizeof(out->src));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&out->src;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, addr, 4);
        memcpy(&in->sin_port, port_be, 2);
        out->srclen = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->src;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, addr, 16);
        memcpy(&in6->sin6_port, port_be, 2);
        out->srclen = sizeof(*in6);
    }
}

/* "PROXY TCP4 SRC DST SPORT DPORT" (line without its CRLF, NUL-ended). */
static int v1_line(char *line, size_t hlen, struct cr_pp_result *out)
{
    char *f[7];
    size_t n = 0;
    for (char *p = line, *tok; n < 7 && (tok = strsep(&p, " ")) != NULL;)
        f[n++] = tok;
    if (n >= 2 && strcmp(f[1], "UNKNOWN") == 0) {
        out->local = true;
        return (int)hlen;
    }
    if (n != 6)
        return fail(out, "v1: not PROXY TCP4|TCP6 SRC DST SPORT DPORT");
    int family = strcmp(f[1], "TCP4") == 0 ? AF_INET : strcmp(f[1], "TCP6") == 0 ? AF_INET6 : 0;
    if (!family)
        return fail(out, "v1: unknown protocol (TCP4, TCP6 or UNKNOWN)");
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    if (inet_pton(family, f[2], src) != 1 || inet_pton(family, f[3], dst) != 1)
        return fail(out, "v1: an address is not of the family named");
    if (!port_of(f[4], &sport) || !port_of(f[5], &dport))
        return fail(out, "v1: bad port");
    uint16_t be = htons(sport);
    (void)dport;
    set_src(out, family, src, &be);
    return (int)hlen;
}

static int parse_v1(const uint8_t *buf, size_t len, struct cr_pp_result *out)
{
    out->version = 1;
    size_t k = CR_MIN(len, sizeof(v1sig) - 1);
    if (memcmp(buf, v1sig, k) != 0)
        return fail(out, "v1: bad signature");
    size_t scan = CR_MIN(len, (size_t)CR_PP_V1_MAX);
    const uint8_t *lf = memchr(buf, '\n', scan);
    if (!lf) {
        if (len >= CR_PP_V1_MAX)
            return fail(out, "v1: longer than 107 bytes");
        return CR_EAGAIN;
    }
    size_t hlen = (size_t)(lf - buf) + 1;
    if (hlen < 2 || buf[hlen - 2] != '\r')
        return fail(out, "v1: line not ended by CRLF");
    char line[CR_PP_V1_MAX + 1];
    memcpy(line, buf, hlen - 2);
    line[hlen - 2] = '\0';
    if (memchr(line, '\0', hlen - 2) != NULL || memchr(line, '\r', hlen - 2) != NULL)
        return fail(out, "v1: control bytes in the line");
    return v1_line(line, hlen, out);
}

static int v2_tlvs(const uint8_t *p, size_t n, struct cr_pp_result *out)
{
    while (n > 0) {
        if (n < 3)
            return fail(out, "v2: truncated TLV");
        size_t tl = ((size_t)p[1] << 8) | p[2];
        if (tl > n - 3)
            return fail(out, "v2: TLV longer than the header");
        if (p[0] == PP2_TYPE_UNIQUE_ID) {
            if (tl > CR_PP_ID_MAX)
                return fail(out, "v2: UNIQUE_ID longer than 128 bytes");
            memcpy(out->unique_id, p + 3, tl);
            out->unique_id_len = tl;
        }
        p += 3 + tl;
        n -= 3 + tl;
    }
    return 0;
}

static int parse_v2(const uint8_t *buf, size_t len, struct cr_pp_result *out)
{
    out->version = 2;
    if (memcmp(buf, v2sig, CR_MIN(len, sizeof(v2sig))) != 0)
        return fail(out, "v2: bad signature");
    if (len >= 13 && (buf[12] >> 4) != 2)
        return fail(out, "v2: version is not 2");
    if (len >= 13 && (buf[12] & 0xF) > 1)
        return fail(out, "v2: command is neither LOCAL nor PROXY");
    if (len < 16)
        return CR_EAGAIN;
    size_t body = ((size_t)buf[14] << 8) | buf[15], hlen = 16 + body;
    if (hlen > CR_PP_V2_MAX)
        return fail(out, "v2: header over 1024 bytes");
    if (len < hlen)
        return CR_EAGAIN;
    int cmd = buf[12] & 0xF, fam = buf[13] >> 4, proto = buf[13] & 0xF;
    size_t alen = fam == 1 ? 12 : fam == 2 ? 36 : fam == 3 ? 216 : 0;
    if (fam > 3 || proto > 2)
        return fail(out, "v2: unknown address family or protocol");
    if (body < alen)
        return fail(out, "v2: length shorter than its addresses");
    if (v2_tlvs(buf + 16 + alen, body - alen, out) < 0)
        return CR_EPROTO;
    if (cmd == 0 || fam == 0 || fam == 3) { /* LOCAL: the balancer itself */
        out->local = true;
        return (int)hlen;
    }
    if (proto != 1)
        return fail(out, "v2: PROXY over a protocol other than STREAM");
    const uint8_t *a = buf + 16;
    if (fam == 1)
        set_src(out, AF_INET, a, a + 8);
    else
        set_src(out, AF_INET6, a, a + 32);
    return (int)hlen;
}

int cr_pp_parse(const uint8_t *buf, size_t len, struct cr_pp_result *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return CR_EAGAIN;
    if (buf[0] == 'P')
        return parse_v1(buf, len, out);
    if (buf[0] == 0x0D)
        return parse_v2(buf, len, out);
    return fail(out, "no PROXY protocol signature");
}

int cr_pp_cidr_parse(const char *s, struct cr_pp_cidr *out)
{
    char text[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= INET6_ADDRSTRLEN)
        return CR_EINVAL;
    memcpy(text, s, alen);
    text[alen] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, text, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, text, out->addr) == 1)
        out->family = AF_INET6;
    else
        return CR_EINVAL;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash) {
        const char *b = slash + 1;
        unsigned v = 0;
        size_t nd = strlen(b);
        if (nd == 0 || nd > 3)
            return CR_EINVAL;
        for (size_t i = 0; i < nd; i++) {
            if (b[i] < '0' || b[i] > '9')
                return CR_EINVAL;
            v = v * 10 + (unsigned)(b[i] - '0');
        }
        if (v > max)
            return CR_EINVAL;
        out->bits = v;
    }
    for (unsigned i = out->bits; i < max; i++) /* host bits must be zero */
        if (out->addr[i / 8] & (0x80 >> (i % 8)))
            return CR_EINVAL;
    return 0;
}

static bool in_range(const struct cr_pp_cidr *r, int family, const uint8_t *addr)
{
    if (r->family != family)
        return false;
    unsigned full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(r->addr, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFF << (8 - rest));
    return (r->addr[full] & mask) == (addr[full] & mask);
}

bool cr_pp_cidr_match(const struct cr_pp_cidr *ranges, size_t n, const struct sockaddr *sa)
{
    int family;
    const uint8_t *addr;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        family = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
        addr = family == AF_INET ? a6->s6_addr + 12 : a6->s6_addr;
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (in_range(&ranges[i], family, addr))
            return true;
    return false;
}
