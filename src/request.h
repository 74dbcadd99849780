/* request.h - the protocol-neutral request: what the HTTP/1.1 and HTTP/2
 * front ends produce, admission (gate.h) lets through and the upstream pool
 * carries, and the response that travels back the same way.
 *
 * The way of a request: h1.c / h2.c build it (cr_request_new, _set,
 * _add_header) and hand it to cr_request_submit, which checks its head and
 * gives it to the gate; the gate queues it, answers it, or hands it to the
 * pool (pool.h), which puts it on an upstream connection (upstream.h); the
 * upstream codec fills in the response and notifies the front end; when
 * the front end lets go, request.c writes its access log line.
 *
 * Ownership: a request is held by two sides, the front end (the client's
 * stream) and the back end (the gate's queue, then the upstream stream).
 * Each side lets go with cr_request_release_fe / cr_request_release_be; the
 * request is freed when both have. Either side may go first: a client that
 * resets its stream releases the front end, and the back end then leaves
 * the queue or cancels its upstream stream; an upstream that dies releases
 * the back end after answering the client (502) or resetting it.
 *
 * Fields: struct cr_request says, group by group, which side writes what.
 * Anyone holding r may read any field; the access log only reads.
 *
 * Bodies flow through two bounded evbuffers, req_body (client -> upstream)
 * and resp_body (upstream -> client). The producing side stops reading from
 * its peer while a buffer holds more than CR_REQUEST_BUF_HIGH bytes; the
 * consuming side tells it to resume through the notify functions below. */
#ifndef CR_REQUEST_H
#define CR_REQUEST_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "admit.h"
#include "config.h"
#include "tenant.h"
#include "ws.h"

#define CR_REQUEST_BUF_HIGH (64 * 1024)

struct cr_conn;
struct cr_upconn;
struct cr_request;
struct cr_worker;

struct cr_hdr {
    char *name;  /* lower case, NUL-terminated */
    char *value; /* NUL-terminated */
    uint32_t nlen, vlen;
};

struct cr_hdrs {
    struct cr_hdr *v;
    uint32_t n, cap;
    uint32_t bytes; /* names + values, for the header-size limit */
};

/* What a front end (h1, h2) implements so the back end can answer. */
struct cr_fe_ops {
    void (*response_head)(struct cr_request *r); /* status + headers are set */
    void (*response_body)(struct cr_request *r); /* resp_body has new bytes */
    void (*response_end)(struct cr_request *r);  /* resp_eof set; also when aborted */
    void (*request_drained)(struct cr_request *r); /* req_body fell below the mark */
};

/* Where a request is. Only cr_request_set_state changes it, and only
 * along these transitions (anything else is a bug: it aborts):
 *   HEAD       -> QUEUED (admission), UPSTREAM (admitted at once),
 *                 RESPONDING (answered locally), DONE (refused by the front
 *                 end without an answer: an HTTP/2 reset)
 *   QUEUED     -> UPSTREAM (dispatched), RESPONDING (shed, expired, 502)
 *   UPSTREAM   -> UPSTREAM (retried on another connection), QUEUED (retried
 *                 through admission), RESPONDING (its head, or 502/504)
 *   RESPONDING -> DONE (the response broke off after its head)
 *   DONE       -> DONE */
enum cr_req_state {
    CR_REQ_HEAD = 0,   /* reading the request head */
    CR_REQ_QUEUED,     /* waiting in admission for an upstream stream */
    CR_REQ_UPSTREAM,   /* on an upstream stream */
    CR_REQ_RESPONDING, /* response head received (or generated) */
    CR_REQ_DONE,       /* response aborted or refused; a complete response
                        * stays RESPONDING with resp_eof set */
};

/* Where a response stands with the streaming class (gate.h). */
enum cr_req_streaming {
    CR_REQ_STREAM_NONE = 0, /* a request like any other */
    CR_REQ_STREAM_WATCHED,  /* its head came: it moves if still open at
                             * upstream.streaming_after */
    CR_REQ_STREAM_MOVED,    /* out of the request capacity, in its tenant's
                             * streaming class */
    CR_REQ_STREAM_OVER,     /* would have moved, its tenant's streaming class
                             * was full: it stays in the request class */
};

