/* testup_conn.h - one client connection: TLS handshake, ALPN, the chosen
 * front end, backpressure and a deferred close.
 *
 * States: HANDSHAKE -> OPEN -> DRAINING (flush the output, then close)
 *         -> CLOSED (freed from a deferred event, never inside its own
 *         callbacks). Any state may go straight to CLOSED.
 *
 * I/O runs through a libevent OpenSSL bufferevent with deferred callbacks,
 * so no callback of ours ever runs inside a call we make into libevent.
 * The front end (HTTP/1.1 or HTTP/2, by ALPN; no ALPN means HTTP/1.1)
 * parses the input buffer and appends to the output buffer. Reading stops
 * while the output holds TU_OUT_HIGH bytes or more, or while the front end
 * asks for no input; the front end's on_drain runs once the output has
 * drained to TU_OUT_LOW.
 *
 * The connection owns its socket, SSL object, bufferevent and front end. */
#ifndef TU_CONN_H
#define TU_CONN_H

#include <event2/buffer.h>
#include <event2/util.h>
#include <stdint.h>
#include <sys/socket.h>

struct tu_server;
struct tu_conn;

/* A front end. Every hook runs from the event loop with the connection
 * OPEN; a hook returning < 0 closes the connection (after that the
 * connection frees the state through on_free, later). */
struct tu_proto {
    const char *name; /* "HTTP/2", "HTTP/1.1": logs and stats */
    /* Allocates the state for conn. Returns 0 or CR_ENOMEM. */
    int (*open)(struct tu_conn *conn, void **state);
    /* New input in tu_conn_input(). Returns 0 or a CR_E* code. */
    int (*on_read)(void *state);
    /* The output drained to TU_OUT_LOW: produce more. Returns 0 or CR_E*. */
    int (*on_drain)(void *state);
    /* Whether the front end accepts more input now (parser not paused). */
    int (*want_read)(void *state);
    /* Frees the state and every request it holds. */
    void (*on_free)(void *state);
};

/* Takes over an accepted, non-blocking socket and starts the TLS
 * handshake (10 s limit). On failure the socket is closed and a negative
 * CR_E* code returned. */
int tu_conn_accept(struct tu_server *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen);

struct tu_server *tu_conn_server(const struct tu_conn *conn);
/* The connection's sequence number, from 1 in accept order. */
uint64_t tu_conn_seq(const struct tu_conn *conn);
/* Counts one more request on the connection and returns its number (1..). */
uint64_t tu_conn_next_request(struct tu_conn *conn);

struct evbuffer *tu_conn_input(struct tu_conn *conn);
struct evbuffer *tu_conn_output(struct tu_conn *conn);
/* Whether the output holds TU_OUT_HIGH bytes or more: stop producing. */
int tu_conn_output_full(struct tu_conn *conn);
/* Whether the connection is OPEN (not draining or closed): asynchronous
 * work (timers) checks it before touching the front end. */
int tu_conn_is_open(const struct tu_conn *conn);

/* Re-evaluates whether to read from the socket; a front end calls it after
 * work done outside on_read/on_drain (a timer). */
void tu_conn_update(struct tu_conn *conn);

/* Stops reading and closes once everything queued has been written. */
void tu_conn_close_after_flush(struct tu_conn *conn);

/* Closes now: nothing more is read or written; the connection and its
 * front end are freed from a deferred event. why is logged. */
void tu_conn_close(struct tu_conn *conn, const char *why);

/* Frees every connection at once; for shutdown, outside any callback. */
void tu_conn_free_all(struct tu_server *srv);

#endif
