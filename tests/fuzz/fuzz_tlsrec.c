/* fuzz_tlsrec.c - the TLS 1.3 record reader (src/tlsrec.c,
 * cr_tlsrec_read): what a client sends after the handshake, record by
 * record, gives plaintext, a close or an error, never a crash, a leak or a
 * hang, and never plaintext that was not sent.
 *
 * A fuzzer cannot forge AEAD tags, so the input is not the bytes on the
 * wire but a program that makes them: the driver holds the client's
 * traffic secret (the reader is keyed from the same one with
 * cr_tlsrec_new_keyed) and seals records as the client would, with
 * tests/tls13seal.c: the content, inner type and padding the input says;
 * or it mixes in raw bytes and broken records. The stream goes through a
 * socketpair to cr_tlsrec_read, in reads of the input's size, and the
 * reader's KeyUpdate answers are written out at the end.
 *
 * Input: byte 0 picks the suite (bits 0-1) and the read size (bits 2-7:
 * 1 << (b % 15) bytes per call); then operations, each an opcode byte
 * followed by its operands (missing operands read as 0):
 *   op % 8 = 0, 1  application data: a length byte (times 1 + op / 8),
 *                  the bytes, padding of (op / 8) * 600 zeros (enough
 *                  to pass the 2^14 + 1 bytes of inner plaintext)
 *          2       alert: two bytes
 *          3       handshake message: a length byte, the bytes (a
 *                  KeyUpdate, whole or in pieces over several records,
 *                  moves the client's key on, as it must)
 *          4       any inner type: the type byte, a length byte, bytes
 *          5       raw bytes on the wire: a length byte, the bytes
 *          6       a sealed record with one bit flipped: position byte,
 *                  length byte, bytes
 *          7       a record header alone with the given type and length
 *                  (three bytes), then whatever follows
 * The application data sealed so far (whatever the op that made it) is
 * the only plaintext the reader may return, in order. Seeds: tests/fuzz/corpus/tlsrec/. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls13seal.h"
#include "tlsrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_tlsrec: %s failed\n", #cond);                                    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define HDR TLS13SEAL_HDR
#define TAG TLS13SEAL_TAG
#define MAX_WIRE (1u << 20) /* bytes on the wire per input */
#define MAX_RECORD 65535    /* what a record header can say */
#define MAX_CALLS 100000    /* cr_tlsrec_read calls per input */

/* The suites and their secrets' (hashes') lengths. */
static const struct {
    uint16_t id;
    size_t hashlen;
} suites[] = {{0x1301, 32}, {0x1302, 48}, {0x1303, 32}};

/* The client's side: its write key and sequence (tests/tls13seal.c), and
 * what it sent. */
struct client {
    struct tls13seal seal;
    uint8_t *wire; /* the bytes on the wire */
    size_t wlen;
    uint8_t *plain; /* the application data, in order */
    size_t plen;
    uint8_t hs[5]; /* a KeyUpdate being gathered from its pieces */
    size_t hslen;
};

static void put(struct client *cl, const uint8_t *p, size_t n)
{
    n = n < MAX_WIRE - cl->wlen ? n : MAX_WIRE - cl->wlen;
    memcpy(cl->wire + cl->wlen, p, n);
    cl->wlen += n;
}

/* Follows a record as the reader will read it (RFC 8446 5.4: the last
 * non-zero byte of the inner plaintext is the type, so a type of 0 makes
 * the content's own last non-zero byte the type): application data is
 * noted as what the reader may hand out; handshake bytes gather as the
 * reader gathers them (5.1: a message may span records), and a whole
 * KeyUpdate moves the client's key on after its record, as it must. */
static void expect(struct client *cl, const uint8_t *content, size_t len, uint8_t type)
{
    if (type == 0) {
        while (len > 0 && content[len - 1] == 0)
            len--;
        if (len == 0)
            return;
        type = content[--len];
    }
    if (type == 23 && len && cl->plen + len <= MAX_WIRE) {
        memcpy(cl->plain + cl->plen, content, len);
        cl->plen += len;
    }
    if (type != 22 || len == 0 || cl->hslen + len > sizeof(cl->hs)) {
        cl->hslen = 0; /* the reader fails here (or it was no handshake) */
        return;
    }
    memcpy(cl->hs + cl->hslen, content, len);
    cl->hslen += len;
    if (cl->hslen == sizeof(cl->hs)) {
        if (cl->hs[0] == 24 && cl->hs[1] == 0 && cl->hs[2] == 0 && cl->hs[3] == 1 && cl->hs[4] <= 1)
            CHECK(tls13seal_key_update(&cl->seal) == 0);
        cl->hslen = 0;
    }
}

/* Seals content (len bytes) of inner type with pad zeros and puts the
 * record on the wire; flip >= 0 flips that bit of the ciphertext. */
static void seal(struct client *cl, uint8_t type, const uint8_t *content, size_t len, size_t pad,
                 long flip)
{
    if (len + 1 + pad + TAG > MAX_RECORD)
        pad = MAX_RECORD - TAG - 1 - len;
    size_t size = tls13seal_size(len, pad), clen = size - HDR;
    uint8_t *rec = malloc(size);
    CHECK(rec != NULL);
    CHECK(tls13seal_record(&cl->seal, type, content, len, pad, rec) == 0);
    if (flip >= 0)
        rec[HDR + (size_t)flip % clen] ^= (uint8_t)(1u << (flip % 8));
    else
        expect(cl, content, len, type);
    put(cl, rec, size);
    free(rec);
}

