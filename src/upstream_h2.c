/* upstream_h2.c - the HTTP/2 codec of an upstream connection: an nghttp2
 * client session whose streams carry requests from any client connection,
 * with flow control tied to what the clients have taken.
 *
 * Which window waits for the client: a stream's own. The connection's
 * window, shared by every client whose requests the connection carries, is
 * given back as soon as the bytes are buffered, while the connection holds
 * less than UP_CONN_WINDOW of bytes the clients have not taken: were it
 * tied to the clients, one client that never reads (an HTTP/2 client with
 * a zero window, say) could pin all of it with 64 streams and stall
 * everyone else's responses; were it never tied, clients that do not read
 * could make a worker buffer 256 KB for every stream the server allows.
 * Past that bound the connection's window is given back as clients take
 * bytes (conn_owed), so what one connection buffers stays under twice
 * UP_CONN_WINDOW. What one stalled stream holds is its window, 256 KB,
 * until the front end's send_timeout resets it. */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "log.h"
#include "upstream_int.h"

#define UP_STREAM_WINDOW (256 * 1024)
#define UP_CONN_WINDOW (16 * 1024 * 1024)

/* The client's trailer section after the request body's last DATA (from
 * body_read, as nghttp2 allows). Returns 0 or CR_ENOMEM (then the last
 * DATA ends the stream without them). */
static int submit_trailers(nghttp2_session *ng, int32_t sid, const struct cr_hdrs *t)
{
    nghttp2_nv stackv[32] = {{0}};
    nghttp2_nv *nva = t->n <= CR_ARRAY_LEN(stackv) ? stackv : malloc(t->n * sizeof(*nva));
    if (!nva)
        return CR_ENOMEM;
    for (uint32_t i = 0; i < t->n; i++)
        nva[i] = (nghttp2_nv){(uint8_t *)t->v[i].name, (uint8_t *)t->v[i].value, t->v[i].nlen,
                              t->v[i].vlen, 0};
    int rc = nghttp2_submit_trailer(ng, sid, nva, t->n);
    if (nva != stackv)
        free(nva);
    return rc == 0 ? 0 : CR_ENOMEM;
}

/* A tunnel's client bytes up the stream: corral's close (tunnel_close,
 * masked) at the first frame boundary once it is set, and nothing of the
 * client's after it (ws.h: cr_ws_track), as upstream_ws.c's ws_produce
 * does on a dedicated connection. Returns the bytes put in buf. */
static size_t tunnel_body(struct cr_request *r, uint8_t *buf, size_t len, size_t have)
{
    size_t n = 0, k;
    if (r->tunnel_close && !r->up_ws_close_sent && cr_ws_at_boundary(&r->up_ws) &&
        len >= CR_WS_CLOSE_MAX) {
        n = cr_ws_close_bytes(buf, r->tunnel_close, true);
        r->up_ws_close_sent = true;
    }
    if (have == 0) { /* (req_body may not exist yet) */
        k = 0;
    } else if (r->up_ws_close_sent) {
        evbuffer_drain(r->req_body, have); /* its close answers corral's, or is too late */
        k = have;
    } else {
        k = cr_ws_track_buf(&r->up_ws, r->req_body, CR_MIN(have, len - n), r->tunnel_close != 0);
        if (k > 0 && evbuffer_remove(r->req_body, buf + n, k) != (int)k)
            return 0;
        n += k;
    }
    r->req_sent += (uint64_t)k;
    if (have >= CR_REQUEST_BUF_HIGH && have - k < CR_REQUEST_BUF_HIGH)
        cr_request_notify_drained(r);
    return n;
}

