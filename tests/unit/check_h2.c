/* check_h2.c - the HTTP/2 front end against hostile clients, fed from
 * memory (fixture.h) with frames built byte by byte: what a connection
 * costs to free, how header blocks are held to max_header_size, and the
 * per-connection budgets of RST_STREAM, PING, SETTINGS, empty, PRIORITY
 * and WINDOW_UPDATE frames (GOAWAY ENHANCE_YOUR_CALM when one is crossed),
 * what a client that does not read may hold of the upstream
 * (h2_max_stalled_streams), and how long a request body or a header block
 * may keep a stream or the connection waiting (body_timeout,
 * header_timeout). Normal traffic below the budgets is answered as
 * before. The timers of the fixture's loop never fire: a test that needs
 * one waits past its deadline and calls the connection's on_timer. */
#include "ac_config.h"

#include <check.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "fixture.h"
#include "h2.h"
#include "gate.h"
#include "request.h"

/* ------------------------------------------------------------ fixtures */

static struct fx_world X;
static struct cr_conn *C;
static int nsubmit;
static struct cr_request *last;
static struct cr_request *subs[64]; /* the first ones submitted, in order */

/* The submit callback of most tests: counts, answers nothing. */
static void sink(struct cr_request *r)
{
    if (nsubmit < (int)CR_ARRAY_LEN(subs))
        subs[nsubmit] = r;
    nsubmit++;
    last = r;
}

/* The default budgets (config.c), which the floods below exceed tenfold. */
#define MAX_RESETS 100
#define MAX_PINGS 20
#define MAX_SETTINGS 10
#define MAX_EMPTY 50
#define MAX_CONTROL 1000 /* PRIORITY and WINDOW_UPDATE */

/* Waits ms milliseconds: a timeout under test must have passed. */
static void pass_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The connection's timer fires (the fixture's loop never runs). */
static void fire_timer(void)
{
    C->proto->on_timer(C);
}

static void world(const char *http_yaml)
{
    static char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%s%s", fx_default_yaml, http_yaml ? http_yaml : "");
    fx_world_init(&X, yaml);
    C = fx_conn_new(&X, "198.51.100.9");
    nsubmit = 0;
    last = NULL;
}

static void setup(void)
{
    world(NULL);
}

static void teardown(void)
{
    if (C)
        fx_conn_free(C);
    C = NULL;
    fx_world_free(&X);
}

/* ------------------------------------------------------------ raw frames */

enum { F_DATA = 0, F_HEADERS = 1, F_PRIORITY = 2, F_RST = 3, F_SETTINGS = 4, F_PING = 6,
       F_GOAWAY = 7, F_WINDOW = 8, F_CONT = 9 };
enum { FL_END_STREAM = 1, FL_ACK = 1, FL_END_HEADERS = 4 };

/* What a client writes, frame by frame. */
static struct evbuffer *wire;
static nghttp2_hd_deflater *deflater;

