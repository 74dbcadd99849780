/* h2.c - HTTP/2 server side: an nghttp2 server session per connection. */
#include "ac_config.h"

#include "h2.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "gcra.h"
#include "log.h"
#include "request.h"
#include "ws.h"

#define H2_OUT_HIGH (64 * 1024)
#define H2_STREAM_WINDOW (256 * 1024)
#define H2_MAX_FRAME 16384     /* SETTINGS_MAX_FRAME_SIZE: the default, never raised */
#define H2_MAX_SETTINGS 32     /* entries in one SETTINGS frame (7 are defined) */
#define H2_MAX_OUTBOUND_ACK 64 /* PING/SETTINGS ACKs queued for a client not reading */
#define H2_TICK_MIN_MS 10      /* the stall timer never re-arms sooner */
/* WINDOW_UPDATEs a client may send without touching its budget of control
 * frames: two (its stream's and its connection's) for each DATA frame sent
 * to it, banked up to this many */
#define H2_WU_CREDIT_MAX 1024

/* fe_flags of a request on an h2 connection */
#define H2_FE_STALLED 1 /* reset for "client send stalled" */
#define H2_FE_LIVE 2    /* submitted, its response not all handed to nghttp2: in nlive */
#define H2_FE_SHUT 4    /* live, and its stream's window holds its response: in nshut */
#define H2_FE_REFUSED 8 /* refused with REFUSED_STREAM: "client not reading" */
#define H2_FE_BODY_TIMEOUT 16 /* its body stopped coming: "request body timeout" */
#define H2_FE_WINDOWED 32     /* its stream's window has been open (> 0) */
#define H2_FE_TUN_END 64      /* a tunnel corral ended (its close handshake): RST_STREAM NO_ERROR */
/* What a client may send of a body after corral's early answer to it
 * before its stream is reset (on_frame_send). */
#define H2_EARLY_DRAIN (64 * 1024)

/* The least SETTINGS_MAX_FRAME_SIZE (RFC 9113 6.5.2): a stream window this
 * large takes a whole DATA frame (held_by_client) */
#define H2_FRAME_MIN 16384

struct h2 {
    struct cr_conn *c;
    cr_request_submit_cb submit; /* where complete heads go */
    nghttp2_session *ng;
    TAILQ_HEAD(, cr_request) reqs; /* the requests of its open streams */
    uint32_t nstreams;             /* how many */
    uint32_t nlive;                /* of those, H2_FE_LIVE */
    uint32_t nshut;                /* of those, H2_FE_SHUT */
    uint32_t nstalled;             /* of the streams, H2_FE_STALLED (reset, not closed yet) */
    bool goaway;                   /* the final GOAWAY is out: close once its streams are done */
    struct event *final; /* draining: the final GOAWAY, H2_DRAIN_RTT_MS after the notice */
    const char *calm;     /* the flood GOAWAY ENHANCE_YOUR_CALM answered, or NULL */
    size_t hblock;        /* bytes of the header block being received */
    uint32_t hconts;      /* its CONTINUATION frames */
    uint64_t hblock_us;   /* it began (its HEADERS frame) at; 0: no block is open */
    int32_t hblock_sid;   /* its stream */
    uint32_t wu_credit;   /* WINDOW_UPDATEs owed to DATA sent (H2_WU_CREDIT_MAX) */
    uint64_t data_us;     /* the last DATA frame left at */
    /* the connection's send clock (held_by_connection): started at, and
     * what the client's TCP had acknowledged then; 0: not running */
    uint64_t tx_us, tx_acked;
    /* the client's frame budgets (gcra.h words: zero is a full bucket) */
    _Atomic uint64_t tat_resets, tat_pings, tat_settings, tat_empty, tat_control;
};

static const struct cr_fe_ops h2_fe;

/* Between the shutdown notice and the final GOAWAY of a drain: a round trip
 * with room to spare (nghttpx and h2o wait about a second). */
#define H2_DRAIN_RTT_MS 1000
/* the PING sent with the shutdown notice: its ACK says the client has read
 * the notice, so every stream it opened before is in */
static const uint8_t H2_DRAIN_PING[8] = {'c', 'r', 'd', 'r', 'a', 'i', 'n', 0};

/* ------------------------------------------------------------ requests */

static struct cr_request *stream_req(struct h2 *h, int32_t sid)
{
    return nghttp2_session_get_stream_user_data(h->ng, sid);
}

/* ------------------------------------------------------------ clients not reading */

/* What one connection may hold of the upstream while its client does not
 * read: at most http.h2_max_stalled_streams requests in flight whose
 * responses cannot move to it. A request is live (H2_FE_LIVE, counted
 * in nlive) from its submission until the last of its response is handed
 * to nghttp2 or its stream ends; a live request is shut (H2_FE_SHUT, in
 * nshut) while its stream's send window is <= 0 or smaller than what is
 * buffered for it already, since fe_shut_us. A bulk download from a client
 * that reads is shut many times a second, a moment each time: a shut
 * request is held, and counts, only once its client has neither opened
 * its window nor taken a DATA frame of it for a tenth of send_timeout
 * (stall_grace_us), or at once when its window has never been open (a
 * client whose SETTINGS_INITIAL_WINDOW_SIZE is 0 and that sent no
 * WINDOW_UPDATE for it). While the connection's send window is <= 0 and no
 * DATA has left for as long, every live request is held. The flags are
 * updated where a window or a buffer changes (stream_recount), so the
 * check at each new request costs nothing more than a look at the
 * connection's window until nshut reaches the bound; then it walks the
 * streams. A client that stops reading its socket altogether may keep
 * every window wide open: once it has taken nothing for as long
 * (output_stuck), every live request counts too. */
static void stream_recount(struct h2 *h, struct cr_request *r)
{
    bool shut = false;
    if (r->fe_flags & H2_FE_LIVE) {
        /* -1 when the stream is gone: shut, but it is no longer live then */
        int32_t w = nghttp2_session_get_stream_remote_window_size(h->ng, r->fe_stream);
        if (w > 0)
            r->fe_flags |= H2_FE_WINDOWED;
        shut = w <= 0 || evbuffer_get_length(r->resp_body) > (size_t)w;
    }
    if (shut == ((r->fe_flags & H2_FE_SHUT) != 0))
        return;
    r->fe_flags ^= H2_FE_SHUT;
    if (shut) {
        h->nshut++;
        r->fe_shut_us = cr_now_us();
    } else {
        h->nshut--;
    }
}