static ssize_t body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    struct cr_request *r = src->ptr;
    size_t have = cr_request_body_pending(r);
    if (r->upgrade && (have > 0 || (r->tunnel_close && !r->up_ws_close_sent))) {
        size_t n = tunnel_body(r, buf, len, have);
        if (r->req_eof && cr_request_body_pending(r) == 0)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        else if (n == 0)
            return NGHTTP2_ERR_DEFERRED; /* a frame's end, or the client's next bytes */
        return (ssize_t)n;
    }
    if (have == 0 && !r->req_eof)
        return NGHTTP2_ERR_DEFERRED;
    int n = have ? evbuffer_remove(r->req_body, buf, CR_MIN(have, len)) : 0;
    if (n < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    r->req_sent += (uint64_t)n;
    if (r->req_eof && cr_request_body_pending(r) == 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (r->req_trailers.n && submit_trailers(ng, sid, &r->req_trailers) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers end it */
    }
    if (have >= CR_REQUEST_BUF_HIGH && have - (size_t)n < CR_REQUEST_BUF_HIGH)
        cr_request_notify_drained(r);
    return n;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct cr_request *r = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!r || r->up_cancelled)
        return 0; /* nobody reads it */
    if (f->headers.cat == NGHTTP2_HCAT_HEADERS && r->state >= CR_REQ_RESPONDING) {
        /* the trailer section (nghttp2 has checked it ends the stream) */
        if (r->state > CR_REQ_RESPONDING)
            return 0;
        int rc = cr_request_add_rtrailer(r, (const char *)name, nlen, (const char *)value, vlen);
        return rc < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
    }
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        r->status = atoi((const char *)value);
        return 0;
    }
    if (nlen && name[0] == ':')
        return 0;
    if (cr_request_add_rheader(r, (const char *)name, nlen, (const char *)value, vlen) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
    struct cr_upconn *u = arg;
    struct cr_request *r =
        f->hd.stream_id ? nghttp2_session_get_stream_user_data(ng, f->hd.stream_id) : NULL;
    if (r && r->up_cancelled)
        r = NULL; /* its answer is discarded; on_stream_close releases it */
    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) {
            u->remote_max =
                nghttp2_session_get_remote_settings(ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
            u->ext_connect = nghttp2_session_get_remote_settings(
                                 ng, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL) == 1;
            u->settings_seen = true;
            cr_pool_room(u->pool, u);
        }
        break;
    case NGHTTP2_HEADERS:
        if (!r)
            break;
        if (r->status >= 100 && r->status < 200) {
            cr_request_reset_rheaders(r); /* interim: the final answer follows */
            r->status = 0;
            break;
        }
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            r->resp_eof = true;
        if (r->state < CR_REQ_RESPONDING && r->status >= 200) {
            /* a tunnel accepted (RFC 8441 5: any 2xx), the stream going on */
            if (r->upgrade && r->status < 300 && !r->resp_eof)
                r->status = 101;
            cr_up_response_head(r);
        }
        if (r->resp_eof)
            cr_request_notify_end(r);
        break;
    case NGHTTP2_DATA:
        if (r && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            r->resp_eof = true;
            cr_request_notify_end(r);
        }
        break;
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK)
            u->ping_outstanding = false;
        break;
    case NGHTTP2_GOAWAY:
        cr_log_info("upstream %s conn %lld: GOAWAY (last stream %d, error %u): retiring it",
                    u->addr->text, (long long)u->id, f->goaway.last_stream_id,
                    f->goaway.error_code);
        cr_up_set_state(u, CR_UP_GOAWAY);
        cr_pool_goaway(u->pool, u);
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *arg)
{
    struct cr_request *r = nghttp2_session_get_stream_user_data(ng, sid);
    if (!r || !r->fe || r->up_cancelled) {
        nghttp2_session_consume(ng, sid, len); /* nobody will read it */
        return 0;
    }
    if (evbuffer_add(r->resp_body, data, len) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    struct cr_upconn *u = arg;
    size_t room = u->held < UP_CONN_WINDOW ? UP_CONN_WINDOW - u->held : 0;
    size_t now = CR_MIN(len, room); /* the stream's window holds it */
    if (now)
        nghttp2_session_consume_connection(ng, now);
    u->conn_owed += len - now;
    u->held += len;
    r->resp_unacked += len;
    cr_request_notify_body(r);
    return 0;
}

/* n buffered bytes left the connection (taken by a client, or dropped with
 * their stream): the connection's window gets back what it is owed, from
 * whichever stream's bytes they were. */
static void release_held(struct cr_upconn *u, size_t n)
{
    u->held -= CR_MIN(n, u->held);
    size_t m = CR_MIN(n, u->conn_owed);
    if (m) {
        nghttp2_session_consume_connection(u->ng, m);
        u->conn_owed -= m;
    }
}

/* A stream is leaving the connection: what the client has not taken of it
 * no longer counts as held. */
static void ack_rest(struct cr_upconn *u, struct cr_request *r)
{
    release_held(u, r->resp_unacked);
    r->resp_unacked = 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error, void *arg)
{
    struct cr_upconn *u = arg;
    struct cr_request *r = nghttp2_session_get_stream_user_data(ng, sid);
    if (r) {
        ack_rest(u, r);
        if (!r->resp_eof)
            cr_log_debug("upstream conn %lld: stream %d closed early (error %u)",
                         (long long)u->id, sid, error);
        cr_up_stream_done(u, r, error == NGHTTP2_REFUSED_STREAM);
    }
    /* a cancelled stream is released here too: it held its slot until now */
    cr_pool_room(u->pool, u);
    return 0;
}

static int h2_start(struct cr_upconn *u)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return CR_ENOMEM;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return CR_ENOMEM;
    }
    /* response bytes are acknowledged when the client has taken them */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rc = nghttp2_session_client_new2(&u->ng, cb, u, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        return CR_ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, UP_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 0},
    };
    nghttp2_submit_settings(u->ng, NGHTTP2_FLAG_NONE, iv, CR_ARRAY_LEN(iv));
    nghttp2_session_set_local_window_size(u->ng, NGHTTP2_FLAG_NONE, 0, UP_CONN_WINDOW);
    /* no streams before the server's SETTINGS: a server allowing fewer than
     * the 100 RFC 9113 lets a client assume would refuse the extra ones */
    u->remote_max = 0;
    u->settings_seen = false;
    u->ext_connect = false;
    return 0;
}

