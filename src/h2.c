/* h2.c - HTTP/2 server side: an nghttp2 server session per connection. */
#include "h2.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "log.h"
#include "request.h"

#define H2_OUT_HIGH (64 * 1024)
#define H2_STREAM_WINDOW (256 * 1024)

struct h2 {
    struct cr_conn *c;
    cr_request_submit_cb submit; /* where complete heads go */
    nghttp2_session *ng;
    uint32_t nstreams;   /* requests this connection still holds */
    bool goaway;
};

static const struct cr_fe_ops h2_fe;

/* ------------------------------------------------------------ requests */

static struct cr_request *stream_req(struct h2 *h, int32_t sid)
{
    return nghttp2_session_get_stream_user_data(h->ng, sid);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
    struct h2 *h = arg;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct cr_request *r = cr_request_new(h->c, &h2_fe, h, "HTTP/2");
    if (!r)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM, connection lives */
    r->fe_stream = f->hd.stream_id;
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, r);
    h->nstreams++;
    cr_conn_set_timer(h->c, 0);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
    struct h2 *h = arg;
    struct cr_request *r = stream_req(h, f->hd.stream_id);
    if (!r || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers are not forwarded */
    const char *n = (const char *)name, *v = (const char *)value;
    int rc;
    if (nlen && n[0] == ':') {
        char **field = nlen == 7 && !memcmp(n, ":method", 7)      ? &r->method
                       : nlen == 5 && !memcmp(n, ":path", 5)      ? &r->path
                       : nlen == 7 && !memcmp(n, ":scheme", 7)    ? &r->scheme
                       : nlen == 10 && !memcmp(n, ":authority", 10) ? &r->authority
                                                                  : NULL;
        rc = field ? cr_request_set(r, field, v, vlen) : CR_EPROTO;
        if (field == &r->path && vlen > h->c->w->cfg->http.max_uri) {
            r->status = 414; /* answered once the head is complete */
            return 0;
        }
    } else {
        rc = cr_request_add_header(r, n, nlen, v, vlen);
    }
    if (rc == CR_ELIMIT) {
        r->status = 431; /* answered once the head is complete */
        return 0;
    }
    return rc < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

static void head_complete(struct h2 *h, struct cr_request *r, bool end_stream)
{
    r->has_body = !end_stream;
    const struct cr_hdr *cl = cr_request_hdr(r, "content-length");
    if (cl)
        r->req_clen = strtoll(cl->value, NULL, 10);
    const struct cr_cfg_http *hc = &h->c->w->cfg->http;
    if (r->status == 431 || r->status == 414) {
        int st = r->status;
        r->status = 0;
        cr_request_respond(r, st, st == 431 ? "request header fields too large" : "uri too long",
                           NULL);
    } else if (r->has_body && hc->max_body && r->req_clen > (int64_t)hc->max_body) {
        cr_request_respond(r, 413, "request body too large", NULL);
    } else {
        h->submit(r);
    }
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
    struct h2 *h = arg;
    struct cr_request *r = f->hd.stream_id ? stream_req(h, f->hd.stream_id) : NULL;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (!r)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && r->state == CR_REQ_HEAD) {
        head_complete(h, r, end);
        if (end)
            cr_request_body_end(r);
    } else if (end && (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS)) {
        cr_request_body_end(r); /* the last DATA, or trailers */
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *arg)
{
    struct h2 *h = arg;
    struct cr_request *r = stream_req(h, sid);
    if (!r || !r->be_held) {
        nghttp2_session_consume(ng, sid, len); /* nobody wants it: keep the window open */
        if (r)
            r->bytes_in += len;
        return 0;
    }
    int rc = cr_request_body(r, data, len);
    if (rc == CR_ELIMIT) {
        nghttp2_session_consume(ng, sid, len);
        cr_request_respond(r, 413, "request body too large", NULL);
        return 0;
    }
    if (rc < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    /* The client's window reopens as the upstream takes the bytes. */
    if (cr_request_body_pending(r) < CR_REQUEST_BUF_HIGH)
        nghttp2_session_consume(ng, sid, len + r->fe_unconsumed), r->fe_unconsumed = 0;
    else
        r->fe_unconsumed += len;
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error, void *arg)
{
    struct h2 *h = arg;
    struct cr_request *r = stream_req(h, sid);
    if (!r)
        return 0;
    nghttp2_session_set_stream_user_data(ng, sid, NULL);
    h->nstreams--;
    if (r->fe_unconsumed) { /* held back for backpressure: the stream is gone */
        nghttp2_session_consume_connection(ng, r->fe_unconsumed);
        r->fe_unconsumed = 0;
    }
    if (!r->resp_eof && r->method) {
        r->reason = "client reset the stream";
        r->resp_aborted = true;
    }
    cr_request_release_fe(r);
    if (h->nstreams == 0)
        cr_conn_set_timer(h->c, h->c->w->cfg->http.idle_timeout_ms);
    return 0;
}

/* ------------------------------------------------------------ responses */

static ssize_t body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    struct cr_request *r = src->ptr;
    if (r->resp_aborted)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM INTERNAL_ERROR */
    size_t have = evbuffer_get_length(r->resp_body);
    if (have == 0 && !r->resp_eof)
        return NGHTTP2_ERR_DEFERRED;
    int n = evbuffer_remove(r->resp_body, buf, CR_MIN(have, len));
    if (n < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (r->resp_eof && evbuffer_get_length(r->resp_body) == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (n > 0)
        cr_request_resp_consumed(r, (size_t)n);
    return n;
}

static void fe_head(struct cr_request *r)
{
    struct h2 *h = r->fe_data;
    char status[4];
    snprintf(status, sizeof(status), "%03d", r->status);
    size_t n = 1 + r->rhdrs.n;
    nghttp2_nv stackv[64];
    nghttp2_nv *nva = n <= CR_ARRAY_LEN(stackv) ? stackv : malloc(n * sizeof(*nva));
    if (!nva) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, r->fe_stream, NGHTTP2_INTERNAL_ERROR);
        cr_conn_want_flush(h->c);
        return;
    }
    nva[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, 0};
    for (uint32_t i = 0; i < r->rhdrs.n; i++)
        nva[1 + i] = (nghttp2_nv){(uint8_t *)r->rhdrs.v[i].name, (uint8_t *)r->rhdrs.v[i].value,
                                  r->rhdrs.v[i].nlen, r->rhdrs.v[i].vlen, 0};
    bool no_body = r->resp_eof && evbuffer_get_length(r->resp_body) == 0;
    nghttp2_data_provider prd = {.source.ptr = r, .read_callback = body_read};
    nghttp2_submit_response(h->ng, r->fe_stream, nva, n, no_body ? NULL : &prd);
    if (nva != stackv)
        free(nva);
    cr_conn_want_flush(h->c);
}

static void fe_body(struct cr_request *r)
{
    struct h2 *h = r->fe_data;
    if (r->state < CR_REQ_RESPONDING)
        return;
    nghttp2_session_resume_data(h->ng, r->fe_stream);
    cr_conn_want_flush(h->c);
}

static void fe_drained(struct cr_request *r)
{
    struct h2 *h = r->fe_data;
    if (r->fe_unconsumed) {
        nghttp2_session_consume(h->ng, r->fe_stream, r->fe_unconsumed);
        r->fe_unconsumed = 0;
        cr_conn_want_flush(h->c);
    }
}

static void fe_end(struct cr_request *r)
{
    struct h2 *h = r->fe_data;
    if (r->resp_aborted) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, r->fe_stream, NGHTTP2_INTERNAL_ERROR);
        cr_conn_want_flush(h->c);
        return;
    }
    fe_body(r);
}