static void frame(int type, int flags, int32_t sid, const void *payload, size_t len)
{
    uint8_t hd[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, (uint8_t)type,
                     (uint8_t)flags, (uint8_t)((uint32_t)sid >> 24) & 0x7f,
                     (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
    evbuffer_add(wire, hd, sizeof(hd));
    if (len)
        evbuffer_add(wire, payload, len);
}

static void preface(void)
{
    wire = evbuffer_new();
    ck_assert_ptr_nonnull(wire);
    ck_assert_int_eq(nghttp2_hd_deflate_new(&deflater, 4096), 0);
    evbuffer_add(wire, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
    frame(F_SETTINGS, 0, 0, NULL, 0);
}

/* A GET head on sid, HPACK-encoded into block (returns its length). */
static size_t get_block(uint8_t *block, size_t cap, const char *path)
{
#define NV(k, v) {(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":method", "GET"), NV(":scheme", "https"),
                        NV(":authority", "api.example.com"), NV(":path", path),
                        NV("x-tenant-id", "gold")};
#undef NV
    ssize_t n = nghttp2_hd_deflate_hd(deflater, block, cap, nva, CR_ARRAY_LEN(nva));
    ck_assert_int_gt(n, 0);
    return (size_t)n;
}

static void get(int32_t sid, bool end_stream)
{
    uint8_t block[512];
    size_t n = get_block(block, sizeof(block), "/v1/items");
    frame(F_HEADERS, FL_END_HEADERS | (end_stream ? FL_END_STREAM : 0), sid, block, n);
}

static void rst(int32_t sid)
{
    uint8_t code[4] = {0, 0, 0, NGHTTP2_CANCEL};
    frame(F_RST, 0, sid, code, 4);
}

static void ping(void)
{
    frame(F_PING, 0, 0, "12345678", 8);
}

/* Feeds the wire to corral in chunks of a read (16 KB), as the connection
 * would, until corral refuses more. Returns what on_data returned last. */
static int deliver(void)
{
    int rc = 0;
    while (evbuffer_get_length(wire) && rc == 0 && C->state == CR_CONN_OPEN && !C->read_paused) {
        size_t n = CR_MIN(evbuffer_get_length(wire), (size_t)16384);
        rc = C->proto->on_data(C, evbuffer_pullup(wire, (ssize_t)n), n);
        evbuffer_drain(wire, n);
    }
    return rc;
}

/* What corral sent, frame by frame. */
struct seen {
    int goaways, goaway_code;
    int rsts, ping_acks, settings_acks, headers;
    int status[8];   /* :status of the first response HEADERS, by stream id / 2 % 8 */
    int data, data_end, headers_end; /* DATA frames, those ending a stream, HEADERS likewise */
    char grpc[8][3][32]; /* grpc-status, grpc-message, grpc-retry-pushback-ms, by stream */
    bool grpc_in_end;    /* the last HEADERS that had them ended its stream */
    int rst_code[8]; /* the code of its RST_STREAM, -1 when none, likewise */
};

static void read_frames(struct seen *s)
{
    struct evbuffer *b = evbuffer_new();
    nghttp2_hd_inflater *inf;
    ck_assert_int_eq(nghttp2_hd_inflate_new(&inf), 0);
    memset(s, 0, sizeof(*s));
    s->goaway_code = -1;
    for (int i = 0; i < 8; i++)
        s->rst_code[i] = -1;
    fx_conn_take(C, b);
    size_t len = evbuffer_get_length(b);
    const uint8_t *p = evbuffer_pullup(b, -1);
    for (size_t off = 0; off + 9 <= len;) {
        size_t flen = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
        int type = p[off + 3], flags = p[off + 4];
        int32_t sid = (int32_t)((uint32_t)(p[off + 5] & 0x7f) << 24 | (uint32_t)p[off + 6] << 16 |
                                (uint32_t)p[off + 7] << 8 | p[off + 8]);
        const uint8_t *pl = p + off + 9;
        ck_assert_uint_le(off + 9 + flen, len);
        if (type == F_GOAWAY) {
            s->goaways++;
            s->goaway_code = (int)((uint32_t)pl[4] << 24 | (uint32_t)pl[5] << 16 |
                                   (uint32_t)pl[6] << 8 | pl[7]);
        } else if (type == F_RST) {
            s->rsts++;
            s->rst_code[(sid / 2) % 8] = (int)((uint32_t)pl[0] << 24 | (uint32_t)pl[1] << 16 |
                                               (uint32_t)pl[2] << 8 | pl[3]);
        } else if (type == F_PING && (flags & FL_ACK)) {
            s->ping_acks++;
        } else if (type == F_SETTINGS && (flags & FL_ACK)) {
            s->settings_acks++;
        } else if (type == F_DATA) {
            s->data++;
            s->data_end += (flags & FL_END_STREAM) != 0;
        } else if (type == F_HEADERS) {
            ck_assert(flags & FL_END_HEADERS); /* corral's answers fit a frame */
            s->headers++;
            s->headers_end += (flags & FL_END_STREAM) != 0;
            const uint8_t *in = pl;
            size_t left = flen;
            for (;;) {
                nghttp2_nv nv;
                int iflags = 0;
                ssize_t used = nghttp2_hd_inflate_hd2(inf, &nv, &iflags, in, left, 1);
                ck_assert_int_ge(used, 0);
                in += used, left -= (size_t)used;
                if ((iflags & NGHTTP2_HD_INFLATE_EMIT) && nv.namelen == 7 &&
                    memcmp(nv.name, ":status", 7) == 0)
                    s->status[(sid / 2) % 8] = atoi((const char *)nv.value);
                static const char *const gn[] = {"grpc-status", "grpc-message",
                                                 "grpc-retry-pushback-ms"};
                for (int g = 0; g < 3; g++)
                    if ((iflags & NGHTTP2_HD_INFLATE_EMIT) && nv.namelen == strlen(gn[g]) &&
                        memcmp(nv.name, gn[g], nv.namelen) == 0) {
                        snprintf(s->grpc[(sid / 2) % 8][g], sizeof(s->grpc[0][g]), "%.*s",
                                 (int)nv.valuelen, (const char *)nv.value);
                        s->grpc_in_end = (flags & FL_END_STREAM) != 0;
                    }
                if (iflags & NGHTTP2_HD_INFLATE_FINAL) {
                    nghttp2_hd_inflate_end_headers(inf);
                    break;
                }
                if (used == 0 && left == 0)
                    break;
            }
        }
        off += 9 + flen;
    }
    nghttp2_hd_inflate_del(inf);
    evbuffer_free(b);
}

static void raw_done(void)
{
    nghttp2_hd_deflate_del(deflater);
    evbuffer_free(wire);
}

/* ------------------------------------------------------------ item 3: freeing */

/* The highest stream id there is, left open, then the connection goes: the
 * front end must find its requests without walking every odd id below
 * (2^30 lookups, ~10 s of a frozen worker). The test's time limit (2 s,
 * see the suite) is the bound. The requests wait in the pool's queue (no
 * upstream is up) and leave it when the connection is freed. */
START_TEST(free_after_highest_stream_id_is_prompt)
{
    ck_assert_int_eq(cr_h2_attach(C, cr_request_submit), 0);
    preface();
    get(1, true);
    get(0x7fffffff, true);
    ck_assert_int_eq(deliver(), 0);
    ck_assert(!cr_gate_idle(X.w.gate)); /* both wait in the gate's queue */
    fx_conn_free(C);
    C = NULL;
    ck_assert(cr_gate_idle(X.w.gate)); /* and both left it */
    raw_done();
}
END_TEST

/* ------------------------------------------------------------ item 9: header blocks */

static struct fx_h2c *phone;

/* One round trip of phone ph on connection c: what it queued goes to
 * corral, what corral queued goes back to it. */
static void exchange(struct cr_conn *c, struct fx_h2c *ph)
{
    struct evbuffer *b = evbuffer_new();
    fx_h2c_send(ph, b);
    size_t n = evbuffer_get_length(b);
    if (n)
        ck_assert_int_eq(c->proto->on_data(c, evbuffer_pullup(b, -1), n), 0);
    evbuffer_drain(b, n);
    fx_conn_take(c, b);
    n = evbuffer_get_length(b);
    ck_assert_int_eq(fx_h2c_recv(ph, evbuffer_pullup(b, -1), n), 0);
    evbuffer_free(b);
}

static void phone_exchange(void)
{
    exchange(C, phone);
}

/* A pseudo-header is part of the header list too: an :authority twice
 * max_header_size is refused with 431 before it is copied, and never
 * reaches submit. */
START_TEST(authority_counts_toward_header_list_size)
{
    static char big[32 * 1024];
    memset(big, 'a', sizeof(big) - 1);
    const char *const req[] = {":method", "GET", ":scheme", "https", ":authority", big,
                               ":path",   "/",   NULL};
    phone = fx_h2c_new();
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    int32_t sid = fx_h2c_request(phone, req);
    phone_exchange();
    ck_assert_int_eq(nsubmit, 0);
    ck_assert_int_eq(fx_h2c_status(phone, sid), 431);
    fx_h2c_free(phone);
}
END_TEST

/* RFC 9113 6.5.2: a header list's size counts each field as name + value
 * + 32. 40 short fields are ~300 bytes of names and values but ~1.6 KB of
 * list, over a 1 KB max_header_size; 20 of them are under it. */
START_TEST(header_list_size_counts_32_per_field)
{
    teardown();
    world("http:\n  max_header_size: 1k\n  max_headers: 1000\n");
    static char names[40][8];
    const char *req[2 * (4 + 40) + 1] = {":method", "GET", ":scheme", "https",
                                         ":authority", "a", ":path", "/"};
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "x-h%02d", i);
        req[8 + 2 * i] = names[i];
        req[8 + 2 * i + 1] = "v";
    }
    phone = fx_h2c_new();
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    int32_t big = fx_h2c_request(phone, req);
    req[8 + 2 * 20] = NULL; /* 20 fields: 4 x ~40 + 20 x 38 = ~900 bytes */
    int32_t small = fx_h2c_request(phone, req);
    phone_exchange();
    ck_assert_int_eq(fx_h2c_status(phone, big), 431);
    ck_assert_int_eq(nsubmit, 1);
    ck_assert_int_eq(last->fe_stream, small);
    fx_h2c_free(phone);
}
END_TEST

/* HPACK amplification: one 4000-byte value in the dynamic table, then
 * thousands of one-byte references to it (16 MB of header list from 16 KB
 * on the wire). The stream gets 431, nothing reaches submit, and the
 * connection goes on: the next request is served. */