/* The client moved r's response along (opened its window, or a DATA frame
 * of it left): a wait on its window starts again. */
static void stream_moved(struct h2 *h, struct cr_request *r)
{
    stream_recount(h, r);
    if (r->fe_flags & H2_FE_SHUT)
        r->fe_shut_us = cr_now_us();
}

/* The caller recounts r (stream_recount) before nshut is next read. */
static void stream_live(struct h2 *h, struct cr_request *r)
{
    if (r->fe_flags & H2_FE_LIVE)
        return;
    r->fe_flags |= H2_FE_LIVE;
    h->nlive++;
}

/* r's response is all with nghttp2 (or broken off): it waits on nothing. */
static void stream_unlive(struct h2 *h, struct cr_request *r)
{
    if (!(r->fe_flags & H2_FE_LIVE))
        return;
    r->fe_flags &= ~H2_FE_LIVE;
    h->nlive--;
    stream_recount(h, r);
}

/* How long a window or a socket must hold a response before the client
 * counts as not reading: a tenth of send_timeout (3 s by default). */
static uint64_t stall_grace_us(const struct cr_cfg_http *hc)
{
    return CR_MAX(hc->send_timeout_ms / 10, (uint64_t)H2_TICK_MIN_MS) * 1000;
}

/* Whether the client has stopped reading its socket, whatever its windows
 * say: it has acknowledged next to nothing of corral's output for
 * stall_grace_us (cr_conn_write_stuck_ms). */
static bool output_stuck(struct h2 *h)
{
    uint64_t ms = cr_conn_write_stuck_ms(h->c);
    return ms > 0 && ms * 1000 >= stall_grace_us(&h->c->w->cfg->http);
}

/* Requests in flight whose responses the client holds: its flow control,
 * or, when it does not read at all, every one; and those reset for it
 * (check_streams) whose reset it has not read yet (nstalled). Exact once
 * it reaches bound; below, it may count shut requests that are not held
 * yet. */
static uint32_t stalled_streams(struct h2 *h, uint32_t bound)
{
    const struct cr_cfg_http *hc = &h->c->w->cfg->http;
    if (h->nlive + h->nstalled < bound)
        return h->nlive + h->nstalled; /* no clock read, no system call */
    uint64_t now = cr_now_us(), grace = stall_grace_us(hc);
    if ((nghttp2_session_get_remote_window_size(h->ng) <= 0 && now - h->data_us >= grace) ||
        output_stuck(h))
        return h->nlive + h->nstalled;
    if (h->nshut + h->nstalled < bound)
        return h->nshut + h->nstalled;
    uint32_t n = h->nstalled; /* at most max_streams, and only while nshut is at the bound */
    for (struct cr_request *r = TAILQ_FIRST(&h->reqs); r; r = TAILQ_NEXT(r, felink))
        if ((r->fe_flags & H2_FE_SHUT) &&
            (!(r->fe_flags & H2_FE_WINDOWED) || now - r->fe_shut_us >= grace))
            n++;
    return n;
}

/* The client's SETTINGS_INITIAL_WINDOW_SIZE changed every stream's window:
 * at most max_streams of them, and SETTINGS frames are budgeted. */
static void recount_all(struct h2 *h)
{
    for (struct cr_request *r = TAILQ_FIRST(&h->reqs); r; r = TAILQ_NEXT(r, felink))
        stream_recount(h, r);
}

/* A new request on a connection whose client holds as many stalled ones
 * as it may: RST_STREAM REFUSED_STREAM, before admission sees it. Not a
 * 503: REFUSED_STREAM tells the client that nothing of the request was
 * processed, so that it may retry any method (RFC 9113 8.7), and browsers
 * and curl do so without bothering the application; it
 * costs a 13-byte frame and no HPACK state, where a 503 would be a response
 * the client cannot read either - its body would wait on the shut window
 * like the others. The access log says "client not reading". */
static void refuse_not_reading(struct h2 *h, struct cr_request *r, uint32_t stalled)
{
    r->fe_flags |= H2_FE_REFUSED;
    r->reason = "client not reading";
    r->resp_aborted = true;
    cr_request_set_state(r, CR_REQ_DONE); /* trailers arriving before the reset is out are not a head */
    cr_log_debug("conn %llu from %s: HTTP/2 stream %d refused: client not reading (%u stalled)",
                 (unsigned long long)h->c->id, h->c->client, (int)r->fe_stream, stalled);
    nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, r->fe_stream, NGHTTP2_REFUSED_STREAM);
    cr_conn_want_flush(h->c);
}

/* ------------------------------------------------------------ floods */

/* A header block past this many bytes is far over any acceptable header
 * list: every field costs at most its name and value and a few bytes of
 * prefix on the wire, and 32 more in the list (RFC 9113 6.5.2). */
static size_t hblock_max(const struct cr_cfg_http *hc)
{
    return 2 * hc->max_header_size + H2_MAX_FRAME;
}

/* CONTINUATION frames one header block may take: as many as hblock_max
 * needs in full frames, and at least 8 (nghttp2's own default). */
static uint32_t hconts_max(const struct cr_cfg_http *hc)
{
    return CR_MAX((uint32_t)(hblock_max(hc) / H2_MAX_FRAME) + 1, 8u);
}

/* One frame of a kind whose budget is `per_s` a second in bursts of as
 * many: false when the bucket is empty. */
static bool budget_take(_Atomic uint64_t *tat, uint32_t per_s)
{
    return cr_gcra_take(tat, (double)per_s, per_s, cr_now_us(), NULL) == 0;
}

/* Ends the connection over a flood: GOAWAY ENHANCE_YOUR_CALM, nothing more
 * read; it closes once the GOAWAY is written (h2_on_writable). */
static void calm_down(struct h2 *h, const char *why)
{
    if (h->calm)
        return;
    h->calm = why;
    cr_log_info("conn %llu from %s: HTTP/2 %s: GOAWAY ENHANCE_YOUR_CALM",
                (unsigned long long)h->c->id, h->c->client, why);
    nghttp2_session_terminate_session(h->ng, NGHTTP2_ENHANCE_YOUR_CALM);
    cr_conn_pause_read(h->c, true);
    cr_conn_want_flush(h->c);
}

