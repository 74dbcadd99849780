/* conn.h - a client connection: the socket, its TLS session, and the HTTP
 * front end (h1 or h2) chosen by ALPN once the handshake is done.
 *
 * On a proxy_protocol listener a connection from outside proxy_from is
 * closed at accept, and one in HELLO first reads the PROXY header
 * (proxyproto.h), only its bytes, without blocking, within
 * handshake_timeout; a malformed one closes it. Then client and client_ip
 * are the header's client (not for LOCAL/UNKNOWN, the balancer's health
 * checks), in the logs and X-Forwarded-For alike.
 *
 * States: HELLO (accepted, nothing received yet: not a handshake, so silent
 * sockets do not hold the listener's max_handshakes; closed after
 * client_hello_timeout) -> HANDSHAKE (from the ClientHello's first byte,
 * counted against max_handshakes; when the slot is full the connection
 * waits, unread, for a handshake to end, at most handshake_timeout, and then
 * has handshake_timeout for its handshake) -> OPEN -> CLOSING (flush what is
 * queued, then close) -> LINGER (cr_conn_close_linger only) -> CLOSED
 * (freed from a deferred event, never inside its own callbacks).
 *
 * LINGER is a lingering close, as nginx's lingering_close and HAProxy's
 * close do: a client answered before it finished sending (a 413 for its
 * body, an early answer from the upstream or admission, a 400) is still
 * sending, and close(2) with its bytes unread makes the kernel reset the
 * connection, which can destroy the answer before the client reads it.
 * So once the answer is written, close_notify and a FIN (shutdown
 * SHUT_WR) go out, and what the client still sends is read from the
 * socket and dropped, undecrypted (at most CR_LINGER_BUDGET bytes per
 * wakeup, at the lowest event priority), until it closes (EOF or reset),
 * for at most http.lingering_time in all and http.lingering_timeout
 * between two reads. A lingering connection holds no front end work, no
 * handshake slot, and does not hold up a draining worker (worker.h,
 * cr_worker_linger); the front end's timers no longer apply to it.
 * The connection owns its socket, SSL object and front end; requests
 * reference it and are detached by the front end before it is freed.
 *
 * I/O: reads go through one stack buffer straight into the front end's
 * parser, so an idle connection holds no read buffer; writes are queued in
 * `out` and flushed once per loop iteration. After a TLS 1.3 handshake,
 * at the first moment OpenSSL holds nothing unread or unsent, the records
 * move to tlsrec.h and the SSL object is freed (listener tls.handoff). */
#ifndef CR_CONN_H
#define CR_CONN_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "config.h"
#include "worker.h"

enum cr_conn_state {
    CR_CONN_HELLO = 0,
    CR_CONN_HANDSHAKE,
    CR_CONN_OPEN,
    CR_CONN_CLOSING,
    CR_CONN_LINGER,
    CR_CONN_CLOSED
};

struct cr_conn;
struct cr_tlsrec;

/* A front end bound to an open connection. */
struct cr_proto_ops {
    const char *name;
    /* Bytes read from the client. Returns 0, or <0 to close at once. */
    int (*on_data)(struct cr_conn *c, const uint8_t *data, size_t len);
    /* Room in the output: produce more (h2 frames). May be NULL. */
    void (*on_writable)(struct cr_conn *c);
    /* The worker is draining: finish what is in flight, accept no more. */
    void (*on_drain)(struct cr_conn *c);
    /* The timer armed with cr_conn_set_timer fired. */
    void (*on_timer)(struct cr_conn *c);
    /* The connection is going away: release every request and free state. */
    void (*on_free)(struct cr_conn *c);
};

struct cr_conn {
    enum cr_conn_state state;
    struct cr_worker *w;
    const struct cr_cfg_listener *lcfg;
    struct cr_listen_slot *slot;
    int fd;
    SSL *ssl;              /* NULL after the handoff to rec */
    struct cr_tlsrec *rec; /* follows the handshake, then carries TLS 1.3
                            * records (tlsrec.h); NULL when OpenSSL keeps them */
    char *sni;             /* the name the client sent, kept past the handoff */
    struct event *rev, *wev, *tmr;
    struct evbuffer *out;
    const struct cr_proto_ops *proto;
    void *proto_data;
    uint64_t id;
    uint64_t hs_start_us;    /* the ClientHello's first byte */
    uint64_t hs_cpu_ns;      /* CPU spent in SSL_do_handshake so far */
    bool read_paused;        /* backpressure from the front end */
    bool want_read_on_write; /* SSL_write needs the socket readable */
    bool write_blocked;      /* the last write did not finish */
    uint64_t out_stuck_us;   /* since then the client's TCP has acknowledged less
                              * than out_due of the output, which waits
                              * (cr_conn_write_stuck_ms); 0 while it moves */
    uint64_t out_acked;      /* what it had acknowledged then (tcpi_bytes_acked) */
    uint64_t out_due;        /* CR_CONN_OUT_PROGRESS (or cr_conn_send_due when
                              * paced), or less when the kernel held less */
    bool out_paced;          /* cr_conn_pace_output: HTTP/1.1 */
    bool hs_waiting;         /* in HELLO, on slot->hs_waiting for a handshake slot */
    bool linger;             /* close lingering once the output is written */
    const char *close_why;   /* the limit that closed it, for the access log of the
                              * requests it cut (the front end's on_free); NULL:
                              * the client left, or an error */
    uint64_t linger_end_us;  /* in LINGER: lingering_time runs out then */
    TAILQ_ENTRY(cr_conn) hs_link;
    struct cr_deferred flush;
    struct cr_deferred reap;
    LIST_ENTRY(cr_conn) link;
    uint8_t *pp_buf; /* the PROXY header read so far (CR_PP_MAX bytes), while
                      * it is awaited; NULL: none expected, or done */
    size_t pp_have;
    char *proxy_id;  /* PROXY v2 PP2_TYPE_UNIQUE_ID, printable; NULL: none */
    bool pp_local;   /* the PROXY header was the balancer's own (v2 LOCAL,
                      * v1 UNKNOWN): a close before a ClientHello is its
                      * health check, not a failed handshake */
    char client[56]; /* "ip:port" */
    char client_ip[46];
};

