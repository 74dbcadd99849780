/* fixture.h - corral's data path in memory, for the unit tests that need a
 * worker and for the micro-benchmark (tests/bench/bench_hot.c).
 *
 * A world is a worker whose event loop is never run: its config, its
 * shared memory, its statistics, its admission gate (cr_gate_new) and its
 * upstream pool (made with cr_pool_new and never started, so nothing
 * connects). On it:
 *
 *   - client connections that are OPEN with no socket and no TLS: attach a
 *     front end (cr_h1_attach / cr_h2_attach), feed it bytes through
 *     c->proto->on_data, and take what it queued for the client with
 *     fx_conn_take (which is what the flush the loop would run does);
 *   - upstream connection i of the pool brought up over memory
 *     (fx_up_ready): READY, its HTTP/2 codec started, the load balancer's
 *     SETTINGS taken, so the pool has capacity and places requests on it;
 *     fx_up_produce and fx_up_feed move its bytes as the transport would;
 *   - the load balancer (fx_lb): an nghttp2 server session that answers
 *     every request with one canned response;
 *   - a phone (fx_h2c): an nghttp2 client session that encodes requests for
 *     the HTTP/2 front end and reads its answers.
 *
 * Timers are armed in the never-run loop and never fire; deferred work is
 * queued and never runs. Nothing here opens a socket. Errors abort(): a
 * fixture that cannot be built is a broken test, not a result. */
#ifndef CR_TEST_FIXTURE_H
#define CR_TEST_FIXTURE_H

#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "conn.h"
#include "request.h"
#include "shm.h"
#include "worker.h"

/* The config of fx_world_init(NULL): one worker; one listener; an HTTP/2
 * upstream with two connections; tenants by X-Tenant-Id (gold, silver,
 * bronze and the default), high priority for /health. Certificate paths
 * are /dev/null: the loader only checks that they can be read. */
extern const char fx_default_yaml[];

struct fx_world {
    struct cr_worker w;
    struct cr_worker_setup setup;
    struct cr_shm *shm;
    struct cr_config *cfg;
    SSL_CTX *tls; /* SSL objects for connections that never handshake */
};

/* Builds a world from a YAML config (NULL: fx_default_yaml). */
void fx_world_init(struct fx_world *x, const char *yaml);
void fx_world_free(struct fx_world *x);

/* A client connection from client_ip (port 50000), OPEN, no front end yet. */
struct cr_conn *fx_conn_new(struct fx_world *x, const char *client_ip);
/* Releases its front end's requests (on_free) and frees it. */
void fx_conn_free(struct cr_conn *c);
/* Moves what c queued for the client into out (NULL: discards it) as a
 * flush would: the front end is asked for more (on_writable) until it has
 * nothing left. Returns the bytes moved. */
size_t fx_conn_take(struct cr_conn *c, struct evbuffer *out);

/* ---- the load balancer ---- */

struct fx_lb;

/* A load balancer allowing max_streams concurrent streams that answers
 * each complete request with `status`, content-type application/json, a
 * content-length, and body_len bytes of body. */
struct fx_lb *fx_lb_new(uint32_t max_streams, int status, size_t body_len);
void fx_lb_free(struct fx_lb *lb);
/* Takes len bytes from corral and appends its answer to out. Returns 0, or
 * the nghttp2 error. */
int fx_lb_exchange(struct fx_lb *lb, const uint8_t *in, size_t len, struct evbuffer *out);
/* Requests it has answered. */
uint64_t fx_lb_requests(const struct fx_lb *lb);
/* RST_STREAM frames it has received (for any stream, open or closed). */
uint64_t fx_lb_resets(const struct fx_lb *lb);
/* A header of the last request it received (pseudo-headers included), or
 * NULL; n counts repeated names from 0. */
const char *fx_lb_header(const struct fx_lb *lb, const char *name, int n);

/* ---- upstream connections over memory ---- */

/* Brings connection i of the world's pool up over memory as upstream.c
 * does once TLS is up (READY, codec started) and has it read lb's
 * SETTINGS: the pool then has its room as capacity and places waiting
 * requests on it (sent at the next fx_up_produce). */
struct cr_upconn *fx_up_ready(struct fx_world *x, size_t i, struct fx_lb *lb);
/* The same for an HTTP/1.1 upstream (upstream.protocol: http/1.1), with a
 * read event of its own so that pausing its reads is real; the pool places
 * waiting requests on it. */
struct cr_upconn *fx_up_ready_h1(struct fx_world *x, size_t i);
/* Whether the transport has stopped reading the connection. */
bool fx_up_read_paused(const struct cr_upconn *u);
/* What the codec has to send (the transport's flush), appended to out.
 * Returns 0 or the codec's error. */
int fx_up_produce(struct cr_upconn *u, struct evbuffer *out);
/* Bytes from the upstream, as the transport's read hands them over.
 * Returns 0 or the codec's error. */
int fx_up_feed(struct cr_upconn *u, const uint8_t *data, size_t len);
/* fx_up_produce, lb, fx_up_feed until neither side has anything to say.
 * Returns 0 or a negative error. */
int fx_up_pump(struct cr_upconn *u, struct fx_lb *lb);

/* ---- a phone speaking HTTP/2 ---- */

struct fx_h2c;

struct fx_h2c *fx_h2c_new(void);
/* A phone that reads but does not open windows by itself: it announces
 * SETTINGS_INITIAL_WINDOW_SIZE initial_window (0: a zero-window client)
 * and sends WINDOW_UPDATE only through fx_h2c_window (nghttp2's automatic
 * updates are off). */
struct fx_h2c *fx_h2c_new_window(uint32_t initial_window);
/* Queues a WINDOW_UPDATE of n bytes for stream sid (0: the connection). */
void fx_h2c_window(struct fx_h2c *cl, int32_t sid, int32_t n);
void fx_h2c_free(struct fx_h2c *cl);
/* Queues a request (nv: name/value pairs, pseudo-headers first, NULL
 * terminated). Returns its stream id. */
int32_t fx_h2c_request(struct fx_h2c *cl, const char *const *nv);
/* Appends what the phone has to send to out. */
void fx_h2c_send(struct fx_h2c *cl, struct evbuffer *out);
/* Reads what the server sent. Returns 0 or the nghttp2 error. */
int fx_h2c_recv(struct fx_h2c *cl, const uint8_t *data, size_t len);
/* Responses completed so far, and the :status of stream sid (0: none). */
uint64_t fx_h2c_done(const struct fx_h2c *cl);
int fx_h2c_status(const struct fx_h2c *cl, int32_t sid);
/* Streams the server reset, and the error code of stream sid's
 * RST_STREAM (-1: not reset, or not known). */
uint64_t fx_h2c_resets(const struct fx_h2c *cl);
int fx_h2c_reset_code(const struct fx_h2c *cl, int32_t sid);

#endif