/* How often the watch over the connection's streams runs while it has
 * some (or a header block is open): no deadline it keeps is shorter, so
 * one that is set later than the timer was armed is never missed. */
static uint64_t watch_ms(const struct cr_cfg_http *hc)
{
    return CR_MIN(CR_MIN(hc->send_timeout_ms, hc->body_timeout_ms), hc->header_timeout_ms);
}

/* Every frame's header, before nghttp2 acts on it: the budgets are taken
 * here, so that a frame over budget costs nothing more (no ACK queued, no
 * stream made). */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *arg)
{
    struct h2 *h = arg;
    const struct cr_cfg_http *hc = &h->c->w->cfg->http;
    bool ack = hd->flags & NGHTTP2_FLAG_ACK;
    bool empty = false; /* a frame that carries nothing and does nothing */
    const char *flood = NULL;
    if (hd->type != NGHTTP2_CONTINUATION)
        h->hblock_us = 0; /* no block is open across another frame (nghttp2 ends the
                           * connection on one that comes in the middle of it) */
    switch (hd->type) {
    case NGHTTP2_RST_STREAM:
        if (!budget_take(&h->tat_resets, hc->h2_max_resets))
            flood = "RST_STREAM flood";
        break;
    case NGHTTP2_PING:
        if (!ack && !budget_take(&h->tat_pings, hc->h2_max_pings))
            flood = "PING flood";
        break;
    case NGHTTP2_SETTINGS:
        if (!ack && !budget_take(&h->tat_settings, hc->h2_max_settings))
            flood = "SETTINGS flood";
        break;
    case NGHTTP2_DATA: /* an empty DATA ending a body does something */
        empty = hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM);
        break;
    case NGHTTP2_HEADERS:
        h->hblock = hd->length;
        h->hconts = 0;
        h->hblock_us = cr_now_us(); /* until on_frame_recv has the whole block */
        h->hblock_sid = hd->stream_id;
        if (h->nstreams == 0) /* the idle timer is too slow a watch */
            cr_conn_set_timer(h->c, watch_ms(hc));
        empty = hd->length == 0;
        break;
    case NGHTTP2_PRIORITY:
        if (!budget_take(&h->tat_control, hc->h2_max_control_frames))
            flood = "PRIORITY flood";
        break;
    case NGHTTP2_WINDOW_UPDATE:
        if (h->wu_credit > 0)
            h->wu_credit--; /* reopens a window DATA of ours used */
        else if (!budget_take(&h->tat_control, hc->h2_max_control_frames))
            flood = "WINDOW_UPDATE flood";
        break;
    case NGHTTP2_CONTINUATION:
        h->hblock += hd->length;
        empty = hd->length == 0;
        if (h->hblock > hblock_max(hc))
            flood = "header block too large";
        else if (++h->hconts > hconts_max(hc))
            flood = "CONTINUATION flood";
        break;
    }
    if (!flood && empty && !budget_take(&h->tat_empty, hc->h2_max_empty_frames))
        flood = "empty frame flood";
    if (!flood)
        return 0;
    calm_down(h, flood);
    return NGHTTP2_ERR_CALLBACK_FAILURE; /* nghttp2 reads no further */
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
    TAILQ_INSERT_TAIL(&h->reqs, r, felink);
    /* from idle to the watch over its streams: on_begin_frame armed it for
     * this HEADERS frame already when nstreams was 0, a moment ago */
    h->nstreams++;
    r->fe_hleft = h->c->w->cfg->http.max_header_size;
    return 0;
}

/* A field of the request's trailer section (nghttp2 has checked that it
 * ends the stream and holds no pseudo-field): kept for the upstream
 * (r->req_trailers) while the request may still reach it; past the limits
 * of a header list, the rest of the section is dropped with its stream
 * reset (a trailer cut short would say something else). */
static int on_trailer(struct h2 *h, struct cr_request *r, const uint8_t *name, size_t nlen,
                      const uint8_t *value, size_t vlen)
{
    if (!r->be_held || r->up_cancelled || r->state > CR_REQ_RESPONDING)
        return 0; /* nobody will send them on */
    int rc = cr_request_add_trailer(r, (const char *)name, nlen, (const char *)value, vlen);
    if (rc == 0)
        return 0;
    if (rc == CR_ELIMIT && r->state < CR_REQ_RESPONDING) {
        cr_request_respond(r, 431, "request trailer fields too large", NULL);
        return 0;
    }
    (void)h;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
}

/* An extended CONNECT's :protocol (RFC 8441 4; nghttp2 has checked that it
 * comes with CONNECT, :scheme, :path and :authority): "websocket" makes
 * the stream a tunnel (r->upgrade). Any other protocol is refused as it
 * was before corral advertised SETTINGS_ENABLE_CONNECT_PROTOCOL: the
 * stream is reset with PROTOCOL_ERROR, and the request ends there. */
