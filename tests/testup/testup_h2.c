/* testup_h2.c - the HTTP/2 front end (nghttp2 server session). */
#include "testup_h2.h"

#include <inttypes.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "testup.h"
#include "testup_req.h"
#include "testup_ws.h"

#define TU_H2_STREAM_WINDOW (256 * 1024)
#define TU_H2_CONN_WINDOW (1024 * 1024)

struct tu_h2 {
    struct tu_conn *conn;
    struct tu_server *srv;
    nghttp2_session *session;
    struct tu_req *reqs;          /* the request of every open stream */
    size_t conn_unconsumed;       /* body bytes of closed streams never consumed */
    unsigned consume_pending : 1; /* some request has to_consume > 0 */
};

static void list_add(struct tu_h2 *h2, struct tu_req *req)
{
    struct tu_req_link *l = tu_req_link(req);

    l->prev = NULL;
    l->next = h2->reqs;
    if (h2->reqs)
        tu_req_link(h2->reqs)->prev = req;
    h2->reqs = req;
}

static void list_remove(struct tu_h2 *h2, struct tu_req *req)
{
    struct tu_req_link *l = tu_req_link(req);

    if (l->prev)
        tu_req_link(l->prev)->next = l->next;
    else
        h2->reqs = l->next;
    if (l->next)
        tu_req_link(l->next)->prev = l->prev;
}

static struct tu_req *stream_req(struct tu_h2 *h2, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(h2->session, stream_id);
}

/* Resets a stream whose request cannot go on. Returns 0 or CR_ENOMEM. */
static int reset_stream(struct tu_h2 *h2, int32_t stream_id)
{
    int rv = nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, stream_id,
                                       NGHTTP2_INTERNAL_ERROR);

    return nghttp2_is_fatal(rv) ? CR_ENOMEM : 0;
}

/* The data provider of a WebSocket stream: what the echo produced; the
 * stream ends once the WebSocket has ended (or the client ended its side)
 * and everything has been sent. */
static ssize_t ws_read(struct tu_req_link *l, uint8_t *buf, size_t length, uint32_t *data_flags)
{
    size_t n = evbuffer_get_length(l->ws_out);

    if (n > length)
        n = length;
    if (n > 0)
        evbuffer_remove(l->ws_out, buf, n);
    if (evbuffer_get_length(l->ws_out) == 0 && (l->ws_end || l->ws_eof)) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
        l->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static ssize_t data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct tu_h2 *h2 = user_data;
    struct tu_req *req = source->ptr;
    struct tu_req_link *l = tu_req_link(req);
    size_t n = tu_req_body_avail(req);
    (void)session;
    (void)stream_id;

    if (l->ws)
        return ws_read(l, buf, length, data_flags);
    if (n > length)
        n = length;
    if (n > 0) {
        tu_req_body_read(req, buf, n);
        if (tu_req_is_echo(req)) {
            /* Returned to the client's window after this send round. */
            l->to_consume += n;
            h2->consume_pending = 1;
        }
    }
    if (tu_req_body_eof(req)) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
        l->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

#define TU_NV(n, v, vlen)                                                                          \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NONE                \
    }

/* Submits the HEADERS (and data provider) of a ready request's answer. */
static int submit(struct tu_h2 *h2, struct tu_req *req)
{
    struct tu_req_link *l = tu_req_link(req);
    const char *ctype = tu_req_content_type(req);
    char status[8], clen[24];
    uint64_t len;
    nghttp2_data_provider prd = {.source = {.ptr = req}, .read_callback = data_read};
    nghttp2_nv nva[3] = {
        TU_NV(":status", status,
              (size_t)snprintf(status, sizeof(status), "%d", tu_req_status(req))),
        TU_NV("content-type", ctype, strlen(ctype)),
    };
    size_t nvlen = 2;
    int rv;

    if (tu_req_length(req, &len)) {
        nghttp2_nv cl =
            TU_NV("content-length", clen, (size_t)snprintf(clen, sizeof(clen), "%" PRIu64, len));
        nva[nvlen++] = cl;
    }
    l->head_sent = 1;
    rv = nghttp2_submit_response(h2->session, l->stream_id, nva, nvlen,
                                 tu_req_has_body(req) ? &prd : NULL);
    if (rv != 0)
        return reset_stream(h2, l->stream_id);
    if (tu_req_is_goaway(req) &&
        nghttp2_submit_goaway(h2->session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(h2->session),
                              NGHTTP2_NO_ERROR, NULL, 0) != 0)
        return CR_ENOMEM;
    return 0;
}

/* Moves a request's answer on: submits it once ready, resumes its data
 * once there is something to send. */