START_TEST(indexed_references_answered_431)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    static uint8_t block[16000];
    size_t n = get_block(block, sizeof(block), "/");
    static char v[4000];
    memset(v, 'v', sizeof(v));
    nghttp2_nv big = {(uint8_t *)"x-big", (uint8_t *)v, 5, sizeof(v), NGHTTP2_NV_FLAG_NONE};
    ssize_t m = nghttp2_hd_deflate_hd(deflater, block + n, sizeof(block) - n, &big, 1);
    ck_assert_int_gt(m, 0);
    n += (size_t)m;
    /* the newest dynamic entry is index 62: 0x80 | 62 */
    memset(block + n, 0x80 | 62, sizeof(block) - n);
    frame(F_HEADERS, FL_END_HEADERS | FL_END_STREAM, 1, block, sizeof(block));
    /* the deflater has not seen those references, but it does not need to:
     * they add nothing to the dynamic table */
    get(3, true);
    ck_assert_int_eq(deliver(), 0);
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.status[0], 431);
    ck_assert_int_eq(nsubmit, 1);
    ck_assert_int_eq(last->fe_stream, 3);
    ck_assert_int_eq(s.goaways, 0);
    raw_done();
}
END_TEST

/* A header block that never ends (CONTINUATION after CONTINUATION, each
 * full) is cut off once it is past what any acceptable block could be,
 * with GOAWAY ENHANCE_YOUR_CALM. */
START_TEST(endless_continuation_gets_goaway)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    uint8_t block[512];
    size_t n = get_block(block, sizeof(block), "/");
    frame(F_HEADERS, 0, 1, block, n);
    /* literal fields "x: xxx...", never indexed: 6 bytes of prefix and
     * 998 of value, 16 to a frame */
    enum { FIELD = 1004, PER_FRAME = 16384 / FIELD };
    static uint8_t lit[PER_FRAME * FIELD];
    for (size_t off = 0; off < sizeof(lit); off += FIELD) {
        lit[off] = 0x10;     /* literal never indexed, new name */
        lit[off + 1] = 1;    /* name length */
        lit[off + 2] = 'x';
        lit[off + 3] = 0x7f; /* value length 998 = 127 + 871: 0x7f, 0xe7, 0x06 */
        lit[off + 4] = 0xe7;
        lit[off + 5] = 0x06;
        memset(lit + off + 6, 'x', FIELD - 6);
    }
    for (int i = 0; i < 64; i++) /* 1 MB */
        frame(F_CONT, 0, 1, lit, sizeof(lit));
    deliver();
    ck_assert_uint_gt(evbuffer_get_length(wire), 0); /* cut off before the end */
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.goaways, 1);
    ck_assert_int_eq(s.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    ck_assert_int_eq(nsubmit, 0);
    raw_done();
}
END_TEST

/* ------------------------------------------------------------ item 18: floods */

/* The connection said GOAWAY ENHANCE_YOUR_CALM, stopped reading, and is
 * closing once that is written. */
static void assert_calmed(const struct seen *s)
{
    ck_assert_int_eq(s->goaways, 1);
    ck_assert_int_eq(s->goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    ck_assert(C->read_paused);
    ck_assert_int_ne(C->state, CR_CONN_OPEN);
}

START_TEST(ping_flood_gets_goaway)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    for (int i = 0; i < 1000; i++)
        ping();
    deliver();
    struct seen s;
    read_frames(&s);
    assert_calmed(&s);
    ck_assert_int_le(s.ping_acks, MAX_PINGS); /* the budget, not the flood, was answered */
    raw_done();
}
END_TEST

START_TEST(settings_flood_gets_goaway)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    for (int i = 0; i < 1000; i++)
        frame(F_SETTINGS, 0, 0, NULL, 0);
    deliver();
    struct seen s;
    read_frames(&s);
    assert_calmed(&s);
    ck_assert_int_le(s.settings_acks, MAX_SETTINGS);
    raw_done();
}
END_TEST

/* CVE-2023-44487: each stream opened and reset at once costs the server a
 * request and the client nothing. */
START_TEST(rapid_reset_gets_goaway)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    for (int32_t sid = 1; sid < 2 * 1000; sid += 2) {
        get(sid, true);
        rst(sid);
    }
    deliver();
    struct seen s;
    read_frames(&s);
    assert_calmed(&s);
    ck_assert_int_le(nsubmit, MAX_RESETS + 1);
    raw_done();
}
END_TEST

START_TEST(empty_data_flood_gets_goaway)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    get(1, false); /* a POST-like stream whose body never comes */
    for (int i = 0; i < 1000; i++)
        frame(F_DATA, 0, 1, NULL, 0);
    deliver();
    struct seen s;
    read_frames(&s);
    assert_calmed(&s);
    raw_done();
}
END_TEST

START_TEST(empty_continuation_flood_gets_goaway)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    uint8_t block[512];
    size_t n = get_block(block, sizeof(block), "/");
    frame(F_HEADERS, 0, 1, block, n);
    for (int i = 0; i < 1000; i++)
        frame(F_CONT, 0, 1, NULL, 0);
    deliver();
    struct seen s;
    read_frames(&s);
    assert_calmed(&s);
    ck_assert_int_eq(nsubmit, 0);
    raw_done();
}
END_TEST

/* Below every budget: a few PINGs, a SETTINGS, streams opened and reset,
 * empty DATA ending a body; requests answered, no GOAWAY. */
START_TEST(traffic_below_budgets_is_served)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    for (int i = 0; i < 5; i++)
        ping();
    frame(F_SETTINGS, 0, 0, NULL, 0);
    for (int32_t sid = 1; sid <= 19; sid += 2) { /* 10 opened and reset */
        get(sid, true);
        rst(sid);
    }
    get(21, false);
    for (int i = 0; i < 5; i++)
        frame(F_DATA, 0, 21, NULL, 0);
    frame(F_DATA, FL_END_STREAM, 21, NULL, 0);
    ck_assert_int_eq(deliver(), 0);
    ck_assert_int_eq(nsubmit, 11);
    ck_assert_int_eq(last->fe_stream, 21);
    cr_request_respond(last, 200, "ok", NULL);
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.goaways, 0);
    ck_assert_int_eq(s.ping_acks, 5);
    ck_assert_int_eq(s.status[(21 / 2) % 8], 200);
    ck_assert_int_eq(C->state, CR_CONN_OPEN);
    raw_done();
}
END_TEST

/* The budgets are the operator's: with h2_max_pings 3, the fourth PING
 * is one too many. */
START_TEST(budgets_follow_the_config)
{
    teardown();
    world("http:\n  h2_max_pings: 3\n");
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    for (int i = 0; i < 3; i++)
        ping();
    ck_assert_int_eq(deliver(), 0);
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.goaways, 0);
    ck_assert_int_eq(s.ping_acks, 3);
    ping();
    deliver();
    read_frames(&s);
    assert_calmed(&s);
    ck_assert_int_eq(s.ping_acks, 0);
    raw_done();
}
END_TEST