static void h2_stop(struct cr_upconn *u)
{
    if (u->ng) {
        nghttp2_session_del(u->ng);
        u->ng = NULL;
    }
}

static int h2_on_data(struct cr_upconn *u, const uint8_t *data, size_t len)
{
    ssize_t rc = nghttp2_session_mem_recv(u->ng, data, len);
    return rc < 0 ? CR_EPROTO : 0;
}

static int h2_on_eof(struct cr_upconn *u)
{
    /* after a GOAWAY a close is the expected end; without one it is a loss */
    return u->state == CR_UP_GOAWAY ? 0 : CR_ECLOSED;
}

static int h2_produce(struct cr_upconn *u)
{
    while (evbuffer_get_length(u->out) < UP_OUT_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(u->ng, &data);
        if (n < 0)
            return CR_EPROTO;
        if (n == 0)
            break;
        evbuffer_add(u->out, data, (size_t)n);
    }
    /* a retired or GOAWAY'd connection closes once it carries nothing */
    if ((u->retiring || u->state == CR_UP_GOAWAY) && u->inflight == 0 &&
        !nghttp2_session_want_write(u->ng) && evbuffer_get_length(u->out) == 0)
        return CR_ECLOSED;
    return 0;
}

static uint32_t h2_room(const struct cr_upconn *u)
{
    return u->inflight < u->remote_max ? u->remote_max - u->inflight : 0;
}