static int kick(struct tu_h2 *h2, struct tu_req *req)
{
    struct tu_req_link *l = tu_req_link(req);

    if (!tu_req_ready(req))
        return 0;
    if (!l->head_sent)
        return submit(h2, req);
    if (l->deferred && (tu_req_body_avail(req) > 0 || tu_req_body_eof(req))) {
        l->deferred = 0;
        if (nghttp2_session_resume_data(h2->session, l->stream_id) == NGHTTP2_ERR_NOMEM)
            return CR_ENOMEM;
    }
    return 0;
}

static void ready_cb(struct tu_req *req, void *arg);

/* Resumes a WebSocket stream's data once there is something to send or
 * the stream is to end. Returns 0 or CR_ENOMEM. */
static int ws_resume(struct tu_h2 *h2, struct tu_req_link *l)
{
    if (!l->deferred || (evbuffer_get_length(l->ws_out) == 0 && !l->ws_end && !l->ws_eof))
        return 0;
    l->deferred = 0;
    return nghttp2_session_resume_data(h2->session, l->stream_id) == NGHTTP2_ERR_NOMEM ? CR_ENOMEM
                                                                                      : 0;
}

static int flush(struct tu_h2 *h2);

static void ws_ping(struct tu_ws *ws, void *arg)
{
    struct tu_req_link *l = tu_req_link(arg);
    struct tu_h2 *h2 = l->ws_owner;
    int rv;

    if (!tu_conn_is_open(h2->conn) || l->ws_end || l->ws_eof)
        return;
    rv = tu_ws_ping(ws, l->ws_out);
    if (rv == 0)
        rv = ws_resume(h2, l);
    if (rv == 0)
        rv = flush(h2);
    if (rv != 0) {
        tu_conn_close(h2->conn, "HTTP/2 error");
        return;
    }
    tu_conn_update(h2->conn);
}

/* Whether req is an extended CONNECT for a WebSocket (RFC 8441) that
 * testup accepts (--connect-protocol). */
static int is_ws_connect(const struct tu_h2 *h2, const struct tu_req *req)
{
    const char *p = tu_req_header(req, ":protocol");

    return h2->srv->opts.connect_protocol && strcmp(tu_req_method(req), "CONNECT") == 0 &&
           p != NULL && strcmp(p, "websocket") == 0;
}

/* Accepts an extended CONNECT stream: :status 200 (and the first
 * Sec-WebSocket-Protocol offered) without END_STREAM; the DATA both ways
 * is the WebSocket. Returns 0 or CR_ENOMEM. */
static int ws_start(struct tu_h2 *h2, struct tu_req *req)
{
    struct tu_req_link *l = tu_req_link(req);
    const char *proto = tu_req_header(req, "sec-websocket-protocol");
    nghttp2_data_provider prd = {.source = {.ptr = req}, .read_callback = data_read};
    nghttp2_nv nva[2] = {TU_NV(":status", "200", 3)};
    size_t nvlen = 1;

    l->ws = 1;
    l->ws_owner = h2;
    l->ws_in = evbuffer_new();
    l->ws_out = evbuffer_new();
    if (l->ws_in == NULL || l->ws_out == NULL)
        return CR_ENOMEM;
    l->ws_state = tu_ws_new(h2->srv, ws_ping, req);
    if (l->ws_state == NULL)
        return CR_ENOMEM;
    if (proto != NULL) {
        nghttp2_nv p = TU_NV("sec-websocket-protocol", proto, strcspn(proto, ", \t"));
        nva[nvlen++] = p;
    }
    l->head_sent = 1;
    tu_req_answered(req); /* a tunnel, not a request in flight */
    if (nghttp2_submit_response(h2->session, l->stream_id, nva, nvlen, &prd) != 0)
        return reset_stream(h2, l->stream_id);
    return 0;
}

/* Frees what ws_start made. */
static void ws_free(struct tu_req *req)
{
    struct tu_req_link *l = tu_req_link(req);

    tu_ws_free(l->ws_state);
    if (l->ws_in)
        evbuffer_free(l->ws_in);
    if (l->ws_out)
        evbuffer_free(l->ws_out);
    l->ws_state = NULL;
    l->ws_in = l->ws_out = NULL;
}

/* WebSocket bytes from the client: echoed through tu_ws. Returns 0 or
 * CR_ENOMEM. */