/* ------------------------------------------------------------ item 6: clients not reading */

#define MAX_STALLED 16 /* the default h2_max_stalled_streams (config.c) */

static const char *const big_get[] = {":method",     "GET",
                                      ":scheme",     "https",
                                      ":authority",  "api.example.com", /* */
                                      ":path",       "/bytes/4000000",
                                      "x-tenant-id", "gold",
                                      NULL};

/* A client whose SETTINGS_INITIAL_WINDOW_SIZE is 0 asks for 40 large
 * responses and never opens a window: every one of its streams is stalled
 * from the start, so the first MAX_STALLED are submitted and the rest are
 * refused with REFUSED_STREAM (safe to retry: RFC 9113 8.7) before they
 * cost admission anything. A normal client on another connection of the
 * same worker is not touched by it. */
START_TEST(zero_window_client_holds_at_most_the_bound)
{
    phone = fx_h2c_new_window(0);
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    int32_t sids[40];
    for (int i = 0; i < 40; i++)
        sids[i] = fx_h2c_request(phone, big_get);
    phone_exchange();
    ck_assert_int_eq(nsubmit, MAX_STALLED);
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(fx_h2c_reset_code(phone, sids[i]),
                         i < MAX_STALLED ? -1 : NGHTTP2_REFUSED_STREAM);
    ck_assert_uint_eq(fx_h2c_resets(phone), 40 - MAX_STALLED);
    ck_assert_int_eq(C->state, CR_CONN_OPEN); /* the connection goes on */

    struct cr_conn *c2 = fx_conn_new(&X, "203.0.113.7");
    struct fx_h2c *normal = fx_h2c_new();
    ck_assert_int_eq(cr_h2_attach(c2, sink), 0);
    for (int i = 0; i < 40; i++)
        fx_h2c_request(normal, big_get);
    exchange(c2, normal);
    ck_assert_int_eq(nsubmit, MAX_STALLED + 40);
    ck_assert_uint_eq(fx_h2c_resets(normal), 0);
    fx_conn_free(c2);
    fx_h2c_free(normal);
    fx_h2c_free(phone);
}
END_TEST

/* The same through the real pool and an upstream connection: no more than
 * MAX_STALLED of the zero-window client's requests take an upstream stream,
 * and a normal client's requests are sent and answered beside them. */
START_TEST(zero_window_client_reaches_the_pool_at_most_the_bound)
{
    struct fx_lb *lb = fx_lb_new(1000, 200, 100000);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    phone = fx_h2c_new_window(0);
    ck_assert_int_eq(cr_h2_attach(C, cr_request_submit), 0);
    for (int i = 0; i < 100; i++)
        fx_h2c_request(phone, big_get);
    phone_exchange();
    ck_assert_int_eq(fx_up_pump(u, lb), 0);
    phone_exchange();
    ck_assert_uint_eq(fx_lb_requests(lb), MAX_STALLED);
    ck_assert_uint_eq(fx_h2c_resets(phone), 100 - MAX_STALLED);
    ck_assert_uint_eq(fx_h2c_done(phone), 0);

    struct cr_conn *c2 = fx_conn_new(&X, "203.0.113.7");
    struct fx_h2c *normal = fx_h2c_new();
    ck_assert_int_eq(cr_h2_attach(c2, cr_request_submit), 0);
    int32_t sids[8];
    for (int i = 0; i < 8; i++)
        sids[i] = fx_h2c_request(normal, big_get);
    for (int round = 0; round < 50 && fx_h2c_done(normal) < 8; round++) {
        exchange(c2, normal);
        ck_assert_int_eq(fx_up_pump(u, lb), 0);
    }
    ck_assert_uint_eq(fx_lb_requests(lb), MAX_STALLED + 8);
    ck_assert_uint_eq(fx_h2c_done(normal), 8);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(fx_h2c_status(normal, sids[i]), 200);
    ck_assert_uint_eq(fx_h2c_done(phone), 0);
    fx_conn_free(c2);
    fx_h2c_free(normal);
    fx_h2c_free(phone);
    fx_conn_free(C);
    C = NULL;
    fx_lb_free(lb);
}
END_TEST

/* The count follows the stream windows both ways: a stream whose window
 * the client opens no longer counts (room for one more), and one whose
 * response is buffered beyond its window counts again once what the
 * window allowed has gone. */
START_TEST(stalled_count_follows_stream_windows)
{
    teardown();
    world("http:\n  h2_max_stalled_streams: 4\n  send_timeout: 1s\n");
    phone = fx_h2c_new_window(0);
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    int32_t s[8];
    for (int i = 0; i < 5; i++)
        s[i] = fx_h2c_request(phone, big_get);
    phone_exchange();
    ck_assert_int_eq(nsubmit, 4);
    ck_assert_int_eq(fx_h2c_reset_code(phone, s[4]), NGHTTP2_REFUSED_STREAM);

    /* stream 1 gets a window of 10 bytes: nothing waits on it now */
    fx_h2c_window(phone, s[0], 10);
    phone_exchange();
    s[5] = fx_h2c_request(phone, big_get);
    s[6] = fx_h2c_request(phone, big_get);
    phone_exchange();
    ck_assert_int_eq(nsubmit, 5);
    ck_assert_int_eq(fx_h2c_reset_code(phone, s[5]), -1);
    ck_assert_int_eq(fx_h2c_reset_code(phone, s[6]), NGHTTP2_REFUSED_STREAM);

    /* its answer (a JSON body of some 40 bytes) is more than 10 bytes:
     * 10 go, the rest waits, and the stream counts again once it has
     * waited a tenth of send_timeout (100 ms) */
    cr_request_respond(subs[0], 200, "ok", NULL);
    phone_exchange();
    pass_ms(150);
    s[7] = fx_h2c_request(phone, big_get);
    phone_exchange();
    ck_assert_int_eq(nsubmit, 5);
    ck_assert_int_eq(fx_h2c_reset_code(phone, s[7]), NGHTTP2_REFUSED_STREAM);

    /* the client opens stream 1 enough: the answer ends and the stream
     * closes (4 left, the bound); then stream 3's window: room for one */
    fx_h2c_window(phone, s[0], 1000);
    phone_exchange();
    ck_assert_int_eq(fx_h2c_status(phone, s[0]), 200);
    ck_assert_uint_eq(fx_h2c_done(phone), 1);
    fx_h2c_window(phone, s[1], 1000);
    phone_exchange();
    fx_h2c_request(phone, big_get);
    phone_exchange();
    ck_assert_int_eq(nsubmit, 6);
    fx_h2c_free(phone);
}
END_TEST