static int h2_submit(struct cr_upconn *u, struct cr_request *r)
{
    /* a tunnel: an extended CONNECT (RFC 8441 4, 5) with this hop's
     * :protocol and version, and no content-length; its body is the
     * client's bytes for as long as the tunnel lives */
    bool tunnel = r->upgrade != NULL;
    size_t n = 4 + (tunnel ? 2 : 0) + r->hdrs.n, k = 0;
    nghttp2_nv stackv[64];
    nghttp2_nv *nva = n <= CR_ARRAY_LEN(stackv) ? stackv : malloc(n * sizeof(*nva));
    if (!nva)
        return CR_ENOMEM;
#define NV(k, v) ((nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), sizeof(k) - 1, strlen(v), 0})
    nva[k++] = NV(":method", tunnel ? "CONNECT" : r->method);
    if (tunnel)
        nva[k++] = NV(":protocol", r->upgrade);
    nva[k++] = NV(":scheme", tunnel ? "https" : r->scheme);
    nva[k++] = NV(":authority", r->authority);
    nva[k++] = NV(":path", r->path);
    if (tunnel)
        nva[k++] = NV("sec-websocket-version", "13");
#undef NV
    for (uint32_t i = 0; i < r->hdrs.n; i++) {
        const struct cr_hdr *h = &r->hdrs.v[i];
        if (tunnel && ((h->nlen == 14 && !memcmp(h->name, "content-length", 14)) ||
                       (h->nlen == 21 && !memcmp(h->name, "sec-websocket-version", 21))))
            continue;
        /* values unique to each request would only churn the HPACK tables
         * of both ends: send them literally, never indexed */
        bool unique = (h->nlen == 12 && !memcmp(h->name, "x-request-id", 12)) ||
                      (h->nlen == 11 && !memcmp(h->name, "traceparent", 11));
        nva[k++] = (nghttp2_nv){(uint8_t *)h->name, (uint8_t *)h->value, h->nlen, h->vlen,
                                unique ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_data_provider prd = {.source.ptr = r, .read_callback = body_read};
    bool body = tunnel || (r->has_body &&
                           (!(r->req_eof && cr_request_body_pending(r) == 0) || r->req_trailers.n));
    int32_t sid = nghttp2_submit_request(u->ng, NULL, nva, k, body ? &prd : NULL, r);
    if (nva != stackv)
        free(nva);
    if (sid < 0)
        return sid == NGHTTP2_ERR_NOMEM ? CR_ENOMEM : CR_EAGAIN;
    r->up_stream = sid;
    return 0;
}

static void h2_cancel(struct cr_upconn *u, struct cr_request *r)
{
    /* The stream keeps counting (u->inflight, admission's unit) until
     * nghttp2 closes it, which it does once the RST_STREAM is out, or at
     * once for a HEADERS still queued (then never sent): on_stream_close
     * releases r. The server sees the reset before any stream opened in
     * the room it leaves. */
    if (r->up_reset)
        return;
    r->up_reset = true;
    nghttp2_submit_rst_stream(u->ng, NGHTTP2_FLAG_NONE, r->up_stream, NGHTTP2_CANCEL);
}

static void h2_resume(struct cr_upconn *u, struct cr_request *r)
{
    nghttp2_session_resume_data(u->ng, r->up_stream);
}

static void h2_consumed(struct cr_upconn *u, struct cr_request *r, size_t n)
{
    n = CR_MIN(n, r->resp_unacked);
    if (n) {
        nghttp2_session_consume_stream(u->ng, r->up_stream, n);
        r->resp_unacked -= n;
        release_held(u, n);
    }
}

static void h2_ping(struct cr_upconn *u)
{
    nghttp2_submit_ping(u->ng, NGHTTP2_FLAG_NONE, NULL);
}

static void h2_retire(struct cr_upconn *u)
{
    nghttp2_submit_goaway(u->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(u->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
}

const struct cr_up_codec cr_up_h2 = {
    .alpn = "h2",
    .start = h2_start,
    .stop = h2_stop,
    .on_data = h2_on_data,
    .on_eof = h2_on_eof,
    .produce = h2_produce,
    .room = h2_room,
    .submit = h2_submit,
    .cancel = h2_cancel,
    .resume = h2_resume,
    .consumed = h2_consumed,
    .ping = h2_ping,
    .retire = h2_retire,
};