static int on_protocol(struct h2 *h, struct cr_request *r, const char *v, size_t vlen)
{
    if (vlen == 9 && strncasecmp(v, "websocket", 9) == 0) {
        r->upgrade = "websocket";
        return 0;
    }
    r->reason = "unsupported :protocol";
    r->resp_aborted = true;
    cr_request_set_state(r, CR_REQ_DONE); /* its head never completes */
    cr_log_debug("conn %llu from %s: HTTP/2 stream %d: :protocol %.*s refused",
                 (unsigned long long)h->c->id, h->c->client, (int)r->fe_stream,
                 (int)CR_MIN(vlen, (size_t)64), v);
    nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, r->fe_stream, NGHTTP2_PROTOCOL_ERROR);
    cr_conn_want_flush(h->c);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
    struct h2 *h = arg;
    struct cr_request *r = stream_req(h, f->hd.stream_id);
    if (!r || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return on_trailer(h, r, name, nlen, value, vlen);
    if (r->status || r->state != CR_REQ_HEAD)
        return 0; /* refused already (431, 414, a :protocol): the rest of its fields cost nothing */
    /* the limit before any work: the header list as RFC 9113 6.5.2 counts
     * it, pseudo-headers included (what is left of max_header_size, set
     * by on_begin_headers) */
    size_t fsize = nlen + vlen + 32;
    if (fsize > r->fe_hleft) {
        r->status = 431; /* answered once the head is complete */
        return 0;
    }
    r->fe_hleft -= fsize;
    const char *n = (const char *)name, *v = (const char *)value;
    int rc;
    if (nlen && n[0] == ':') {
        char **field = nlen == 7 && !memcmp(n, ":method", 7)      ? &r->method
                       : nlen == 5 && !memcmp(n, ":path", 5)      ? &r->path
                       : nlen == 7 && !memcmp(n, ":scheme", 7)    ? &r->scheme
                       : nlen == 10 && !memcmp(n, ":authority", 10) ? &r->authority
                                                                  : NULL;
        if (!field && nlen == 9 && !memcmp(n, ":protocol", 9))
            return on_protocol(h, r, v, vlen);
        if (field == &r->path && vlen > h->c->w->cfg->http.max_uri) {
            r->status = 414; /* answered once the head is complete */
            return 0;
        }
        rc = field ? cr_request_set(r, field, v, vlen) : CR_EPROTO;
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
    uint32_t stalled;
    if (r->status == 431 || r->status == 414) {
        int st = r->status;
        r->status = 0;
        cr_request_respond(r, st, st == 431 ? "request header fields too large" : "uri too long",
                           NULL);
    } else if (r->upgrade && (end_stream || cl)) {
        /* a tunnel whose client side is closed already, or that declares
         * a body: no WebSocket handshake (RFC 8441 4, RFC 9113 8.5) */
        cr_request_respond(r, 400, "bad websocket request", NULL);
    } else if (r->has_body && cr_request_body_too_large(r, r->req_clen)) {
        cr_request_respond(r, 413, "request body too large", NULL);
    } else if ((stalled = stalled_streams(h, hc->h2_max_stalled_streams)) >=
               hc->h2_max_stalled_streams) {
        refuse_not_reading(h, r, stalled);
    } else {
        stream_live(h, r); /* before: submit may answer at once */
        h->submit(r);
        stream_recount(h, r); /* once, after: nothing reads nshut in between */
    }
    /* whatever became of it, the client holds its half open (a tunnel's
     * clock stands still while it waits for its answer or is open:
     * check_streams) */
    if (!end_stream)
        r->fe_body_us = cr_now_us();
}

static void goaway_final(struct cr_conn *c);

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
    struct h2 *h = arg;
    struct cr_request *r = f->hd.stream_id ? stream_req(h, f->hd.stream_id) : NULL;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS)
        h->hblock_us = 0; /* the whole block is in */
    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK) && h->final &&
        memcmp(f->ping.opaque_data, H2_DRAIN_PING, 8) == 0)
        goaway_final(h->c); /* the notice was read: what came before it is in */
    if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
        for (size_t i = 0; i < f->settings.niv; i++)
            if (f->settings.iv[i].settings_id == NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE) {
                recount_all(h); /* nghttp2 has applied it to every stream */
                break;
            }
    }
    if (!r)
        return 0;
    if (f->hd.type == NGHTTP2_WINDOW_UPDATE) {
        stream_moved(h, r);
    } else if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST &&
               r->state == CR_REQ_HEAD) {
        head_complete(h, r, end);
        if (end)
            cr_request_body_end(r);
    } else if (end && (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS)) {
        cr_request_body_end(r); /* the last DATA, or trailers */
    }
    if (end)
        r->fe_body_us = 0; /* the client's half is closed: nothing more to wait for */
    return 0;
}

/* A frame nghttp2 refused (a stream error: RST_STREAM is on its way). A
 * header block of such a HEADERS is skipped, not waited for. */
static int on_invalid_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, int err, void *arg)
{
    struct h2 *h = arg;
    if (f->hd.type == NGHTTP2_HEADERS)
        h->hblock_us = 0;
    return 0;
}

static void tunnel_end(struct h2 *h, struct cr_request *r);

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *arg)
{
    struct h2 *h = arg;
    struct cr_request *r = stream_req(h, sid);
    if (r && r->fe_body_us)
        r->fe_body_us = cr_now_us(); /* body_timeout runs from the last bytes */
    if (r && r->fe_tun && !(r->fe_flags & H2_FE_TUN_END) &&
        cr_ws_tun_in(r->fe_tun, data, len, cr_now_us())) {
        tunnel_end(h, r); /* the client answered corral's close (once) */
        nghttp2_session_consume(ng, sid, len);
        return 0;
    }
    if (!r || !r->be_held || r->up_cancelled) {
        nghttp2_session_consume(ng, sid, len); /* nobody wants it: keep the window open */
        if (r)
            r->bytes_in += len;
        if (r && r->fe_early_in && r->bytes_in - (r->fe_early_in - 1) > H2_EARLY_DRAIN) {
            r->fe_early_in = 0; /* still sending well after its answer: told to stop */
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_NO_ERROR);
        }
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

/* A DATA frame has left: its stream's window is smaller by its length
 * (nghttp2 counts it before calling here) and so is what waits for it, and
 * the client may answer it with WINDOW_UPDATEs. The end of an answer to a
 * request whose body timed out: the client is told to stop (RST_STREAM
 * NO_ERROR, RFC 9113 8.1). The end of one answered before its body was in
 * (corral's 413, 431, 414, 429, 503, or an upstream's early answer): the
 * client is told the same once it has sent H2_EARLY_DRAIN more that
 * nobody takes (on_data_chunk), not at once - curl 7.88 takes
 * a reset that reaches it before its upload ends for a failed transfer and
 * drops the 413, and a short remaining body costs nothing. DATA of it
 * already on its way arrives on a closed stream: nghttp2 drops it and
 * credits the connection's window (consumed at once with
 * no_auto_window_update). */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
    struct h2 *h = arg;
    struct cr_request *r = f->hd.stream_id ? stream_req(h, f->hd.stream_id) : NULL;
    if (f->hd.type == NGHTTP2_DATA) {
        h->wu_credit = CR_MIN(h->wu_credit + 2, (uint32_t)H2_WU_CREDIT_MAX);
        h->data_us = cr_now_us();
    }
    if (!r)
        return 0;
    if (f->hd.type == NGHTTP2_DATA)
        stream_moved(h, r);
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS))
        return 0;
    if (r->fe_flags & H2_FE_BODY_TIMEOUT)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    else if (r->fe_body_us) /* answered while its body still comes */
        r->fe_early_in = r->bytes_in + 1;
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error, void *arg)
{
    struct h2 *h = arg;
    struct cr_request *r = stream_req(h, sid);
    if (!r)
        return 0;
    nghttp2_session_set_stream_user_data(ng, sid, NULL);
    TAILQ_REMOVE(&h->reqs, r, felink);
    h->nstreams--;
    if (r->fe_flags & H2_FE_STALLED)
        h->nstalled--;
    stream_unlive(h, r);
    if (r->fe_unconsumed) { /* held back for backpressure: the stream is gone */
        nghttp2_session_consume_connection(ng, r->fe_unconsumed);
        r->fe_unconsumed = 0;
    }
    if (r->fe_tun) {
        /* an open tunnel's end, whoever ended it (a tunnel has no broken
         * response): logged 101 with who closed it, as h1.c logs one */
        r->resp_aborted = false;
        if (!r->reason)
            r->reason = cr_ws_tun_reason(r->fe_tun, r->resp_eof);
    } else if (!r->resp_eof && r->method && !(r->fe_flags & H2_FE_REFUSED)) {
        r->reason = "client reset the stream";
        r->resp_aborted = true;
    }
    free(r->fe_tun);
    r->fe_tun = NULL;
    cr_request_release_fe(r);
    if (h->nstreams == 0)
        cr_conn_set_timer(h->c, h->c->w->cfg->http.idle_timeout_ms);
    return 0;
}