/* Per-request memory: every string and header vector of a request comes
 * from here and is freed at once with the request. */
struct cr_arena_block;

/* Who writes which field. "Front end": h1.c, h2.c. "Admission": gate.c.
 * "Upstream": pool.c, upstream.c and its codecs. request.c writes on
 * behalf of whichever side calls it (a local answer fills in the response
 * whoever asks for it). */
struct cr_request {
    /* request.c only: the state (cr_request_set_state, called by every
     * side), the memory, the two holds */
    enum cr_req_state state;
    struct cr_arena_block *arena; /* newest block first; the first is inline */
    struct cr_worker *w;        /* its worker, from creation to the end */
    struct cr_conn *conn;       /* client connection; NULL once released by the front end */
    const struct cr_fe_ops *fe; /* NULL once released */
    void *fe_data;              /* front end's per-request state */
    bool be_held;               /* the back end (gate, pool, upstream) still holds it: set
                                 * by cr_request_submit, cleared by release_be/be_respond */
    bool answering;             /* inside cr_request_respond: not freed yet */

    /* request head: the front end, before cr_request_submit; then
     * request.c (cr_request_finish_head: authority, scheme, forwarding
     * headers, idempotent) and admission (path normalised in place, once);
     * read-only afterwards. The body: the front end writes req_body through
     * cr_request_body, the upstream drains it (req_sent). */
    char *method, *scheme, *authority, *path;
    struct cr_hdrs hdrs;
    int64_t req_clen;           /* -1 when unknown */
    bool has_body;              /* a body follows the head */
    bool bad_head;              /* cr_request_submit refused the head (400): the
                                 * front end ends the connection after the answer */
    bool idempotent;
    const char *upgrade; /* tunnel protocol ("websocket"): a tunnel, not a request; NULL otherwise */
    uint16_t tunnel_close;      /* the front end, through cr_request_tunnel_close: corral
                                 * ends the tunnel with this close code (1001); the back
                                 * end sends the upstream its close frame at a frame
                                 * boundary, and nothing of the client's after it */
    struct evbuffer *req_body;  /* made when a body arrives; may stay NULL */
    bool req_eof;
    uint64_t bytes_in;
    struct cr_hdrs req_trailers; /* the front end (HTTP/2 only), before req_eof
                                  * (cr_request_add_trailer); an HTTP/2 upstream
                                  * sends them after the body, HTTP/1.1 drops them */

    /* response: the upstream (or request.c for a local answer) writes
     * status, rhdrs, resp_clen, resp_eof, resp_aborted and appends to
     * resp_body; the front end drains resp_body and counts bytes_out
     * (cr_request_resp_consumed). */
    int status;
    struct cr_hdrs rhdrs;
    int64_t resp_clen;          /* -1 when unknown */
    struct evbuffer *resp_body;
    bool resp_eof;
    bool resp_aborted;          /* the response broke off after its head */
    uint64_t bytes_out;
    struct cr_hdrs resp_trailers; /* the upstream (HTTP/2 only), before resp_eof
                                   * (cr_request_add_rtrailer); the HTTP/2 front
                                   * end sends them after the body, HTTP/1.1 drops them */
    int grpc_status;              /* request.c: corral refused a gRPC request as gRPC
                                   * (HTTP 200, this grpc-status); 0: it did not */
    int refused_status;           /* request.c: the HTTP status that refusal stands
                                   * for (429, 502, 503, 504): the access log's */