/* A client with wide stream windows whose connection window is shut: every
 * response it has in flight waits on it, so once it has waited a tenth of
 * send_timeout (100 ms here; a moment is what any bulk download does)
 * every in-flight request counts, whatever its stream's window; opening
 * the connection's window makes room again. */
START_TEST(shut_connection_window_counts_every_stream)
{
    teardown();
    world("http:\n  h2_max_stalled_streams: 4\n  send_timeout: 1s\n");
    struct fx_lb *lb = fx_lb_new(1000, 200, 100000);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    phone = fx_h2c_new_window(1 << 20); /* its connection window stays 65535 */
    ck_assert_int_eq(cr_h2_attach(C, cr_request_submit), 0);
    fx_h2c_request(phone, big_get);
    fx_h2c_request(phone, big_get);
    phone_exchange();
    for (int round = 0; round < 10; round++) { /* 65535 of 2 x 100000 bytes go */
        ck_assert_int_eq(fx_up_pump(u, lb), 0);
        phone_exchange();
    }
    ck_assert_uint_eq(fx_lb_requests(lb), 2);
    ck_assert_uint_eq(fx_h2c_done(phone), 0);
    /* shut a moment ago: nothing is held yet, 5 in flight */
    int32_t s[4];
    for (int i = 0; i < 3; i++)
        s[i] = fx_h2c_request(phone, big_get);
    phone_exchange();
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(fx_h2c_reset_code(phone, s[i]), -1);
    pass_ms(150); /* shut for longer than a tenth of send_timeout */
    s[3] = fx_h2c_request(phone, big_get);
    phone_exchange();
    ck_assert_int_eq(fx_h2c_reset_code(phone, s[3]), NGHTTP2_REFUSED_STREAM);

    fx_h2c_window(phone, 0, 1 << 20);
    phone_exchange();
    int32_t more = fx_h2c_request(phone, big_get);
    phone_exchange();
    ck_assert_int_eq(fx_h2c_reset_code(phone, more), -1);
    ck_assert_int_eq(fx_up_pump(u, lb), 0);
    ck_assert_uint_eq(fx_lb_requests(lb), 6);
    fx_h2c_free(phone);
    fx_conn_free(C);
    C = NULL;
    fx_lb_free(lb);
}
END_TEST

/* ------------------------------------------------------------ request bodies that never come */

/* Config lines for the timeout tests: short enough to wait past. */
#define SHORT_TIMEOUTS "http:\n  body_timeout: 100ms\n  header_timeout: 100ms\n"

/* A request whose HEADERS come without END_STREAM, and then no DATA: once
 * body_timeout has passed with nothing, it is answered 408 "request body
 * timeout", and the stream (which the client still holds open) is reset
 * with NO_ERROR once the answer is out (RFC 9113 8.1). The connection
 * goes on. */
START_TEST(body_that_never_comes_gets_408)
{
    teardown();
    world(SHORT_TIMEOUTS);
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    get(1, false);
    ck_assert_int_eq(deliver(), 0);
    ck_assert_int_eq(nsubmit, 1);
    fire_timer(); /* too early: nothing */
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.headers, 0);
    pass_ms(150);
    fire_timer();
    read_frames(&s);
    ck_assert_int_eq(s.status[0], 408);
    ck_assert_int_eq(s.rst_code[0], NGHTTP2_NO_ERROR);
    ck_assert_int_eq(s.goaways, 0);
    ck_assert_int_eq(C->state, CR_CONN_OPEN);
    raw_done();
}
END_TEST

/* A POST whose content-length is over max_body gets its 413 at once; a
 * client that then sends more than 64 KB of the body has its stream reset
 * with NO_ERROR (RFC 9113 8.1) so that it stops (not at once: curl takes a
 * reset before its upload ends for a failure and loses the 413). DATA of
 * it already on its way lands on a closed stream and is dropped without
 * harm: the connection goes on, and the next request is submitted. */
START_TEST(early_413_resets_the_stream)
{
    teardown();
    world("http:\n  max_body: 1k\n");
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
#define NV(k, v) {(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":method", "POST"), NV(":scheme", "https"),
                        NV(":authority", "api.example.com"), NV(":path", "/v1/items"),
                        NV("content-length", "100000")};
#undef NV
    uint8_t block[512];
    ssize_t n = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), nva, CR_ARRAY_LEN(nva));
    ck_assert_int_gt(n, 0);
    frame(F_HEADERS, FL_END_HEADERS, 1, block, (size_t)n);
    static const uint8_t body[8192];
    frame(F_DATA, 0, 1, body, sizeof(body));
    ck_assert_int_eq(deliver(), 0);
    ck_assert_int_eq(nsubmit, 0); /* answered by the front end */
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.status[0], 413);
    ck_assert_int_eq(s.rsts, 0);
    for (int i = 0; i < 8; i++) /* 64 KB more: still let in */
        frame(F_DATA, 0, 1, body, sizeof(body));
    ck_assert_int_eq(deliver(), 0);
    read_frames(&s);
    ck_assert_int_eq(s.rsts, 0);
    frame(F_DATA, 0, 1, body, sizeof(body)); /* past it */
    ck_assert_int_eq(deliver(), 0);
    read_frames(&s);
    ck_assert_int_eq(s.rst_code[0], NGHTTP2_NO_ERROR);

    for (int i = 0; i < 4; i++) /* in flight before the client saw the reset */
        frame(F_DATA, 0, 1, body, sizeof(body));
    get(3, true);
    ck_assert_int_eq(deliver(), 0);
    ck_assert_int_eq(nsubmit, 1);
    read_frames(&s);
    ck_assert_int_eq(s.goaways, 0);
    ck_assert_int_eq(C->state, CR_CONN_OPEN);
    raw_done();
}
END_TEST

/* Any answer that ends while the body still comes is treated alike, not
 * only the front end's own 413: here admission's 429 (the submit callback
 * answers for it). The client may finish a short body; past 64 KB that
 * nobody takes, the stream is reset with NO_ERROR. */
START_TEST(refused_upload_is_reset_after_its_drain)
{
    teardown();
    world(NULL);
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
#define NV(k, v) {(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":method", "POST"), NV(":scheme", "https"),
                        NV(":authority", "api.example.com"), NV(":path", "/v1/items"),
                        NV("content-length", "500000")};