/* ------------------------------------------------------------ responses */

/* The upstream's trailer section (grpc-status...), after the last DATA:
 * from body_read, as nghttp2 allows. Returns 0 or CR_ENOMEM (then the
 * last DATA ends the stream without them). */
static int submit_trailers(struct h2 *h, struct cr_request *r)
{
    size_t n = r->resp_trailers.n;
    nghttp2_nv stackv[32] = {{0}};
    nghttp2_nv *nva = n <= CR_ARRAY_LEN(stackv) ? stackv : malloc(n * sizeof(*nva));
    if (!nva)
        return CR_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct cr_hdr *t = &r->resp_trailers.v[i];
        nva[i] = (nghttp2_nv){(uint8_t *)t->name, (uint8_t *)t->value, t->nlen, t->vlen, 0};
    }
    int rc = nghttp2_submit_trailer(h->ng, r->fe_stream, nva, n);
    if (nva != stackv)
        free(nva);
    return rc == 0 ? 0 : CR_ENOMEM;
}

/* r's send clock (send_timeout, check_streams) starts again now: bytes of
 * its response wait for the client from now, or it took its due
 * (cr_conn_send_due) of them since the clock last started. */
static void stall_restart(struct cr_request *r, uint64_t now)
{
    r->fe_stall_us = now;
    r->fe_moved = 0;
}

/* Bytes of a response are left waiting (body_read): the connection's send
 * clock (held_by_connection) starts now unless it runs; check_streams
 * stops it when no response waits. */
static void tx_start(struct h2 *h, uint64_t now)
{
    if (!h->tx_us && cr_conn_acked(h->c, &h->tx_acked))
        h->tx_us = now;
}

/* An open tunnel's DATA: the upstream's frames, corral's own (a ping, the
 * close) between two of them, nothing of the upstream's after corral's
 * close (ws.h: cr_ws_tun). */
static ssize_t tunnel_read(struct h2 *h, struct cr_request *r, uint8_t *buf, size_t len,
                           uint32_t *flags)
{
    struct cr_ws_tun *t = r->fe_tun;
    uint64_t now = cr_now_us();
    size_t n = len >= 6 ? cr_ws_tun_own(t, buf) : 0;
    size_t have = evbuffer_get_length(r->resp_body);
    if (t->close_sent && have) {
        evbuffer_drain(r->resp_body, have);
        cr_request_resp_consumed(r, 0); /* room upstream again; no byte went out */
    }
    size_t k = cr_ws_tun_out(t, r->resp_body, CR_MIN(evbuffer_get_length(r->resp_body), len - n),
                             now);
    if (k > 0 && evbuffer_remove(r->resp_body, buf + n, k) != (int)k)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    n += k;
    size_t left = evbuffer_get_length(r->resp_body);
    if (r->resp_eof && left == 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF; /* the upstream ended it */
        if (!r->reason)
            r->reason = cr_ws_tun_reason(t, true);
        stream_unlive(h, r);
    } else if (n == 0) {
        r->fe_stall_us = 0; /* waiting for the upstream, or a frame's end */
        return NGHTTP2_ERR_DEFERRED;
    }
    if (!left)
        r->fe_stall_us = 0;
    else if (!r->fe_stall_us ||
             (r->fe_moved += (uint64_t)n) >= cr_conn_send_due(&h->c->w->cfg->http))
        stall_restart(r, now);
    if (left && !h->tx_us)
        tx_start(h, now);
    if (k > 0)
        cr_request_resp_consumed(r, k);
    return (ssize_t)n;
}