    /* the front end's own (h2: body bytes not yet returned to the client's
     * flow-control window); nobody else reads them */
    size_t fe_unconsumed;
    int32_t fe_stream;
    uint8_t fe_flags;
    uint64_t fe_hleft;      /* h2: what the header list may still take (RFC 9113 6.5.2) */
    uint64_t fe_stall_us;   /* h2: response bytes wait for the client since (or
                             * since it last took cr_conn_send_due of them) */
    uint64_t fe_moved;      /* h2: bytes of it the client took since fe_stall_us */
    uint64_t fe_shut_us;    /* h2: its window has held its response since (shut,
                             * or the client last opened it or took DATA) */
    uint64_t fe_body_us;    /* h2: the request body is waited for since (the
                             * head, or its last DATA); 0 when it is not */
    struct cr_ws_tun *fe_tun; /* h2: a tunnel's frames and timers (ws.h), once it is
                               * accepted; the front end frees it */
    uint64_t fe_early_in;   /* h2: bytes_in + 1 when its early answer (413,
                             * 431, 414) ended with its body still coming */
    TAILQ_ENTRY(cr_request) felink; /* the connection's requests: h1 its
                                     * pipeline, h2 its open streams */

    /* upstream only: where it is carried */
    struct cr_upconn *up;       /* upstream connection carrying it */
    uint64_t req_sent;          /* body bytes handed to an upstream stream */
    size_t resp_unacked;        /* h2: response bytes not yet returned to the
                                 * upstream stream's flow-control window */
    struct event *resp_tmr;     /* first response byte deadline (inline) */
    int64_t up_conn_id;         /* for the access log */
    int32_t up_stream;          /* its stream id there */
    int retries;
    int up_addr;                /* 1 + upstream.addrs index of its last stream, 0: none
                                 * (upstream.c; for the per-address metrics) */
    bool up_cancelled;          /* the front end gave up on it (or it was answered
                                 * locally) while on its stream: the upstream's
                                 * answer is discarded, and r keeps its capacity
                                 * unit and tenant slot until the stream ends */
    bool up_reset;              /* h2: RST_STREAM sent for it */
    struct cr_ws_track up_ws;   /* h2: a tunnel's frames client -> upstream, where
                                 * corral's close (tunnel_close) fits */
    bool up_ws_close_sent;      /* h2: that close frame is out: nothing of the
                                 * client's follows it */
    TAILQ_ENTRY(cr_request) uplink; /* in its connection's streams, in the order sent */

    /* admission only (cr_gate_classify, cr_gate_submit; the streaming
     * class: cr_gate_response_head, cr_gate_done); upstream.c reads
     * streaming to count the streams that left the request capacity */
    const struct cr_tenant *tenant;
    enum cr_priority prio;
    struct cr_admit_item admit;
    enum cr_req_streaming streaming;
    TAILQ_ENTRY(cr_request) streamlink; /* CR_REQ_STREAM_WATCHED: the gate's list */
    bool tunnel_counted;        /* a tunnel counted in its tenant's open ones */

    /* for the access log, which reads them when the front end lets go */
    uint64_t t_start;           /* request.c, at creation */
    uint64_t t_queued;          /* admission, when it queues */
    uint64_t t_dispatched;      /* admission and upstream, when it leaves for a stream */
    uint64_t t_first_byte;      /* upstream, at the response head */
    const char *reason;         /* why corral answered itself, static string:
                                 * whoever answers or breaks the response */
    char request_id[36];        /* request.c (cr_request_finish_head) */
    const char *protocol;       /* "HTTP/1.1", "HTTP/2", static: the front end */
};

/* Request body bytes buffered and not yet sent upstream. */
static inline size_t cr_request_body_pending(const struct cr_request *r)
{
    return r->req_body ? evbuffer_get_length(r->req_body) : 0;
}

/* Creates a request on conn (and so of conn's worker, r->w) for front end
 * fe. Returns NULL on ENOMEM. */
struct cr_request *cr_request_new(struct cr_conn *conn, const struct cr_fe_ops *fe,
                                  void *fe_data, const char *protocol);

/* Adds a request header (name must be lower case already for h2; h1 names
 * are lowered here). Returns 0, CR_ELIMIT (too many / too big: answer 431),
 * CR_EPROTO (forbidden name or value: answer 400) or CR_ENOMEM. */
int cr_request_add_header(struct cr_request *r, const char *name, size_t nlen,
                          const char *value, size_t vlen);

/* Sets a pseudo field (method, scheme, authority, path) from the front end. */
int cr_request_set(struct cr_request *r, char **field, const char *v, size_t len);