#undef NV
    uint8_t block[512];
    ssize_t n = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), nva, CR_ARRAY_LEN(nva));
    ck_assert_int_gt(n, 0);
    frame(F_HEADERS, FL_END_HEADERS, 1, block, (size_t)n);
    ck_assert_int_eq(deliver(), 0);
    ck_assert_int_eq(nsubmit, 1);
    const char *ra[] = {"retry-after", "1", NULL};
    cr_request_respond(subs[0], 429, "tenant rate limit", ra);
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.status[0], 429);
    ck_assert_int_eq(s.rsts, 0);
    static const uint8_t body[8192];
    for (int i = 0; i < 8; i++) /* 64 KB: still let in */
        frame(F_DATA, 0, 1, body, sizeof(body));
    ck_assert_int_eq(deliver(), 0);
    read_frames(&s);
    ck_assert_int_eq(s.rsts, 0);
    frame(F_DATA, 0, 1, body, sizeof(body)); /* past it */
    ck_assert_int_eq(deliver(), 0);
    read_frames(&s);
    ck_assert_int_eq(s.rst_code[0], NGHTTP2_NO_ERROR);
    ck_assert_int_eq(s.goaways, 0);
    ck_assert_int_eq(C->state, CR_CONN_OPEN);
    raw_done();
}
END_TEST

/* The same through the pool: the request is on an upstream stream when
 * its body stops coming; the 408 cancels that stream, and the pool has
 * nothing in flight afterwards. The access log's reason is the 408's. */
START_TEST(body_timeout_cancels_the_upstream_stream)
{
    teardown();
    world(SHORT_TIMEOUTS);
    struct fx_lb *lb = fx_lb_new(1000, 200, 100);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    ck_assert_int_eq(cr_h2_attach(C, cr_request_submit), 0);
    preface();
    get(1, false);
    ck_assert_int_eq(deliver(), 0);
    ck_assert_int_eq(fx_up_pump(u, lb), 0);
    ck_assert(!cr_gate_idle(X.w.gate)); /* on its upstream stream */
    ck_assert_uint_eq(fx_lb_requests(lb), 0);
    pass_ms(150);
    fire_timer();
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.status[0], 408);
    ck_assert_int_eq(fx_up_pump(u, lb), 0);
    ck_assert(cr_gate_idle(X.w.gate));
    ck_assert_uint_eq(fx_lb_requests(lb), 0);
    fx_conn_free(C);
    C = NULL;
    fx_lb_free(lb);
    raw_done();
}
END_TEST

/* body_timeout is the longest pause between two DATA frames, not a bound
 * on the whole body: a DATA frame restarts the clock. */
START_TEST(body_data_restarts_the_clock)
{
    teardown();
    world(SHORT_TIMEOUTS);
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    get(1, false);
    ck_assert_int_eq(deliver(), 0);
    pass_ms(150);
    frame(F_DATA, 0, 1, "abc", 3);
    ck_assert_int_eq(deliver(), 0);
    fire_timer();
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.headers, 0);
    ck_assert_int_eq(s.rsts, 0);
    pass_ms(150);
    fire_timer();
    read_frames(&s);
    ck_assert_int_eq(s.status[0], 408);
    raw_done();
}
END_TEST

/* A body that ended is not waited for, and a client whose window corral
 * holds shut (the upstream has not taken what came: here the request
 * waits in the pool's queue, no upstream being up) is not the one who
 * pauses: neither times out. */
START_TEST(body_not_waited_for_is_not_timed_out)
{
    teardown();
    world(SHORT_TIMEOUTS);
    ck_assert_int_eq(cr_h2_attach(C, cr_request_submit), 0);
    preface();
    get(1, false);
    static char chunk[14000];
    memset(chunk, 'b', sizeof(chunk));
    for (int i = 0; i < 5; i++) /* 70000 bytes: past CR_REQUEST_BUF_HIGH */
        frame(F_DATA, 0, 1, chunk, sizeof(chunk));
    get(3, false);
    frame(F_DATA, FL_END_STREAM, 3, "abc", 3);
    ck_assert_int_eq(deliver(), 0);
    pass_ms(150);
    fire_timer();
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.headers, 0);
    ck_assert_int_eq(s.rsts, 0);
    raw_done();
}
END_TEST

/* A request answered at its head (413: its content-length is past
 * max_body) whose body then never comes: the answer stays as it was, and
 * once body_timeout has passed the client's half of the stream, which it
 * would otherwise hold open for good, is reset with NO_ERROR. */
START_TEST(answered_request_whose_body_never_comes_is_reset)
{
    teardown();
    world("http:\n  body_timeout: 100ms\n  max_body: 1k\n");
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
#define NV(k, v) {(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":method", "POST"), NV(":scheme", "https"),
                        NV(":authority", "api.example.com"), NV(":path", "/upload"),
                        NV("content-length", "5000")};
#undef NV
    uint8_t block[512];
    ssize_t n = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), nva, CR_ARRAY_LEN(nva));
    ck_assert_int_gt(n, 0);
    frame(F_HEADERS, FL_END_HEADERS, 1, block, (size_t)n);
    ck_assert_int_eq(deliver(), 0);
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.status[0], 413);
    ck_assert_int_eq(s.rsts, 0);
    ck_assert_int_eq(nsubmit, 0);
    pass_ms(150);
    fire_timer();
    read_frames(&s);
    ck_assert_int_eq(s.headers, 0);
    ck_assert_int_eq(s.rst_code[0], NGHTTP2_NO_ERROR);
    raw_done();
}
END_TEST

/* ------------------------------------------------------------ header blocks left open */

/* HEADERS without END_HEADERS, then silence: nghttp2 accepts nothing but
 * CONTINUATION meanwhile, so the whole connection waits on that block.
 * After header_timeout it is closed: GOAWAY ENHANCE_YOUR_CALM. A complete
 * head that waits for its answer (stream 1) is no such block. */
START_TEST(open_header_block_closes_after_header_timeout)
{
    teardown();
    world(SHORT_TIMEOUTS);
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    get(1, true);
    ck_assert_int_eq(deliver(), 0);
    pass_ms(150);
    fire_timer();
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.goaways, 0);

    uint8_t block[512];
    size_t n = get_block(block, sizeof(block), "/");
    frame(F_HEADERS, FL_END_STREAM, 3, block, n / 2);
    ck_assert_int_eq(deliver(), 0);
    fire_timer(); /* too early */
    read_frames(&s);
    ck_assert_int_eq(s.goaways, 0);
    pass_ms(150);
    fire_timer();
    read_frames(&s);
    assert_calmed(&s);
    ck_assert_int_eq(nsubmit, 1);
    raw_done();
}
END_TEST

/* CONTINUATION frames that dribble in do not restart the clock: the
 * block's time runs from its HEADERS. */
START_TEST(dribbled_continuations_do_not_restart_the_clock)
{
    teardown();
    world(SHORT_TIMEOUTS);
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    uint8_t block[512];
    size_t n = get_block(block, sizeof(block), "/");
    frame(F_HEADERS, FL_END_STREAM, 1, block, 1);
    ck_assert_int_eq(deliver(), 0);
    pass_ms(60);
    frame(F_CONT, 0, 1, block + 1, 1);
    ck_assert_int_eq(deliver(), 0);
    pass_ms(60);
    frame(F_CONT, 0, 1, block + 2, 1);
    ck_assert_int_eq(deliver(), 0);
    fire_timer();
    struct seen s;
    read_frames(&s);
    assert_calmed(&s);
    (void)n;
    raw_done();
}
END_TEST

