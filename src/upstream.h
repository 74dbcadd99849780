/* upstream.h - one persistent upstream connection: TCP, TLS (verified, with
 * our client certificate, session resumed on reconnect) and an nghttp2
 * client session whose streams carry requests from any client connection.
 *
 * States: IDLE (not connected; waiting for a reconnect) -> CONNECTING ->
 * HANDSHAKE -> READY -> GOAWAY (the server retires it: no new streams) ->
 * IDLE again. The pool owns every cr_upconn for the worker's lifetime. */
#ifndef CR_UPSTREAM_H
#define CR_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "request.h"

struct cr_pool;
struct cr_worker;
struct cr_upconn;

enum cr_up_state {
    CR_UP_IDLE = 0,
    CR_UP_CONNECTING,
    CR_UP_HANDSHAKE,
    CR_UP_READY,
    CR_UP_GOAWAY,
};

struct cr_upconn *cr_upconn_new(struct cr_worker *w, struct cr_pool *p,
                                const struct cr_addr *addr);
void cr_upconn_free(struct cr_upconn *u);

/* Starts connecting now (from IDLE) or after delay_ms. */
void cr_upconn_connect(struct cr_upconn *u, uint64_t delay_ms);

enum cr_up_state cr_upconn_state(const struct cr_upconn *u);
/* Streams it can take now (0 unless READY). */
uint32_t cr_upconn_room(const struct cr_upconn *u);
uint32_t cr_upconn_inflight(const struct cr_upconn *u);
/* A number identifying this connection (changes on each reconnect). */
int64_t cr_upconn_id(const struct cr_upconn *u);
/* Whether the connection proved that the upstream serves on it: it
 * completed a response, or it has been (or was, until it was lost just
 * now) READY for at least min_up_ms. Reset when it connects again. */
bool cr_upconn_proven(const struct cr_upconn *u, uint64_t min_up_ms);

/* Opens a stream for r. Returns 0 or CR_EAGAIN (no room) / CR_ENOMEM. */
int cr_upconn_submit(struct cr_upconn *u, struct cr_request *r);
/* Resets r's stream and forgets r (the caller releases it). */
void cr_upconn_cancel(struct cr_upconn *u, struct cr_request *r);
/* r->req_body has more bytes or its end. */
void cr_upconn_resume(struct cr_upconn *u, struct cr_request *r);
/* n bytes of r's response reached the client. */
void cr_upconn_consumed(struct cr_upconn *u, struct cr_request *r, size_t n);
/* Graceful close once no stream is left; no reconnect. */
void cr_upconn_retire(struct cr_upconn *u);

#endif