/* The head is complete: cr_request_finish_head, then the back end takes
 * hold of r (be_held) and the gate names its tenant and priority and
 * admits it (cr_gate_classify, cr_gate_submit). On a problem the request
 * is answered locally (status set, fe callbacks run). */
void cr_request_submit(struct cr_request *r);

/* Where a front end hands each request whose head is complete (given to
 * cr_h1_attach / cr_h2_attach): cr_request_submit in corral; a test or a
 * benchmark passes its own to stop before the gate. The callee owns what
 * happens next (answering it, or handing it on); the front end keeps its
 * reference until the response has ended. */
typedef void (*cr_request_submit_cb)(struct cr_request *r);

/* The part of cr_request_submit that needs no gate: checks the method and
 * the path, fills in the authority (from Host; for HTTP/1.0 without one,
 * the TLS SNI name, else the listener's address) and the scheme, drops the
 * hop-by-hop headers (and those the Connection header names), and adds the
 * forwarding ones: X-Forwarded-For/-Proto or Forwarded (replacing whatever
 * the client sent), X-Request-Id and traceparent when absent, as
 * configured. More than one Host field (RFC 9112 3.2) and an authority that
 * cr_request_check_authority refuses, whichever front end it came from,
 * are errors. Answers nothing. Returns 0, or CR_EPROTO with *reason set to
 * the static reason of the 400 to answer ("bad request", "missing host",
 * "duplicate host", "invalid host"). */
int cr_request_finish_head(struct cr_request *r, const char **reason);

/* Whether the len bytes at s are an authority as a request may name one
 * (RFC 3986 3.2 without userinfo, as RFC 9110 7.2 wants for Host and
 * :authority): a reg-name (unreserved, percent-encoded octets and
 * sub-delims), an IPv4 address or an [IPv6] literal, then optionally ":"
 * and a port of 1 to 5 digits up to 65535. Empty, spaces, '@', '/', '?',
 * '#', '\\' and control bytes are refused. Used by
 * cr_request_finish_head for either front end's authority, and by the
 * HTTP/1.1 front end for an absolute-form target. Returns 0 or
 * CR_EPROTO. */
int cr_request_check_authority(const char *s, size_t len);

/* Seeds the generator of the ids cr_request_finish_head adds (X-Request-Id,
 * traceparent) so that they repeat from run to run: for tests and the
 * micro-benchmark, whose instruction counts would otherwise move with the
 * lengths the random ids take once HPACK-encoded. corral never calls it:
 * each worker seeds from getrandom(2) at its first id. */
void cr_request_seed_ids(uint64_t seed);

/* Moves r to state s. A transition the enum cr_req_state comment does not
 * list is a bug: assert(3) aborts. */
void cr_request_set_state(struct cr_request *r, enum cr_req_state s);

/* Whether a request may go from state `from` to `to` (for the tests). */
bool cr_request_can_go(enum cr_req_state from, enum cr_req_state to);

/* Whether a body of len bytes (-1: not known yet) is over http.max_body
 * (0: unlimited): the front ends refuse a declared length with 413 before
 * reading it, cr_request_body the bytes as they come. */
bool cr_request_body_too_large(const struct cr_request *r, int64_t len);

/* Body bytes from the client; then the end of the body. Returns 0,
 * CR_ELIMIT (over http.max_body: answer 413) or CR_ENOMEM. */
int cr_request_body(struct cr_request *r, const void *data, size_t len);
void cr_request_body_end(struct cr_request *r);

/* Corral ends tunnel r (request.h) with close code `code`: the back end
 * sends its close frame to the upstream (masked) at the next frame
 * boundary; the front end sends the client its own. */
void cr_request_tunnel_close(struct cr_request *r, uint16_t code);

/* The front end has written n response body bytes to the client (flow
 * control: the back end may read more from the upstream). */
void cr_request_resp_consumed(struct cr_request *r, size_t n);