static int ws_data(struct tu_h2 *h2, struct tu_req *req, const uint8_t *data, size_t len)
{
    struct tu_req_link *l = tu_req_link(req);
    int rv;

    if (l->ws_end)
        return 0;
    if (evbuffer_add(l->ws_in, data, len) != 0)
        return CR_ENOMEM;
    rv = tu_ws_feed(l->ws_state, l->ws_in, l->ws_out);
    if (rv == 1 || rv == -1) {
        l->ws_end = 1;
        rv = 0;
    }
    return rv == 0 ? ws_resume(h2, l) : rv;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct tu_h2 *h2 = user_data;
    struct tu_req *req;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    req = tu_req_new(h2->srv, tu_conn_seq(h2->conn), tu_conn_next_request(h2->conn), "HTTP/2",
                     ready_cb, h2);
    if (req == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
    tu_req_link(req)->stream_id = frame->hd.stream_id;
    if (nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, req) != 0) {
        tu_req_free(req);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    list_add(h2, req);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct tu_h2 *h2 = user_data;
    struct tu_req *req = stream_req(h2, frame->hd.stream_id);
    const char *n = (const char *)name, *v = (const char *)value;
    int rv;
    (void)session;
    (void)flags;

    if (req == NULL || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: ignored */
    if (namelen == 7 && memcmp(n, ":method", 7) == 0)
        rv = tu_req_set_method(req, v, valuelen);
    else if (namelen == 5 && memcmp(n, ":path", 5) == 0)
        rv = tu_req_append_target(req, v, valuelen);
    else
        rv = tu_req_add_header(req, n, namelen, v, valuelen);
    return rv == 0 ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

/* HEADERS or DATA complete for a stream: its head and/or its body. */
static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct tu_h2 *h2 = user_data;
    struct tu_req *req;
    int rv = 0;
    (void)session;

    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    req = stream_req(h2, frame->hd.stream_id);
    if (req == NULL)
        return 0;
    if (tu_req_link(req)->ws) {
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            tu_req_link(req)->ws_eof = 1;
            rv = ws_resume(h2, tu_req_link(req));
        }
        return rv == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        rv = tu_req_head_done(req);
        if (rv == 0 && is_ws_connect(h2, req)) {
            rv = ws_start(h2, req);
            if (rv == 0 && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
                tu_req_link(req)->ws_eof = 1;
                rv = ws_resume(h2, tu_req_link(req));
            }
            return rv == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
        }
    }
    if (rv == 0 && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        rv = tu_req_body_done(req);
    if (rv == 0)
        rv = kick(h2, req);
    else
        rv = reset_stream(h2, frame->hd.stream_id);
    return rv == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                              const uint8_t *data, size_t len, void *user_data)
{
    struct tu_h2 *h2 = user_data;
    struct tu_req *req = stream_req(h2, stream_id);
    size_t before, kept;
    int rv;
    (void)flags;

    if (req == NULL) {
        nghttp2_session_consume(session, stream_id, len);
        return 0;
    }
    if (h2->srv->opts.refuse_after_data > 0) { /* --refuse-after-data */
        h2->srv->opts.refuse_after_data--;
        nghttp2_session_consume(session, stream_id, len);
        rv = nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id,
                                       NGHTTP2_REFUSED_STREAM);
        return nghttp2_is_fatal(rv) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
    }
    if (tu_req_link(req)->ws) { /* consumed at once: the echo is not held back */
        nghttp2_session_consume(session, stream_id, len);
        return ws_data(h2, req, data, len) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    before = tu_req_buffered(req);
    rv = tu_req_body_in(req, data, len);
    if (rv != 0) {
        nghttp2_session_consume(session, stream_id, len);
        return reset_stream(h2, stream_id) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    kept = tu_req_buffered(req) - before;
    /* What the request did not keep is consumed now; /echo's bytes once
     * they have been sent back. */
    if (len > kept && nghttp2_session_consume(session, stream_id, len - kept) == NGHTTP2_ERR_NOMEM)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return kick(h2, req) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct tu_h2 *h2 = user_data;
    struct tu_req *req;
    (void)session;

    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    req = stream_req(h2, frame->hd.stream_id);
    if (req)
        tu_req_answered(req);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct tu_h2 *h2 = user_data;
    struct tu_req *req = stream_req(h2, stream_id);
    (void)error_code;

    if (req == NULL)
        return 0;
    /* Body received but never consumed still counts against the
     * connection window: return it after this round. */
    h2->conn_unconsumed += tu_req_buffered(req) + tu_req_link(req)->to_consume;
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    list_remove(h2, req);
    ws_free(req);
    tu_req_free(req);
    return 0;
}

/* Returns the windows of sent /echo bytes and of closed streams' leftovers.
 * Returns 1 if anything was consumed, 0 if not, or CR_ENOMEM. */
static int return_windows(struct tu_h2 *h2)
{
    struct tu_req *req;
    int any = 0;

    if (h2->conn_unconsumed > 0) {
        if (nghttp2_session_consume_connection(h2->session, h2->conn_unconsumed) ==
            NGHTTP2_ERR_NOMEM)
            return CR_ENOMEM;
        h2->conn_unconsumed = 0;
        any = 1;
    }
    if (!h2->consume_pending)
        return any;
    h2->consume_pending = 0;
    for (req = h2->reqs; req; req = tu_req_link(req)->next) {
        struct tu_req_link *l = tu_req_link(req);
        if (l->to_consume == 0)
            continue;
        if (nghttp2_session_consume(h2->session, l->stream_id, l->to_consume) == NGHTTP2_ERR_NOMEM)
            return CR_ENOMEM;
        l->to_consume = 0;
        any = 1;
    }
    return any;
}

/* Serialises frames into the output while it has room. */
static int flush(struct tu_h2 *h2)
{
    struct evbuffer *out = tu_conn_output(h2->conn);
    int rv;

    do {
        while (!tu_conn_output_full(h2->conn)) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(h2->session, &data);
            if (n < 0)
                return n == NGHTTP2_ERR_NOMEM ? CR_ENOMEM : CR_EPROTO;
            if (n == 0)
                break;
            if (evbuffer_add(out, data, (size_t)n) != 0)
                return CR_ENOMEM;
        }
        rv = return_windows(h2);
        if (rv < 0)
            return rv;
    } while (rv > 0 && !tu_conn_output_full(h2->conn));
    if (!nghttp2_session_want_read(h2->session) && !nghttp2_session_want_write(h2->session))
        tu_conn_close_after_flush(h2->conn); /* GOAWAY exchanged */
    return 0;
}

static void ready_cb(struct tu_req *req, void *arg)
{
    struct tu_h2 *h2 = arg;
    int rv;

    if (!tu_conn_is_open(h2->conn))
        return;
    rv = kick(h2, req);
    if (rv == 0)
        rv = flush(h2);
    if (rv != 0) {
        tu_conn_close(h2->conn, "HTTP/2 error");
        return;
    }
    tu_conn_update(h2->conn);
}

static int h2_on_read(void *state)
{
    struct tu_h2 *h2 = state;
    struct evbuffer *in = tu_conn_input(h2->conn);

    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        ssize_t n;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        n = nghttp2_session_mem_recv(h2->session, v.iov_base, v.iov_len);
        if (n < 0)
            return n == NGHTTP2_ERR_NOMEM ? CR_ENOMEM : CR_EPROTO;
        evbuffer_drain(in, (size_t)n);
    }
    return flush(h2);
}

static int h2_on_drain(void *state)
{
    return flush(state);
}

static int h2_want_read(void *state)
{
    const struct tu_h2 *h2 = state;

    return nghttp2_session_want_read(h2->session);
}

static void set_callbacks(nghttp2_session_callbacks *cbs)
{
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
}

/* Creates the server session. Returns 0 or CR_ENOMEM. */
static int new_session(struct tu_h2 *h2)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    int rv = CR_ENOMEM;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return CR_ENOMEM;
    if (nghttp2_option_new(&opt) != 0)
        goto fail_opt;
    set_callbacks(cbs);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    if (nghttp2_session_server_new2(&h2->session, cbs, h2, opt) == 0)
        rv = 0;
    nghttp2_option_del(opt);
fail_opt:
    nghttp2_session_callbacks_del(cbs);
    return rv;
}