/* The input as a program; see the top of the file. */
struct prog {
    const uint8_t *p;
    size_t n, off;
};

static uint8_t next_byte(struct prog *g)
{
    return g->off < g->n ? g->p[g->off++] : 0;
}

/* Up to len bytes of the input (fewer at its end); *got says how many. */
static const uint8_t *next_bytes(struct prog *g, size_t len, size_t *got)
{
    const uint8_t *p = g->p + g->off;
    *got = len < g->n - g->off ? len : g->n - g->off;
    g->off += *got;
    return p;
}

static void run_program(struct client *cl, struct prog *g)
{
    while (g->off < g->n && cl->wlen < MAX_WIRE) {
        uint8_t op = next_byte(g), t, hdr[HDR];
        size_t len, got, pos;
        const uint8_t *b;
        switch (op % 8) {
        case 0:
        case 1:
            len = (size_t)next_byte(g) * (1 + op / 8);
            b = next_bytes(g, len, &got);
            seal(cl, 23, b, got, (size_t)(op / 8) * 600, -1);
            break;
        case 2:
            b = next_bytes(g, 2, &got);
            seal(cl, 21, b, got, 0, -1);
            break;
        case 3:
            b = next_bytes(g, next_byte(g), &got);
            seal(cl, 22, b, got, 0, -1);
            break;
        case 4:
            t = next_byte(g);
            b = next_bytes(g, next_byte(g), &got);
            seal(cl, t, b, got, 0, -1);
            break;
        case 5:
            b = next_bytes(g, next_byte(g), &got);
            put(cl, b, got);
            break;
        case 6:
            pos = next_byte(g);
            b = next_bytes(g, next_byte(g), &got);
            seal(cl, 23, b, got, 0, (long)pos);
            break;
        default:
            hdr[0] = next_byte(g);
            hdr[1] = 3;
            hdr[2] = 3;
            hdr[3] = next_byte(g);
            hdr[4] = next_byte(g);
            put(cl, hdr, HDR);
        }
    }
}

/* Reads until the reader closes, fails or wants more than the socket
 * has; the plaintext must continue what was sent. Returns false once the
 * reader is done for good. */
static bool drain(struct cr_tlsrec *r, int fd, uint8_t *buf, size_t bufsize, size_t *got,
                  const struct client *cl, int *calls)
{
    while (*calls < MAX_CALLS) {
        size_t n = 0;
        (*calls)++;
        enum cr_tls_io rc = cr_tlsrec_read(r, fd, buf, bufsize, &n);
        if (rc == CR_TLS_OK) {
            CHECK(n > 0 && n <= bufsize && *got + n <= cl->plen);
            CHECK(memcmp(buf, cl->plain + *got, n) == 0);
            *got += n;
            continue;
        }
        CHECK(n == 0);
        if (rc == CR_TLS_ERROR)
            CHECK(cr_tlsrec_error(r) != NULL);
        if (rc == CR_TLS_WANT_READ && cr_tlsrec_pending(r))
            continue; /* it yielded after a run of records without data */
        return rc == CR_TLS_WANT_READ;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct client cl = {0};
    size_t si = data[0] % 3;
    size_t bufsize = (size_t)1 << ((data[0] >> 2) % 15);
    uint8_t secret[48];
    for (size_t i = 0; i < sizeof(secret); i++)
        secret[i] = (uint8_t)(0x5a ^ i * 13);
    cl.wire = malloc(MAX_WIRE);
    cl.plain = malloc(MAX_WIRE);
    uint8_t *buf = malloc(bufsize);
    CHECK(tls13seal_init(&cl.seal, suites[si].id, secret, suites[si].hashlen) == 0);
    CHECK(cl.wire && cl.plain && buf);
    struct cr_tlsrec *r;
    uint8_t server_secret[48] = {1};
    CHECK(cr_tlsrec_new_keyed(suites[si].id, secret, server_secret, suites[si].hashlen, &r) == 0);
    struct prog g = {data, size, 1};
    run_program(&cl, &g);

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    size_t sent = 0, got = 0;
    int calls = 0;
    bool reading = true;
    while (reading && sent < cl.wlen && calls < MAX_CALLS) {
        ssize_t k = send(sv[1], cl.wire + sent, cl.wlen - sent, MSG_NOSIGNAL);
        CHECK(k > 0 || (k < 0 && errno == EAGAIN));
        if (k > 0)
            sent += (size_t)k;
        reading = drain(r, sv[0], buf, bufsize, &got, &cl, &calls);
    }
    shutdown(sv[1], SHUT_WR); /* then EOF */
    if (reading)
        (void)drain(r, sv[0], buf, bufsize, &got, &cl, &calls);
    /* what the reader owes the client (a KeyUpdate answer), and a reply */
    struct evbuffer *out = evbuffer_new();
    CHECK(out != NULL);
    evbuffer_add(out, "HTTP/1.1 200 OK\r\n\r\n", 19);
    (void)cr_tlsrec_write_out(r, sv[0], out);
    cr_tlsrec_close_notify(r, sv[0]);
    evbuffer_free(out);

    close(sv[0]);
    close(sv[1]);
    cr_tlsrec_free(r);
    tls13seal_free(&cl.seal);
    free(cl.wire);
    free(cl.plain);
    free(buf);
    return 0;
}