/* Answers locally with status, a short JSON body naming reason (a static
 * string), and extra headers (e.g. Retry-After) given as name/value pairs,
 * NULL-terminated. Safe in any state before the response head was sent;
 * after that the response is aborted instead. A gRPC request over HTTP/2
 * (cr_request_is_grpc) refused with 429, 502, 503 or 504 is answered as
 * gRPC instead: HTTP 200, content-type application/grpc and, in that one
 * HEADERS frame (a trailers-only response), grpc-status 8
 * (RESOURCE_EXHAUSTED) for 429 or 14 (UNAVAILABLE), grpc-message the
 * reason percent-encoded, and grpc-retry-pushback-ms the Retry-After
 * delay in ms when one is given; grpc_status and refused_status say so to
 * the access log, which logs the refused status with "grpc_status". */
void cr_request_respond(struct cr_request *r, int status, const char *reason,
                        const char *const *extra);

/* The back end answers r itself, as admission's refusals (429/503) and an
 * upstream that cannot be reached (502) do: it lets go of its hold
 * (be_held) without a cancel - r is neither queued nor on an upstream
 * stream any more - and answers as cr_request_respond does. r may be freed
 * on return (when its front end had let go). */
void cr_request_be_respond(struct cr_request *r, int status, const char *reason,
                           const char *const *extra);

/* Back end notifications to the front end (no-ops once it has released). */
void cr_request_notify_head(struct cr_request *r);
void cr_request_notify_body(struct cr_request *r);
void cr_request_notify_end(struct cr_request *r);
void cr_request_notify_drained(struct cr_request *r);

/* The upstream must start answering within ms (0 disarms); otherwise the
 * stream is reset and the client gets 504. Returns 0 or CR_ENOMEM. */
int cr_request_response_deadline(struct cr_request *r, uint64_t ms);

/* Each side lets go; the request is logged and freed when both have. */
void cr_request_release_fe(struct cr_request *r);
void cr_request_release_be(struct cr_request *r);

/* Response headers from the back end; hop-by-hop fields are dropped and
 * content-length is noted. Returns 0 or CR_ENOMEM/CR_ELIMIT. */
int cr_request_add_rheader(struct cr_request *r, const char *name, size_t nlen,
                           const char *value, size_t vlen);
/* Forgets the headers of an interim (1xx) response. */
void cr_request_reset_rheaders(struct cr_request *r);

/* Whether r is a gRPC call corral may answer as gRPC: HTTP/2, and a
 * content-type of application/grpc, alone or followed by '+' or ';'
 * (grpc-web, whose trailers travel in its body, is not). */
bool cr_request_is_grpc(const struct cr_request *r);

/* The grpc-status a refusal with HTTP status `status` becomes: 8
 * (RESOURCE_EXHAUSTED) for 429, 14 (UNAVAILABLE) for 502, 503 and 504, 0
 * for any other (answered as HTTP). */
int cr_request_grpc_code(int status);

/* Percent-encodes s into out (cap bytes, NUL-terminated, cut short at a
 * whole escape) as gRPC wants grpc-message: bytes outside 0x20-0x7e and
 * '%' become %XX. Returns the length written. */
size_t cr_request_grpc_pct(char *out, size_t cap, const char *s);

/* Trailer fields: the request's from the front end (before req_eof), the
 * response's from the upstream (before resp_eof). Names are lower-cased and
 * checked as header names are; pseudo-fields and hop-by-hop fields are
 * dropped (returns 0). Returns 0, CR_ELIMIT (over http.max_headers or
 * http.max_header_size, counted apart from the head), CR_EPROTO (a bad
 * name or value) or CR_ENOMEM. */
int cr_request_add_trailer(struct cr_request *r, const char *name, size_t nlen, const char *value,
                           size_t vlen);
int cr_request_add_rtrailer(struct cr_request *r, const char *name, size_t nlen, const char *value,
                            size_t vlen);

/* Finds a response header (lower-case name); NULL when absent. */
const struct cr_hdr *cr_request_rhdr(const struct cr_request *r, const char *name);
const struct cr_hdr *cr_request_hdr(const struct cr_request *r, const char *name);

#endif