static ssize_t body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    struct h2 *h = arg;
    struct cr_request *r = src->ptr;
    if (r->resp_aborted)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM INTERNAL_ERROR */
    if (r->fe_tun)
        return tunnel_read(h, r, buf, len, flags);
    size_t have = evbuffer_get_length(r->resp_body);
    if (have == 0 && !r->resp_eof) {
        r->fe_stall_us = 0; /* waiting for the upstream, not the client */
        return NGHTTP2_ERR_DEFERRED;
    }
    int n = evbuffer_remove(r->resp_body, buf, CR_MIN(have, len));
    if (n < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t left = evbuffer_get_length(r->resp_body);
    if (!left)
        r->fe_stall_us = 0; /* it took all there was */
    else if (!r->fe_stall_us ||
             (r->fe_moved += (uint64_t)n) >= cr_conn_send_due(&h->c->w->cfg->http))
        stall_restart(r, cr_now_us()); /* a byte now and then does not: send_min_rate */
    if (left && !h->tx_us)
        tx_start(h, cr_now_us());
    if (r->resp_eof && left == 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (r->resp_trailers.n && submit_trailers(h, r) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM; /* the trailers end it */
        stream_unlive(h, r);
    }
    if (n > 0)
        cr_request_resp_consumed(r, (size_t)n);
    return n;
}

static void fe_head(struct cr_request *r)
{
    struct h2 *h = r->fe_data;
    char status[4];
    /* a tunnel the upstream accepted: 200, and the stream stays open for
     * its bytes both ways (RFC 8441 5) */
    bool tunnel = r->upgrade && r->status == 101;
    snprintf(status, sizeof(status), "%03d", tunnel ? 200 : r->status);
    if (tunnel && !r->fe_tun) {
        uint64_t now = cr_now_us();
        if (!(r->fe_tun = calloc(1, sizeof(*r->fe_tun)))) {
            nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, r->fe_stream,
                                      NGHTTP2_INTERNAL_ERROR);
            cr_conn_want_flush(h->c);
            return;
        }
        cr_ws_tun_start(r->fe_tun, now);
        if (h->c->w->draining)
            cr_ws_tun_drain(r->fe_tun, now, h->c->w->cfg->drain_timeout_ms);
        cr_conn_set_timer(h->c, H2_TICK_MIN_MS); /* check_streams arms its timers */
    } else if (r->upgrade && r->fe_body_us) {
        r->fe_body_us = cr_now_us(); /* refused: the rest of its upload is a body's */
    }
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
    bool no_body = r->resp_eof && evbuffer_get_length(r->resp_body) == 0 && !r->resp_trailers.n;
    nghttp2_data_provider prd = {.source.ptr = r, .read_callback = body_read};
    if (no_body)
        r->fe_stall_us = 0;
    else
        stall_restart(r, cr_now_us());
    nghttp2_submit_response(h->ng, r->fe_stream, nva, n, no_body ? NULL : &prd);
    if (nva != stackv)
        free(nva);
    if (no_body)
        stream_unlive(h, r); /* HEADERS are not flow-controlled */
    else
        stream_recount(h, r);
    cr_conn_want_flush(h->c);
}

static void fe_body(struct cr_request *r)
{
    struct h2 *h = r->fe_data;
    if (r->state < CR_REQ_RESPONDING)
        return;
    if (!r->fe_stall_us && evbuffer_get_length(r->resp_body))
        stall_restart(r, cr_now_us()); /* bytes wait for the client from now */
    stream_recount(h, r);
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
        stream_unlive(h, r);
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, r->fe_stream,
                                  r->fe_flags & H2_FE_TUN_END ? NGHTTP2_NO_ERROR
                                  : r->fe_flags & (H2_FE_STALLED | H2_FE_BODY_TIMEOUT)
                                      ? NGHTTP2_CANCEL
                                      : NGHTTP2_INTERNAL_ERROR);
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
    if (h->calm)
        return 0; /* read before the pause took hold: dropped */
    ssize_t rc = nghttp2_session_mem_recv(h->ng, data, len);
    if (rc < 0 && h->calm)
        return 0; /* a flood: the GOAWAY goes out, then the connection closes */
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

/* The GOAWAY that ends the connection: its last-stream-id is the last
 * stream corral took, which it finishes; the connection closes after. */
static void goaway_final(struct cr_conn *c)
{
    struct h2 *h = c->proto_data;
    if (h->goaway)
        return;
    h->goaway = true;
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    cr_conn_want_flush(c);
}

static void on_final(evutil_socket_t fd, short what, void *arg)
{
    struct cr_conn *c = arg;
    (void)fd, (void)what;
    if (c->state == CR_CONN_OPEN && c->proto_data)
        goaway_final(c);
}

/* Draining (a reload or a stop), as nghttpx and h2o do: a GOAWAY with the
 * largest stream id first (the shutdown notice: open no more streams), then,
 * the final one with the last stream taken once the client has answered
 * the PING sent with the notice (or after H2_DRAIN_RTT_MS), so that a
 * request the client sent before it read the notice is still answered
 * rather than dropped unprocessed. */
static void h2_on_drain(struct cr_conn *c)
{
    struct h2 *h = c->proto_data;
    struct cr_request *r;
    TAILQ_FOREACH(r, &h->reqs, felink) { /* tunnels live on until shortly before drain_timeout */
        if (r->fe_tun && !r->fe_tun->drain_at_us) {
            cr_ws_tun_drain(r->fe_tun, cr_now_us(), c->w->cfg->drain_timeout_ms);
            cr_conn_set_timer(c, H2_TICK_MIN_MS); /* check_streams arms for it */
        }
    }
    if (h->goaway || h->final)
        return;
    h->final = evtimer_new(c->w->base, on_final, c);
    if (!h->final || nghttp2_submit_shutdown_notice(h->ng) != 0 ||
        nghttp2_submit_ping(h->ng, NGHTTP2_FLAG_NONE, H2_DRAIN_PING) != 0) {
        goaway_final(c);
        return;
    }
    static const struct timeval rtt = {H2_DRAIN_RTT_MS / 1000, (H2_DRAIN_RTT_MS % 1000) * 1000};
    evtimer_add(h->final, &rtt);
    cr_conn_want_flush(c);
}

/* Response bytes wait for r's client, and the stream's own window is what
 * holds them: it is smaller than what waits and than a DATA frame (16 KB,
 * the least SETTINGS_MAX_FRAME_SIZE): a window that takes a whole frame
 * is not what keeps the bytes back, and one never used yet (64 KB by
 * default) is no sign of the client's. A client that reads its
 * socket but never opens a window, or opens it a byte at a time, would
 * otherwise hold the response, and the upstream stream carrying it, for
 * as long as it likes. The connection's window is not the stream's: the
 * streams share it (and the socket), and a stream that waits on it while
 * others take it - RFC 7540 priorities, or many in parallel - is judged
 * with the connection (held_by_connection), not alone. */
static bool held_by_client(struct h2 *h, const struct cr_request *r)
{
    size_t have = evbuffer_get_length(r->resp_body);
    if (r->state < CR_REQ_RESPONDING || r->resp_aborted || have == 0)
        return false;
    int64_t win = nghttp2_session_get_stream_remote_window_size(h->ng, r->fe_stream);
    return win < (int64_t)CR_MIN(have, (size_t)H2_FRAME_MIN);
}

