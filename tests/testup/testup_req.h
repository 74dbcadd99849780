/* testup_req.h - one request, independent of HTTP/1.1 or HTTP/2.
 *
 * A front end (testup_h1, testup_h2) creates a request, feeds it the head
 * (method, target, header fields), then the body, and asks it what to
 * answer. The request decides the endpoint, when the answer may start
 * (--service-time, /delay/MS) and produces the answer's body from one of
 * three sources: a small fixed document, the /bytes generator, or the
 * request's own body (/echo), which it buffers between the front end's
 * reader and writer.
 *
 * Life cycle:
 *   tu_req_new -> tu_req_set_method / tu_req_append_target / tu_req_add_header
 *   -> tu_req_head_done -> tu_req_body_in* -> tu_req_body_done
 *   -> (ready) tu_req_status ... tu_req_body_avail / _move / _read
 *   -> tu_req_answered -> tu_req_free
 *
 * Readiness: the answer may start once tu_req_ready() is true. It becomes
 * true either inside tu_req_head_done / tu_req_body_done (no wait needed:
 * the caller checks tu_req_ready afterwards) or later from a timer, which
 * then calls the ready callback given to tu_req_new. /echo becomes ready
 * after its head (plus --service-time), every other endpoint after its body
 * (plus --service-time, plus MS for /delay/MS); /__stats never waits.
 *
 * The request counts itself in the server's stats (requests, inflight)
 * from tu_req_head_done until tu_req_answered or tu_req_free. */
#ifndef TU_REQ_H
#define TU_REQ_H

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>

struct tu_server;
struct tu_req;
struct tu_ws;

/* The answer may now start; called from the request's timer only. The
 * callback may free the request. */
typedef void (*tu_req_ready_cb)(struct tu_req *req, void *arg);

/* Fields a front end uses for its own bookkeeping; the request never
 * touches them. */
struct tu_req_link {
    struct tu_req *next, *prev;
    int32_t stream_id;          /* HTTP/2 */
    unsigned head_sent : 1;     /* status line / HEADERS queued */
    unsigned continue_sent : 1; /* HTTP/1.1 "100 Continue" queued */
    unsigned chunked : 1;       /* HTTP/1.1 answer uses chunked framing */
    unsigned deferred : 1;      /* HTTP/2 data provider returned DEFERRED */
    unsigned last : 1;          /* HTTP/1.x: close the connection after this answer */
    unsigned http10 : 1;        /* HTTP/1.0 request */
    unsigned ws : 1;            /* a WebSocket handshake (upgrade / extended CONNECT) */
    unsigned ws_eof : 1;        /* HTTP/2 WebSocket: the client's END_STREAM came */
    unsigned ws_end : 1;        /* HTTP/2 WebSocket: end the stream once ws_out is sent */
    size_t to_consume;          /* HTTP/2 echo bytes sent, window not yet returned */
    struct tu_ws *ws_state;     /* HTTP/2 WebSocket echo (owned by the front end) */
    struct evbuffer *ws_in, *ws_out; /* HTTP/2 WebSocket bytes (owned by the front end) */
    void *ws_owner;                  /* HTTP/2 WebSocket: the front end */
};

/* Creates a request on connection number conn_seq, the conn_index-th
 * request on that connection. protocol is a static string ("HTTP/2",
 * "HTTP/1.1"). Returns NULL when out of memory. */
struct tu_req *tu_req_new(struct tu_server *srv, uint64_t conn_seq, uint64_t conn_index,
                          const char *protocol, tu_req_ready_cb cb, void *arg);

/* The front end's bookkeeping (never NULL). */
struct tu_req_link *tu_req_link(struct tu_req *req);

/* Replaces the protocol string (HTTP/1.0 vs HTTP/1.1 is known late). */
void tu_req_set_protocol(struct tu_req *req, const char *protocol);

/* Sets the method. Returns 0, CR_ENOMEM or CR_ELIMIT (head too large). */
int tu_req_set_method(struct tu_req *req, const char *m, size_t len);

/* Appends to the request target (HTTP/1.1 delivers it in pieces).
 * Returns 0, CR_ENOMEM or CR_ELIMIT. */
int tu_req_append_target(struct tu_req *req, const char *s, size_t len);

/* Records a header field. The name is lower-cased; a repeated name has its
 * values joined with ", " in arrival order. content-length, content-type
 * and "expect: 100-continue" are noted on the way.
 * Returns 0, CR_ENOMEM or CR_ELIMIT (head over TU_MAX_HEAD_BYTES). */
int tu_req_add_header(struct tu_req *req, const char *name, size_t nlen, const char *value,
                      size_t vlen);

/* The head is complete: routes the request, counts it, and for /echo may
 * make it ready. Returns 0 or CR_ENOMEM. */
int tu_req_head_done(struct tu_req *req);

/* Request body bytes. /echo keeps them (see tu_req_buffered); every other
 * endpoint only counts them. Returns 0 or CR_ENOMEM. */
int tu_req_body_in(struct tu_req *req, const void *data, size_t len);

/* The body is complete (possibly empty); may make the request ready.
 * Returns 0 or CR_ENOMEM. */
int tu_req_body_done(struct tu_req *req);

/* Request body bytes received and not yet passed to the answer. */
size_t tu_req_buffered(const struct tu_req *req);

/* The value of header field name (lower case; repeated fields joined with
 * ", "), NUL-terminated and owned by req, or NULL. */
const char *tu_req_header(const struct tu_req *req, const char *name);
/* The method ("" before tu_req_set_method). */
const char *tu_req_method(const struct tu_req *req);

int tu_req_is_echo(const struct tu_req *req);
/* /__goaway: answered as /, then (HTTP/2) its connection takes no new
 * streams: GOAWAY NO_ERROR, the streams open so far go on to their end. */
int tu_req_is_goaway(const struct tu_req *req);
int tu_req_body_is_done(const struct tu_req *req);
/* The client sent "expect: 100-continue". */
int tu_req_expects_continue(const struct tu_req *req);
int tu_req_ready(const struct tu_req *req);

/* The answer; valid once ready. */
int tu_req_status(const struct tu_req *req);
const char *tu_req_content_type(const struct tu_req *req);
/* 1 and *len set when the answer's length is known (content-length). */
int tu_req_length(const struct tu_req *req, uint64_t *len);
/* 0 for HEAD requests and status 1xx/204/304: no body is sent at all. */
int tu_req_has_body(const struct tu_req *req);

/* Body bytes that can be produced now, and whether the body is complete
 * (nothing left now or later). A front end that finds avail == 0 and not
 * eof waits for more request body (/echo only). */
size_t tu_req_body_avail(const struct tu_req *req);
int tu_req_body_eof(const struct tu_req *req);

/* Appends the next n (<= avail) body bytes to out without copying where
 * possible. Returns 0 or CR_ENOMEM. */
int tu_req_body_move(struct tu_req *req, struct evbuffer *out, size_t n);

/* Copies the next n (<= avail) body bytes to dst. */
void tu_req_body_read(struct tu_req *req, void *dst, size_t n);

/* The whole answer has been queued: stops counting the request as in
 * flight. Idempotent. */
void tu_req_answered(struct tu_req *req);

/* Frees the request, its timer and buffers; a request not yet answered is
 * no longer counted as in flight. NULL is a no-op. */
void tu_req_free(struct tu_req *req);

#endif