static const struct cr_fe_ops h2_fe = {
    .response_head = fe_head,
    .response_body = fe_body,
    .response_end = fe_end,
    .request_drained = fe_drained,
};

/* ------------------------------------------------------------ connection */

static int h2_on_data(struct cr_conn *c, const uint8_t *data, size_t len)
{
    struct h2 *h = c->proto_data;
    ssize_t rc = nghttp2_session_mem_recv(h->ng, data, len);
    if (rc < 0) {
        cr_log_debug("conn %llu from %s: HTTP/2: %s", (unsigned long long)c->id, c->client,
                     nghttp2_strerror((int)rc));
        return -1;
    }
    cr_conn_want_flush(c);
    return 0;
}

static void h2_on_writable(struct cr_conn *c)
{
    struct h2 *h = c->proto_data;
    while (cr_conn_pending(c) < H2_OUT_HIGH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->ng, &data);
        if (n < 0) {
            cr_conn_close(c, false);
            return;
        }
        if (n == 0)
            break;
        evbuffer_add(c->out, data, (size_t)n);
    }
    if (cr_conn_pending(c) == 0 && !nghttp2_session_want_read(h->ng) &&
        !nghttp2_session_want_write(h->ng))
        cr_conn_close(c, true);
    else if (h->goaway && h->nstreams == 0 && cr_conn_pending(c) == 0 &&
             !nghttp2_session_want_write(h->ng))
        cr_conn_close(c, true);
}

static void h2_on_drain(struct cr_conn *c)
{
    struct h2 *h = c->proto_data;
    if (h->goaway)
        return;
    h->goaway = true;
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    cr_conn_want_flush(c);
}

static void h2_on_timer(struct cr_conn *c)
{
    struct h2 *h = c->proto_data;
    if (h->nstreams == 0)
        h2_on_drain(c); /* idle: say goodbye properly */
}

static void h2_on_free(struct cr_conn *c)
{
    struct h2 *h = c->proto_data;
    /* nghttp2_session_del does not report the streams it drops */
    for (int32_t sid = 1; h->nstreams > 0 && sid > 0 &&
                          sid <= nghttp2_session_get_last_proc_stream_id(h->ng);
         sid += 2) {
        struct cr_request *r = stream_req(h, sid);
        if (!r)
            continue;
        nghttp2_session_set_stream_user_data(h->ng, sid, NULL);
        h->nstreams--;
        if (!r->resp_eof && r->method) {
            r->reason = "client closed the connection";
            r->resp_aborted = true;
        }
        cr_request_release_fe(r);
    }
    nghttp2_session_del(h->ng);
    free(h);
    c->proto_data = NULL;
}

static const struct cr_proto_ops h2_ops = {
    .name = "h2",
    .on_data = h2_on_data,
    .on_writable = h2_on_writable,
    .on_drain = h2_on_drain,
    .on_timer = h2_on_timer,
    .on_free = h2_on_free,
};

int cr_h2_attach(struct cr_conn *c, cr_request_submit_cb submit)
{
    struct h2 *h = calloc(1, sizeof(*h));
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    if (!h || nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    h->c = c;
    h->submit = submit;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    if (nghttp2_session_server_new2(&h->ng, cb, h, opt) != 0)
        goto fail;
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    const struct cr_cfg_http *hc = &c->w->cfg->http;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, hc->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)hc->max_header_size},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, CR_ARRAY_LEN(iv));
    c->proto = &h2_ops;
    c->proto_data = h;
    cr_conn_set_timer(c, hc->idle_timeout_ms);
    cr_conn_want_flush(c);
    return 0;
fail:
    if (opt)
        nghttp2_option_del(opt);
    if (cb)
        nghttp2_session_callbacks_del(cb);
    free(h);
    return CR_ENOMEM;
}