/* Takes over an accepted socket and starts the TLS handshake. On failure
 * the socket is closed. */
void cr_conn_accept(struct cr_worker *w, int fd, const struct sockaddr *sa, socklen_t salen,
                    struct cr_listen_slot *slot, SSL_CTX *tls);

/* For the worker: a slot under max_handshakes was reserved (counted) for
 * c, which waited for it; its handshake starts on the loop's next turn. */
void cr_conn_handshake_go(struct cr_conn *c);

/* Queues bytes for the client and schedules a flush. Returns 0,
 * CR_ENOMEM, or CR_ECLOSED once the connection lingers or is closed
 * (nothing more can be sent). */
int cr_conn_write(struct cr_conn *c, const void *data, size_t len);
/* Schedules a flush (after the front end queued output itself); a no-op
 * once the connection lingers or is closed. */
void cr_conn_want_flush(struct cr_conn *c);
/* Bytes queued and not yet written. */
size_t cr_conn_pending(const struct cr_conn *c);
/* Whether client bytes wait to be read: in the socket, or in the TLS
 * layer (a record begun counts: its rest is on the wire). For a front end
 * about to close an idle connection: a request is on its way. */
bool cr_conn_input_waiting(const struct cr_conn *c);

/* How long (ms) the output has waited on a client that does not read it:
 * from a write the socket did not take whole (the kernel's buffer is full)
 * until the client's TCP has acknowledged CR_CONN_OUT_PROGRESS more bytes
 * (cr_conn_send_due when paced: cr_conn_pace_output),
 * or all the kernel held for it then if that was less (the clock starts
 * again if output still waits), or all of it with nothing left to write. Bytes the socket takes do
 * not count: a growing send buffer takes some for seconds from a client that reads nothing. 0 while
 * the output moves or nothing waits. A connection stuck for body_timeout is closed ("not reading
 * its responses"), however busy its client keeps it otherwise. Looks at the socket (getsockopt)
 * only while the clock runs. */
uint64_t cr_conn_write_stuck_ms(struct cr_conn *c);

/* What the client's TCP has acknowledged of c's output so far (*acked,
 * bytes, counted from the connection's start); false where the socket does
 * not say (not TCP: the unit tests' connections without sockets). One
 * getsockopt. */
bool cr_conn_acked(const struct cr_conn *c, uint64_t *acked);

/* What a client must acknowledge of the output for it to count as moving
 * (cr_conn_write_stuck_ms): a full TLS record, more than a client's kernel
 * frees by packing its receive queue, less than any client that reads
 * takes in a tenth of send_timeout. */
#define CR_CONN_OUT_PROGRESS (16 * 1024)

/* The one rule for a response that waits on its client, HTTP/1.1 and
 * HTTP/2 alike: it must move send_min_rate bytes a second on average over
 * send_timeout, that is, this many bytes (at least 1) in each send_timeout
 * during which bytes wait for the client, or it counts as held up by the
 * client. HTTP/2 resets such a stream (RST_STREAM CANCEL, "client send
 * stalled"); HTTP/1.1 closes the connection ("client not reading"). A
 * response that has nothing waiting (the upstream is slow) runs no
 * clock. */
uint64_t cr_conn_send_due(const struct cr_cfg_http *hc);

/* Puts c's output under that rule (HTTP/1.1, whose responses are the
 * connection's output): the clock of cr_conn_write_stuck_ms restarts only
 * once the client's TCP has acknowledged cr_conn_send_due bytes (or all
 * the kernel held, if less), and the connection is closed when it has run
 * for send_timeout, or body_timeout if that is shorter. Without it (HTTP/2,
 * which paces each stream itself) the clock asks CR_CONN_OUT_PROGRESS and
 * closes after body_timeout. */
void cr_conn_pace_output(struct cr_conn *c);

/* Stops or resumes reading from the client (backpressure). */
void cr_conn_pause_read(struct cr_conn *c, bool pause);

/* (Re)arms the single per-connection timer; 0 disarms it. Ignored once
 * the connection lingers (the timer is then the lingering close's). */
void cr_conn_set_timer(struct cr_conn *c, uint64_t ms);

/* Closes after the queued output is written (graceful) or at once. A
 * graceful close of a connection already closing (or lingering) changes
 * nothing; one at once ends it whatever it was doing. */
void cr_conn_close(struct cr_conn *c, bool graceful);

/* Closes gracefully, then lingers (LINGER above) instead of closing at
 * once, for a client that may still be sending; as cr_conn_close(c, true)
 * when http.lingering_time is 0 or the connection is not open. */
void cr_conn_close_linger(struct cr_conn *c);

/* The TLS SNI name the client sent, or NULL. */
const char *cr_conn_sni(const struct cr_conn *c);

#endif