/* Whether the connection holds the nwait responses that wait on it (its
 * window or its socket), whatever their own windows say: its client's TCP has acknowledged less than
 * cr_conn_send_due for each of them since its send clock started
 * (tx_start), send_timeout (limit) ago or more. A client that grants wide
 * windows but reads its socket slowly leaves the bytes in corral's
 * buffers, where no window shows them; the connection clock
 * (cr_conn_write_stuck_ms) asks only CR_CONN_OUT_PROGRESS per
 * body_timeout, for all its streams together. The clock starts again
 * whenever the client took that much. *left gets the time before it runs
 * out. Never where the socket does not say (not TCP). */
static bool held_by_connection(struct h2 *h, uint32_t nwait, uint64_t now, uint64_t limit,
                               uint64_t *left)
{
    uint64_t acked;
    *left = limit;
    if (!nwait || !cr_conn_acked(h->c, &acked))
        return false;
    uint64_t due = cr_conn_send_due(&h->c->w->cfg->http) * nwait;
    if (!h->tx_us || acked - h->tx_acked >= due) {
        h->tx_us = now;
        h->tx_acked = acked;
        return false;
    }
    uint64_t age = now > h->tx_us ? now - h->tx_us : 0;
    if (age < limit) {
        *left = limit - age;
        return false;
    }
    return true;
}

/* Whether r's response bytes wait for its client (its send clock runs
 * and corral holds some): held_by_client or held_by_connection judges
 * it. */
static bool waits(const struct cr_request *r)
{
    return r->fe_stall_us && r->state >= CR_REQ_RESPONDING && !r->resp_aborted &&
           evbuffer_get_length(r->resp_body) > 0;
}

/* r's request body stopped coming for body_timeout: 408 when its answer
 * has not begun (cr_request_respond cancels its upstream stream), else the
 * answer is broken off (RST_STREAM CANCEL), or, when it is whole (from the
 * upstream or corral's own 413, 431...), left to finish; then the client
 * is told to stop sending the body (RST_STREAM NO_ERROR once the answer's
 * END_STREAM is out: on_frame_send, or now when it is out already). */
static void body_timed_out(struct h2 *h, struct cr_request *r)
{
    r->fe_body_us = 0;
    r->fe_flags |= H2_FE_BODY_TIMEOUT;
    cr_log_debug("conn %llu from %s: HTTP/2 stream %d: request body timeout",
                 (unsigned long long)h->c->id, h->c->client, (int)r->fe_stream);
    if (r->resp_aborted)
        return; /* reset already */
    if (!r->resp_eof) {
        r->reason = "request body timeout";
        cr_request_respond(r, 408, "request body timeout", NULL);
        return;
    }
    if (!r->reason)
        r->reason = "request body timeout";
    nghttp2_stream *st = nghttp2_session_find_stream(h->ng, r->fe_stream);
    if (st && nghttp2_stream_get_state(st) == NGHTTP2_STREAM_STATE_HALF_CLOSED_LOCAL) {
        nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, r->fe_stream, NGHTTP2_NO_ERROR);
        cr_conn_want_flush(h->c);
    }
}

/* The time left (us) before r's request body times out, or limit when it
 * has just timed out or its clock stands still: while corral holds the
 * client's window shut (the upstream has not taken what came, for this
 * stream or, through the connection's window, another) the pause is not
 * the client's, and its body_timeout starts again once that is over. */
static uint64_t body_watch(struct h2 *h, struct cr_request *r, uint64_t now, uint64_t limit,
                           bool held_by_us)
{
    if (held_by_us || r->fe_unconsumed) {
        r->fe_body_us = now;
        return limit;
    }
    uint64_t age = now > r->fe_body_us ? now - r->fe_body_us : 0;
    if (age < limit)
        return limit - age;
    body_timed_out(h, r);
    return limit;
}

/* Whether the header block being received has been open for
 * header_timeout; *left gets the time it has left. A block nghttp2 skips
 * (its stream refused or gone) holds nothing. */
static bool hblock_overdue(struct h2 *h, uint64_t now, uint64_t *left)
{
    uint64_t limit = h->c->w->cfg->http.header_timeout_ms * 1000;
    if (!h->hblock_us)
        return false;
    if (h->hblock_sid <= nghttp2_session_get_last_proc_stream_id(h->ng) &&
        !nghttp2_session_find_stream(h->ng, h->hblock_sid)) {
        h->hblock_us = 0;
        return false;
    }
    uint64_t age = now > h->hblock_us ? now - h->hblock_us : 0;
    if (age >= limit)
        return true;
    *left = CR_MIN(*left, limit - age);
    return false;
}

/* Corral's close handshake with the client of tunnel r is over (its close
 * frame came back, or CR_WS_CLOSE_WAIT_MS passed): the stream is reset
 * (NO_ERROR), its upstream stream with it. */
static void tunnel_end(struct h2 *h, struct cr_request *r)
{
    const char *why = cr_ws_tun_reason(r->fe_tun, false);
    cr_log_debug("conn %llu from %s: HTTP/2 stream %d: tunnel ended (%s)",
                 (unsigned long long)h->c->id, h->c->client, (int)r->fe_stream, why);
    r->fe_flags |= H2_FE_TUN_END;
    cr_request_respond(r, 0, why, NULL);
    r->reason = why;
}

/* Tunnel r's timers (ws.h: cr_ws_tun_timer): corral's ping, its close at
 * the idle timeout or the drain, the end of the closing handshake.
 * Returns the time (us) to the next one. */