static int h2_open(struct tu_conn *conn, void **state)
{
    struct tu_h2 *h2 = calloc(1, sizeof(*h2));
    nghttp2_settings_entry iv[3];
    size_t niv = 2;
    int rv;

    if (h2 == NULL)
        return CR_ENOMEM;
    h2->conn = conn;
    h2->srv = tu_conn_server(conn);
    rv = new_session(h2);
    if (rv != 0)
        goto fail_session;
    iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[0].value = h2->srv->opts.max_streams;
    iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
    iv[1].value = TU_H2_STREAM_WINDOW;
    if (h2->srv->opts.connect_protocol) {
        iv[niv].settings_id = NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL;
        iv[niv++].value = 1;
    }
    if (nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, iv, niv) != 0 ||
        nghttp2_session_set_local_window_size(h2->session, NGHTTP2_FLAG_NONE, 0,
                                              TU_H2_CONN_WINDOW) != 0) {
        rv = CR_ENOMEM;
        goto fail_settings;
    }
    *state = h2;
    return 0;

fail_settings:
    nghttp2_session_del(h2->session);
fail_session:
    free(h2);
    return rv;
}

static void h2_free(void *state)
{
    struct tu_h2 *h2 = state;

    /* nghttp2_session_del runs no callbacks: free the requests here. */
    nghttp2_session_del(h2->session);
    while (h2->reqs) {
        struct tu_req *req = h2->reqs;
        list_remove(h2, req);
        ws_free(req);
        tu_req_free(req);
    }
    free(h2);
}

const struct tu_proto tu_h2_proto = {
    .name = "HTTP/2",
    .open = h2_open,
    .on_read = h2_on_read,
    .on_drain = h2_on_drain,
    .want_read = h2_want_read,
    .on_free = h2_free,
};
