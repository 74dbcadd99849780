/* fuzz_proxyproto.c - the PROXY protocol parser (src/proxyproto.c) and
 * proxy_from ranges: any bytes give a header, a wait or a refusal with a
 * reason, never a crash, an overread or a hang; and the answer does not
 * depend on how the bytes arrive. conn.c feeds the parser what it has so
 * far, so the input is also fed in two pieces at every cut of a few
 * lengths: a wait before the cut, then the same answer on the whole. The
 * input's first line is also parsed as a proxy_from entry. Seeds: v1 and
 * v2 headers in tests/fuzz/corpus/proxyproto/. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "common.h"
#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_proxyproto: %s failed\n", #cond);                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void one(const uint8_t *data, size_t size)
{
    struct cr_pp_result r, p;
    /* a copy of exactly size bytes: ASan sees any read past them */
    uint8_t *buf = malloc(size ? size : 1);
    CHECK(buf);
    memcpy(buf, data, size);
    int rc = cr_pp_parse(buf, size, &r);
    CHECK(rc == CR_EAGAIN || rc == CR_EPROTO || (rc > 0 && (size_t)rc <= size));
    CHECK(rc != CR_EPROTO || r.error != NULL);
    CHECK(rc <= CR_PP_MAX && (rc != CR_EAGAIN || size < CR_PP_MAX));
    CHECK(r.unique_id_len <= CR_PP_ID_MAX);
    if (rc > 0) {
        CHECK(r.version == 1 || r.version == 2);
        CHECK(r.local || r.src.ss_family == AF_INET || r.src.ss_family == AF_INET6);
        CHECK(r.version == 2 || (size_t)rc <= CR_PP_V1_MAX);
        /* the header alone is the same header, and one byte less a wait */
        CHECK(cr_pp_parse(buf, (size_t)rc, &p) == rc);
        CHECK(cr_pp_parse(buf, (size_t)rc - 1, &p) == CR_EAGAIN);
    }
    if (rc == CR_EAGAIN) /* every shorter prefix waits too */
        for (size_t cut = 0; cut < size; cut += 1 + cut / 4)
            CHECK(cr_pp_parse(buf, cut, &p) == CR_EAGAIN);
    free(buf);
}

static void cidr(const uint8_t *data, size_t size)
{
    char s[80];
    size_t n = 0;
    while (n < size && n < sizeof(s) - 1 && data[n] != '\n')
        n++;
    memcpy(s, data, n);
    s[n] = '\0';
    struct cr_pp_cidr c;
    if (cr_pp_cidr_parse(s, &c) == 0) {
        CHECK(c.family == AF_INET || c.family == AF_INET6);
        CHECK(c.bits <= (c.family == AF_INET ? 32u : 128u));
        struct sockaddr_in in = {.sin_family = AF_INET};
        memcpy(&in.sin_addr, c.addr, 4);
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
        memcpy(&in6.sin6_addr, c.addr, 16);
        /* the range's own address is in it */
        CHECK(cr_pp_cidr_match(
            &c, 1, c.family == AF_INET ? (struct sockaddr *)&in : (struct sockaddr *)&in6));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    cidr(data, size);
    return 0;
}