/* ------------------------------------------------------------ PRIORITY and WINDOW_UPDATE floods */

static void window_update(int32_t sid, uint32_t n)
{
    uint8_t p[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    frame(F_WINDOW, 0, sid, p, 4);
}

START_TEST(window_update_flood_gets_goaway)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    for (int i = 0; i < 10 * MAX_CONTROL; i++)
        window_update(0, 1);
    deliver();
    ck_assert_uint_gt(evbuffer_get_length(wire), 0); /* cut off before the end */
    struct seen s;
    read_frames(&s);
    assert_calmed(&s);
    raw_done();
}
END_TEST

START_TEST(priority_flood_gets_goaway)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    /* stream 3 depends on stream 1 (neither open), weight 16, over and over */
    const uint8_t pri[5] = {0, 0, 0, 1, 15};
    for (int i = 0; i < 10 * MAX_CONTROL; i++)
        frame(F_PRIORITY, 0, 3, pri, sizeof(pri));
    deliver();
    ck_assert_uint_gt(evbuffer_get_length(wire), 0);
    struct seen s;
    read_frames(&s);
    assert_calmed(&s);
    raw_done();
}
END_TEST

/* A client that opens windows as it reads sends WINDOW_UPDATEs in
 * proportion to the DATA it gets (nghttp2's: one for the stream and one
 * for the connection every half window): those are not a flood, however
 * low the budget. Here a 2 MB answer (128 DATA frames) through a budget of
 * 10 a second. */
START_TEST(window_updates_for_data_received_are_not_a_flood)
{
    teardown();
    world("http:\n  h2_max_control_frames: 10\n");
    struct fx_lb *lb = fx_lb_new(1000, 200, 2000000);
    struct cr_upconn *u = fx_up_ready(&X, 0, lb);
    phone = fx_h2c_new();
    ck_assert_int_eq(cr_h2_attach(C, cr_request_submit), 0);
    int32_t sid = fx_h2c_request(phone, big_get);
    for (int round = 0; round < 500 && fx_h2c_done(phone) < 1; round++) {
        phone_exchange();
        ck_assert_int_eq(fx_up_pump(u, lb), 0);
    }
    ck_assert_uint_eq(fx_h2c_done(phone), 1);
    ck_assert_int_eq(fx_h2c_status(phone, sid), 200);
    ck_assert_int_eq(C->state, CR_CONN_OPEN);
    fx_h2c_free(phone);
    fx_conn_free(C);
    C = NULL;
    fx_lb_free(lb);
}
END_TEST

/* ------------------------------------------------------------ suite */

/* ------------------------------------------------------------ trailers and gRPC */

/* A gRPC call's head on sid (POST, content-type application/grpc, te:
 * trailers), no END_STREAM. */
static void grpc_head(int32_t sid)
{
#define NV(k, v) {(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":method", "POST"),
                        NV(":scheme", "https"),
                        NV(":authority", "api.example.com"),
                        NV(":path", "/t.T/Unary"),
                        NV("content-type", "application/grpc"),
                        NV("te", "trailers")};
#undef NV
    uint8_t block[512];
    ssize_t n = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), nva, CR_ARRAY_LEN(nva));
    ck_assert_int_gt(n, 0);
    frame(F_HEADERS, FL_END_HEADERS, sid, block, (size_t)n);
}

/* A submit callback that takes the back end's hold as the gate would, so
 * that the front end keeps what comes for the upstream. */
static void hold(struct cr_request *r)
{
    sink(r);
    r->be_held = true;
    cr_request_set_state(r, CR_REQ_QUEUED);
}

/* The client's trailer section after its body (a gRPC client's, or any
 * HTTP/2 client's) is kept for the upstream: its fields in req_trailers,
 * its pseudo-free names checked, and the body ends with it. */
START_TEST(request_trailers_are_kept_for_the_upstream)
{
    ck_assert_int_eq(cr_h2_attach(C, hold), 0);
    preface();
    grpc_head(1);
    frame(F_DATA, 0, 1, "\0\0\0\0\2hi", 7);
#define NV(k, v) {(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv tr[] = {NV("x-checksum", "abc123"), NV("grpc-extra", "1")};
#undef NV
    uint8_t block[256];
    ssize_t n = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), tr, CR_ARRAY_LEN(tr));
    ck_assert_int_gt(n, 0);
    frame(F_HEADERS, FL_END_HEADERS | FL_END_STREAM, 1, block, (size_t)n);
    ck_assert_int_eq(deliver(), 0);
    ck_assert_int_eq(nsubmit, 1);
    struct cr_request *r = last;
    ck_assert(r->req_eof);
    ck_assert_uint_eq(cr_request_body_pending(r), 7);
    ck_assert_uint_eq(r->req_trailers.n, 2);
    ck_assert_str_eq(r->req_trailers.v[0].name, "x-checksum");
    ck_assert_str_eq(r->req_trailers.v[0].value, "abc123");
    ck_assert_str_eq(r->req_trailers.v[1].name, "grpc-extra");
    /* te: trailers stays in the head: the only TE HTTP/2 allows */
    const struct cr_hdr *te = cr_request_hdr(r, "te");
    ck_assert_ptr_nonnull(te);
    ck_assert_str_eq(te->value, "trailers");
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.rsts, 0);
    cr_request_release_be(r); /* the gate's hold, taken by hold() */
    raw_done();
}
END_TEST

/* The upstream's trailers (grpc-status...) follow the response body: DATA
 * without END_STREAM, then a HEADERS frame that ends the stream. */
START_TEST(response_trailers_follow_the_body)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    grpc_head(1);
    frame(F_DATA, FL_END_STREAM, 1, "\0\0\0\0\2hi", 7);
    ck_assert_int_eq(deliver(), 0);
    struct cr_request *r = last;
    r->status = 200;
    ck_assert_int_eq(cr_request_add_rheader(r, "content-type", 12, "application/grpc", 16), 0);
    cr_request_set_state(r, CR_REQ_RESPONDING);
    cr_request_notify_head(r);
    evbuffer_add(r->resp_body, "\0\0\0\0\2ok", 7);
    cr_request_notify_body(r);
    ck_assert_int_eq(cr_request_add_rtrailer(r, "grpc-status", 11, "5", 1), 0);
    ck_assert_int_eq(cr_request_add_rtrailer(r, "grpc-message", 12, "not%20here", 10), 0);
    ck_assert_int_eq(cr_request_add_rtrailer(r, "connection", 10, "close", 5), 0); /* dropped */
    ck_assert_uint_eq(r->resp_trailers.n, 2);
    r->resp_eof = true;
    cr_request_notify_end(r);
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.status[0], 200);
    ck_assert_int_eq(s.headers, 2);
    ck_assert_int_eq(s.data, 1);
    ck_assert_int_eq(s.data_end, 0);
    ck_assert_int_eq(s.headers_end, 1);
    ck_assert(s.grpc_in_end);
    ck_assert_str_eq(s.grpc[0][0], "5");
    ck_assert_str_eq(s.grpc[0][1], "not%20here");
    ck_assert_int_eq(s.rsts, 0);
    raw_done();
}
END_TEST