static uint64_t tunnel_watch(struct h2 *h, struct cr_request *r, uint64_t now)
{
    const struct cr_cfg_http *hc = &h->c->w->cfg->http;
    struct cr_ws_tun *t = r->fe_tun;
    switch (cr_ws_tun_timer(t, now, hc->tunnel_idle_timeout_ms, hc->tunnel_ping_ms)) {
    case CR_WS_TUN_GONE:
        tunnel_end(h, r); /* no close frame came back in time */
        return UINT64_MAX;
    case CR_WS_TUN_CLOSE:
        cr_log_debug("conn %llu from %s: HTTP/2 stream %d: closing its tunnel (%s)",
                     (unsigned long long)h->c->id, h->c->client, (int)r->fe_stream, t->why);
        cr_request_tunnel_close(r, t->close);
        fe_body(r); /* the frame goes at the next boundary (tunnel_read) */
        break;
    case CR_WS_TUN_PING:
        fe_body(r);
        break;
    case CR_WS_TUN_NONE:
        break;
    }
    uint64_t at = cr_ws_tun_next(t, hc->tunnel_idle_timeout_ms, hc->tunnel_ping_ms);
    return at == UINT64_MAX ? at : at > now ? at - now : 0;
}

/* The watch (the connection's timer while streams are open): answers 408
 * to every request whose body has not moved for body_timeout
 * (body_watch), resets every stream whose response has waited on the
 * client for send_timeout, having moved less than its due
 * (cr_conn_send_due: send_min_rate) in that time, held by its flow control
 * (held_by_client) or by a connection that moves less than its due for
 * each waiting stream (held_by_connection), cancelling its upstream
 * stream with it, and closes the connection (GOAWAY ENHANCE_YOUR_CALM) on a
 * header block open for header_timeout, all of which nghttp2 would wait
 * for; re-arms for the next one due, or for idleness when nothing is
 * left to watch. */
static void check_streams(struct h2 *h)
{
    const struct cr_cfg_http *hc = &h->c->w->cfg->http;
    uint64_t now = cr_now_us(), limit = hc->send_timeout_ms * 1000, next = watch_ms(hc) * 1000;
    uint64_t body_limit = hc->body_timeout_ms * 1000;
    if (hblock_overdue(h, now, &next)) {
        calm_down(h, "header block timeout");
        return;
    }
    if (h->nstreams == 0 && !h->hblock_us) {
        cr_conn_set_timer(h->c, hc->idle_timeout_ms);
        return;
    }
    bool recv_shut = nghttp2_session_get_local_window_size(h->ng) <= 0;
    uint32_t nwait = 0;
    struct cr_request *r;
    TAILQ_FOREACH (r, &h->reqs, felink)
        nwait += waits(r);
    if (!nwait)
        h->tx_us = 0; /* stopped: tx_start */
    r = TAILQ_FIRST(&h->reqs);
    int conn_held = -1; /* held_by_connection, asked once, when needed */
    uint64_t tx_left = limit;
    for (struct cr_request *nx; r; r = nx) {
        nx = TAILQ_NEXT(r, felink);
        if (r->upgrade && (!r->status || r->status == 101) && r->fe_body_us)
            r->fe_body_us = now; /* a tunnel's client may be silent: its own timers */
        if (r->fe_tun && !r->resp_aborted)
            next = CR_MIN(next, tunnel_watch(h, r, now));
        if (r->fe_body_us) {
            uint64_t left = body_watch(h, r, now, body_limit, recv_shut); /* once */
            next = CR_MIN(next, left);
        }
        if (!r->fe_stall_us)
            continue;
        uint64_t age = now > r->fe_stall_us ? now - r->fe_stall_us : 0;
        if (age < limit) {
            next = CR_MIN(next, limit - age);
            continue;
        }
        bool held = held_by_client(h, r);
        if (!held && waits(r)) {
            /* its window is open: what holds it is the connection (its
             * window or its socket) */
            if (conn_held < 0)
                conn_held = held_by_connection(h, nwait, now, limit, &tx_left);
            held = conn_held;
            next = CR_MIN(next, tx_left);
        }
        if (held) {
            r->fe_stall_us = 0;
            r->fe_flags |= H2_FE_STALLED;
            h->nstalled++;
            r->reason = "client send stalled";
            cr_request_respond(r, 0, "client send stalled", NULL); /* aborts: RST_STREAM */
        }
    }
    cr_conn_set_timer(h->c, CR_MAX(next / 1000, (uint64_t)H2_TICK_MIN_MS));
}

static void h2_on_timer(struct cr_conn *c)
{
    struct h2 *h = c->proto_data;
    if (h->nstreams == 0 && !h->hblock_us)
        h2_on_drain(c); /* idle: a request sent before the client reads the
                         * notice is still answered, as when draining */
    else
        check_streams(h);
}

static void h2_on_free(struct cr_conn *c)
{
    struct h2 *h = c->proto_data;
    /* nghttp2_session_del does not report the streams it drops */
    struct cr_request *r;
    while ((r = TAILQ_FIRST(&h->reqs)) != NULL) {
        TAILQ_REMOVE(&h->reqs, r, felink);
        nghttp2_session_set_stream_user_data(h->ng, r->fe_stream, NULL);
        h->nstreams--;
        if (!r->resp_eof && r->method && !(r->fe_flags & H2_FE_REFUSED)) {
            r->reason = h->calm        ? h->calm
                        : c->close_why ? c->close_why
                                       : "client closed the connection";
            r->resp_aborted = true;
        }
        free(r->fe_tun);
        r->fe_tun = NULL;
        cr_request_release_fe(r);
    }
    nghttp2_session_del(h->ng);
    if (h->final)
        event_free(h->final);
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
    const struct cr_cfg_http *hc = &c->w->cfg->http;
    h->c = c;
    h->submit = submit;
    TAILQ_INIT(&h->reqs);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    /* nghttp2's own flood limits, set rather than left to the version at
     * hand; those on_begin_frame enforces are looser here, a backstop */
    nghttp2_option_set_max_settings(opt, H2_MAX_SETTINGS);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
#ifdef HAVE_NGHTTP2_OPTION_SET_STREAM_RESET_RATE_LIMIT
    nghttp2_option_set_stream_reset_rate_limit(opt, 2 * (uint64_t)hc->h2_max_resets,
                                               2 * (uint64_t)hc->h2_max_resets);
#endif
#ifdef HAVE_NGHTTP2_OPTION_SET_MAX_CONTINUATIONS
    nghttp2_option_set_max_continuations(opt, hconts_max(hc) + 1);
#endif
    if (nghttp2_session_server_new2(&h->ng, cb, h, opt) != 0)
        goto fail;
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, hc->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)hc->max_header_size},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        /* RFC 8441: WebSockets over HTTP/2 streams (extended CONNECT) */
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
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
