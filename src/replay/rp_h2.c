/* rp_h2.c - HTTP/2 on a client connection: an nghttp2 client session fed
 * from the socket and drained into the connection's output (no I/O of its
 * own). Requests are streams, up to the server's MAX_CONCURRENT_STREAMS;
 * GOAWAY stops new ones and sends the unprocessed back to be placed
 * elsewhere. */
#include "rp_client_int.h"

#include <stdio.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "common.h"

#define STREAM_WINDOW (16 << 20) /* answers are never throttled by us */
#define CONN_WINDOW (1 << 30)
#define MAX_HEADERS 48

static nghttp2_session *session(const struct rp_conn *c)
{
    return c->cx;
}

static struct rp_req *req_of(nghttp2_session *s, int32_t id)
{
    return nghttp2_session_get_stream_user_data(s, id);
}

/* ------------------------------------------------------------ callbacks */

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    struct rp_req *r;

    if (f->hd.type != NGHTTP2_HEADERS || (r = req_of(s, f->hd.stream_id)) == NULL)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        if (st >= 200) /* not an interim 1xx */
            r->status = st;
    } else if (namelen == 11 && memcmp(name, "retry-after", 11) == 0) {
        rp_req_set_retry_after(r, (const char *)value, valuelen);
    }
    return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
    struct rp_conn *c = arg;

    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->draining = true;
        rp_engine_conn_changed(c);
    } else if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        uint32_t m =
            nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        c->max_streams = m;
        rp_engine_conn_changed(c);
    }
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *arg)
{
    struct rp_req *r = req_of(s, id);

    if (r == NULL)
        return 0; /* cancelled: already counted */
    nghttp2_session_set_stream_user_data(s, id, NULL);
    if (error_code == NGHTTP2_REFUSED_STREAM)
        rp_req_requeue(r); /* the server did not process it */
    else if (r->status >= 200)
        rp_req_answered(r);
    else
        rp_req_failed(r, RP_OUT_CONN_ERROR);
    return 0;
}

/* The request body: 'x' bytes; a cancelled stream gets an empty end. */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *arg)
{
    struct rp_req *r = req_of(s, id);
    size_t n = r != NULL ? (size_t)CR_MIN(len, r->body_left) : 0;

    memset(buf, 'x', n);
    if (r != NULL)
        r->body_left -= n;
    if (r == NULL || r->body_left == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ------------------------------------------------------------ the codec */

static int h2_start(struct rp_conn *c)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session *s = NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    int rc;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return CR_ENOMEM;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    rc = nghttp2_session_client_new(&s, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        return CR_ENOMEM;
    c->cx = s;
    if (nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, CR_ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
        return CR_ENOMEM;
    rp_conn_dirty(c);
    return 0;
}

#define NV(n, v, vlen)                                                                             \
    ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), (vlen), NGHTTP2_NV_FLAG_NONE})

static int h2_submit(struct rp_conn *c, struct rp_req *r)
{
    const struct rp_engine *e = c->e;
    const struct rp_engine_tenant *t = &e->tenants[r->spec.tenant];
    nghttp2_nv nv[MAX_HEADERS];
    nghttp2_data_provider body = {.source.ptr = r, .read_callback = read_body};
    char len[32], rid[48];
    size_t n = 0;
    int32_t id;

    nv[n++] = NV(":method", r->spec.method, strlen(r->spec.method));
    nv[n++] = NV(":scheme", "https", 5);
    nv[n++] = NV(":authority", e->p->target.authority, strlen(e->p->target.authority));
    nv[n++] = NV(":path", r->spec.path, strlen(r->spec.path));
    if (t->value != NULL)
        nv[n++] = NV(e->p->tenants.header, t->value, strlen(t->value));
    if (e->p->client.request_id)
        nv[n++] = NV("x-request-id", rid, rp_req_id(r, rid));
    for (size_t i = 0; i < r->spec.nheaders && n < MAX_HEADERS - 1; i++)
        nv[n++] = NV(r->spec.hname[i], r->spec.hvalue[i], strlen(r->spec.hvalue[i]));
    if (r->spec.body > 0) {
        snprintf(len, sizeof(len), "%llu", (unsigned long long)r->spec.body);
        nv[n++] = NV("content-length", len, strlen(len));
    }
    r->body_left = r->spec.body;
    id = nghttp2_submit_request(session(c), NULL, nv, n, r->spec.body > 0 ? &body : NULL, r);
    if (id < 0)
        return id == NGHTTP2_ERR_NOMEM ? CR_ENOMEM : CR_EPROTO;
    r->stream_id = id;
    return 0;
}

static int h2_feed(struct rp_conn *c, const unsigned char *d, size_t n)
{
    ssize_t rv;

    if (n == 0)
        return 0;
    rv = nghttp2_session_mem_recv(session(c), d, n);
    if (rv < 0)
        return rv == NGHTTP2_ERR_NOMEM ? CR_ENOMEM : CR_EPROTO;
    return 0;
}

static int h2_pump(struct rp_conn *c)
{
    nghttp2_session *s = session(c);

    while (c->olen - c->ooff < RP_OUT_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(s, &data);
        if (n < 0)
            return n == NGHTTP2_ERR_NOMEM ? CR_ENOMEM : CR_EPROTO;
        if (n == 0)
            break;
        if (rp_conn_out(c, data, (size_t)n) != 0)
            return CR_ENOMEM;
    }
    if (!nghttp2_session_want_read(s) && !nghttp2_session_want_write(s) && c->olen == c->ooff)
        c->draining = true; /* the session is over (GOAWAY both ways) */
    return 0;
}

static void h2_cancel(struct rp_conn *c, struct rp_req *r)
{
    nghttp2_session_set_stream_user_data(session(c), r->stream_id, NULL);
    nghttp2_submit_rst_stream(session(c), NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_CANCEL);
}

static void h2_goodbye(struct rp_conn *c)
{
    if (session(c) == NULL)
        return;
    nghttp2_session_terminate_session(session(c), NGHTTP2_NO_ERROR);
    h2_pump(c);
}

static void h2_free(struct rp_conn *c)
{
    nghttp2_session_del(session(c));
    c->cx = NULL;
}

const struct rp_codec rp_h2_codec = {
    .start = h2_start,
    .submit = h2_submit,
    .feed = h2_feed,
    .pump = h2_pump,
    .cancel = h2_cancel,
    .goodbye = h2_goodbye,
    .free = h2_free,
};