/* corral refuses a gRPC call as gRPC: one HEADERS frame that ends the
 * stream (trailers-only), :status 200, grpc-status 8 for a tenant's 429
 * and 14 for an upstream's 503, the reason percent-encoded, the
 * Retry-After in ms; the request keeps the status it stands for. A call
 * that is not gRPC is refused as before. */
START_TEST(refusal_of_a_grpc_call_is_grpc)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    grpc_head(1);
    ck_assert_int_eq(deliver(), 0);
    ck_assert_int_eq(nsubmit, 1);
    const char *const ra[] = {"retry-after", "2", NULL};
    cr_request_respond(subs[0], 429, "tenant rate limit", ra);
    ck_assert_int_eq(subs[0]->status, 200);
    ck_assert_int_eq(subs[0]->refused_status, 429);
    ck_assert_int_eq(subs[0]->grpc_status, 8);
    struct seen s;
    read_frames(&s);
    ck_assert_int_eq(s.status[0], 200);
    ck_assert_int_eq(s.headers_end, 1);
    ck_assert_int_eq(s.data, 0);
    ck_assert(s.grpc_in_end);
    ck_assert_str_eq(s.grpc[0][0], "8");
    ck_assert_str_eq(s.grpc[0][1], "tenant rate limit");
    ck_assert_str_eq(s.grpc[0][2], "2000");
    raw_done();
}
END_TEST

START_TEST(outage_refusal_of_a_grpc_call_is_unavailable)
{
    ck_assert_int_eq(cr_h2_attach(C, sink), 0);
    preface();
    grpc_head(1);
    get(3, true);
    ck_assert_int_eq(deliver(), 0);
    ck_assert_int_eq(nsubmit, 2);
    cr_request_respond(subs[0], 503, "upstream 100% busy", NULL);
    ck_assert_int_eq(subs[0]->refused_status, 503);
    const char *const ra[] = {"retry-after", "2", NULL};
    cr_request_respond(subs[1], 429, "tenant rate limit", ra); /* not gRPC: as before */
    ck_assert_int_eq(subs[1]->grpc_status, 0);
    struct seen s;
    read_frames(&s); /* the streams end: both requests are freed */
    ck_assert_int_eq(s.status[0], 200);
    ck_assert_str_eq(s.grpc[0][0], "14");
    ck_assert_str_eq(s.grpc[0][1], "upstream 100%25 busy");
    ck_assert_str_eq(s.grpc[0][2], ""); /* no Retry-After, no pushback */
    ck_assert_int_eq(s.status[1], 429);
    ck_assert_str_eq(s.grpc[1][0], "");
    ck_assert_int_eq(s.data, 1); /* the 429's JSON body */
    raw_done();
}
END_TEST

START_TEST(grpc_message_is_percent_encoded)
{
    char out[16];
    ck_assert_uint_eq(cr_request_grpc_pct(out, sizeof(out), "a b%\n\xc3\xa9"), 15);
    ck_assert_str_eq(out, "a b%25%0A%C3%A9");
    ck_assert_uint_eq(cr_request_grpc_pct(out, 5, "ab%cd"), 2); /* no escape cut in two */
    ck_assert_str_eq(out, "ab");
    ck_assert_int_eq(cr_request_grpc_code(429), 8);
    ck_assert_int_eq(cr_request_grpc_code(502), 14);
    ck_assert_int_eq(cr_request_grpc_code(504), 14);
    ck_assert_int_eq(cr_request_grpc_code(413), 0);
}
END_TEST

static Suite *h2_suite(void)
{
    Suite *s = suite_create("h2");
    TCase *tc = tcase_create("free");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 2);
    tcase_add_test(tc, free_after_highest_stream_id_is_prompt);
    suite_add_tcase(s, tc);

    tc = tcase_create("headers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, authority_counts_toward_header_list_size);
    tcase_add_test(tc, header_list_size_counts_32_per_field);
    tcase_add_test(tc, indexed_references_answered_431);
    tcase_add_test(tc, endless_continuation_gets_goaway);
    suite_add_tcase(s, tc);

    tc = tcase_create("floods");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ping_flood_gets_goaway);
    tcase_add_test(tc, settings_flood_gets_goaway);
    tcase_add_test(tc, rapid_reset_gets_goaway);
    tcase_add_test(tc, empty_data_flood_gets_goaway);
    tcase_add_test(tc, empty_continuation_flood_gets_goaway);
    tcase_add_test(tc, traffic_below_budgets_is_served);
    tcase_add_test(tc, budgets_follow_the_config);
    suite_add_tcase(s, tc);

    tc = tcase_create("not_reading");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, zero_window_client_holds_at_most_the_bound);
    tcase_add_test(tc, zero_window_client_reaches_the_pool_at_most_the_bound);
    tcase_add_test(tc, stalled_count_follows_stream_windows);
    tcase_add_test(tc, shut_connection_window_counts_every_stream);
    suite_add_tcase(s, tc);

    tc = tcase_create("held_open");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, body_that_never_comes_gets_408);
    tcase_add_test(tc, early_413_resets_the_stream);
    tcase_add_test(tc, refused_upload_is_reset_after_its_drain);
    tcase_add_test(tc, body_timeout_cancels_the_upstream_stream);
    tcase_add_test(tc, body_data_restarts_the_clock);
    tcase_add_test(tc, body_not_waited_for_is_not_timed_out);
    tcase_add_test(tc, answered_request_whose_body_never_comes_is_reset);
    tcase_add_test(tc, open_header_block_closes_after_header_timeout);
    tcase_add_test(tc, dribbled_continuations_do_not_restart_the_clock);
    suite_add_tcase(s, tc);

    tc = tcase_create("control_floods");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, window_update_flood_gets_goaway);
    tcase_add_test(tc, priority_flood_gets_goaway);
    tcase_add_test(tc, window_updates_for_data_received_are_not_a_flood);
    suite_add_tcase(s, tc);

    tc = tcase_create("trailers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, request_trailers_are_kept_for_the_upstream);
    tcase_add_test(tc, response_trailers_follow_the_body);
    tcase_add_test(tc, refusal_of_a_grpc_call_is_grpc);
    tcase_add_test(tc, outage_refusal_of_a_grpc_call_is_unavailable);
    tcase_add_test(tc, grpc_message_is_percent_encoded);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(h2_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
