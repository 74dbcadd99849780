/* seed_h2.c - writes the HTTP/2 fuzz target's seed corpus: what a real
 * client (nghttp2's client session) sends after the connection preface,
 * for a few typical conversations, each prefixed with fuzz_conn.h's
 * control byte.
 *
 *   make tests/fuzz/seed_h2 && tests/fuzz/seed_h2 tests/fuzz/corpus/h2
 *
 * Not part of make check: the seeds are committed; this says how they
 * were made and makes more. */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "seed_h2: %s failed\n", #cond);                                        \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static const char *dir;

struct body {
    size_t left;
};

static ssize_t body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    struct body *b = src->ptr;
    size_t n = len < b->left ? len : b->left;
    memset(buf, 'x', n);
    b->left -= n;
    if (b->left == 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (arg) /* trailers instead of END_STREAM on the last DATA */
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

static nghttp2_session *client(void)
{
    nghttp2_session_callbacks *cb;
    nghttp2_session *ng;
    CHECK(nghttp2_session_callbacks_new(&cb) == 0);
    CHECK(nghttp2_session_client_new(&ng, cb, NULL) == 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    CHECK(nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, iv, 2) == 0);
    return ng;
}

#define NV(k, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE                 \
    }

static int32_t request(nghttp2_session *ng, const char *method, const char *path,
                       const char *tenant, struct body *b)
{
    nghttp2_nv nva[] = {NV(":method", method),
                        NV(":scheme", "https"),
                        NV(":authority", "api.example.com"),
                        NV(":path", path),
                        NV("user-agent", "app/5.2"),
                        NV("x-tenant-id", tenant),
                        NV("accept", "application/json")};
    nghttp2_data_provider prd = {.source.ptr = b, .read_callback = body_read};
    int32_t sid =
        nghttp2_submit_request(ng, NULL, nva, sizeof(nva) / sizeof(nva[0]), b ? &prd : NULL, NULL);
    CHECK(sid > 0);
    return sid;
}

/* The session's output so far, without the preface. */
static uint8_t out[1 << 20];
static size_t outlen, skip = NGHTTP2_CLIENT_MAGIC_LEN;

static void pump(nghttp2_session *ng)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(ng, &data);
        CHECK(n >= 0);
        if (n == 0)
            return;
        size_t k = (size_t)n < skip ? (size_t)n : skip;
        skip -= k;
        CHECK(outlen + (size_t)n - k <= sizeof(out));
        memcpy(out + outlen, data + k, (size_t)n - k);
        outlen += (size_t)n - k;
    }
}

/* Writes the session's output as seed `name` and ends the session. */
static void save(nghttp2_session *ng, const char *name, unsigned char ctl)
{
    char path[4096];
    pump(ng);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    fputc(ctl, f);
    fwrite(out, 1, outlen, f);
    CHECK(fclose(f) == 0);
    nghttp2_session_del(ng);
    outlen = 0;
    skip = NGHTTP2_CLIENT_MAGIC_LEN;
}

int main(int argc, char **argv)
{
    CHECK(argc == 2);
    dir = argv[1];
    nghttp2_session *ng;

    ng = client();
    request(ng, "GET", "/v1/items?since=5", "gold", NULL);
    save(ng, "get", 0);

    ng = client(); /* the same, read in pieces of 7 bytes */
    request(ng, "GET", "/v1/items?since=5", "gold", NULL);
    save(ng, "get-split", 1);

    ng = client();
    struct body b = {1000};
    request(ng, "POST", "/v1/orders", "silver", &b);
    save(ng, "post-body", 0);

    ng = client(); /* concurrent streams, tenants and the priority route */
    request(ng, "GET", "/health", "bronze", NULL);
    request(ng, "GET", "/v1/a", "gold", NULL);
    request(ng, "GET", "/v1/b", "tin", NULL);
    request(ng, "DELETE", "/v1/c", "tin", NULL);
    request(ng, "GET", "/v1/d", "unknown", NULL);
    save(ng, "many-streams", 0);

    ng = client(); /* a request reset by the client, then a ping */
    int32_t sid = request(ng, "GET", "/v1/slow", "gold", NULL);
    CHECK(nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL) == 0);
    CHECK(nghttp2_submit_ping(ng, NGHTTP2_FLAG_NONE, (const uint8_t *)"12345678") == 0);
    save(ng, "rst-ping", 0);

    ng = client(); /* window updates and a goaway */
    request(ng, "GET", "/v1/items", "gold", NULL);
    CHECK(nghttp2_submit_window_update(ng, NGHTTP2_FLAG_NONE, 0, 1 << 20) == 0);
    CHECK(nghttp2_submit_goaway(ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0) == 0);
    save(ng, "window-goaway", 0);

    ng = client(); /* a header block past one frame: CONTINUATION */
    {
        static char big[20000];
        memset(big, 'v', sizeof(big) - 1);
        nghttp2_nv nva[] = {NV(":method", "GET"), NV(":scheme", "https"),
                            NV(":authority", "api.example.com"), NV(":path", "/v1/big"),
                            NV("x-big", big)};
        CHECK(nghttp2_submit_request(ng, NULL, nva, 5, NULL, NULL) > 0);
    }
    save(ng, "continuation", 0);

    ng = client(); /* a body, then trailers */
    {
        struct body tb = {100};
        nghttp2_nv nva[] = {NV(":method", "POST"), NV(":scheme", "https"),
                            NV(":authority", "api.example.com"), NV(":path", "/v1/upload"),
                            NV("te", "trailers")};
        nghttp2_nv tr[] = {NV("x-checksum", "abc123")};
        nghttp2_data_provider prd = {.source.ptr = &tb, .read_callback = body_read};
        nghttp2_session_callbacks *cb;
        nghttp2_session_del(ng);
        CHECK(nghttp2_session_callbacks_new(&cb) == 0);
        CHECK(nghttp2_session_client_new(&ng, cb, (void *)1) == 0); /* body_read: no END_STREAM */
        nghttp2_session_callbacks_del(cb);
        CHECK(nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, NULL, 0) == 0);
        sid = nghttp2_submit_request(ng, NULL, nva, 5, &prd, NULL);
        CHECK(sid > 0);
        pump(ng); /* the head and the body first */
        CHECK(tb.left == 0);
        CHECK(nghttp2_submit_trailer(ng, sid, tr, 1) == 0);
    }
    save(ng, "trailers", 0);
    return 0;
}
