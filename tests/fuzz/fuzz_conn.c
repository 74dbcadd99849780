/* fuzz_conn.c - one input through a client connection: see fuzz_conn.h. */
#include "fuzz_conn.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

/* The world of every input: an HTTP/2 upstream with one connection, and
 * tenants with rates, a concurrency limit, queues and a priority route,
 * so that admission takes each of its branches. */
static const char world_yaml[] = "workers: 1\n"
                                 "log:\n"
                                 "  error: /dev/null\n"
                                 "  level: debug\n"
                                 "  access: /dev/null\n"
                                 "listeners:\n"
                                 "  - name: https\n"
                                 "    address: 127.0.0.1:8443\n"
                                 "    tls:\n"
                                 "      certificates:\n"
                                 "        - cert: /dev/null\n"
                                 "          key: /dev/null\n"
                                 "upstream:\n"
                                 "  addresses: [127.0.0.1:9443]\n"
                                 "  protocol: h2\n"
                                 "  connections: 1\n"
                                 "  tls:\n"
                                 "    ca: /dev/null\n"
                                 "    cert: /dev/null\n"
                                 "    key: /dev/null\n"
                                 "    sni: lb.test\n"
                                 "tenants:\n"
                                 "  by: header\n"
                                 "  header: X-Tenant-Id\n"
                                 "  defaults:\n"
                                 "    queue: 8\n"
                                 "    max_wait: 5s\n"
                                 "  list:\n"
                                 "    - name: gold\n"
                                 "      rate: 100000/s\n"
                                 "      burst: 1000\n"
                                 "      weight: 8\n"
                                 "    - name: bronze\n"
                                 "      rate: 1/min\n"
                                 "      burst: 1\n"
                                 "      queue: 1\n"
                                 "    - name: tin\n"
                                 "      concurrency: 1\n"
                                 "      queue: 0\n"
                                 "  routes:\n"
                                 "    - path_prefix: /health\n"
                                 "      priority: high\n";

#define MAX_ROUNDS 4096 /* reads per input: bounded whatever the input */

/* FUZZ_SHOW=1 in the environment: what the client got goes to stderr
 * (to see what an input does: tests/fuzz/fuzz_h1 FILE). */
static struct evbuffer *shown(void)
{
    static int show = -1;
    static struct evbuffer *b;
    if (show < 0)
        show = getenv("FUZZ_SHOW") != NULL;
    if (show && !b)
        b = evbuffer_new();
    return b;
}

/* Lets the upstream answer what the pool sent, then takes what the front
 * end queued for the client, as the loop's flushes would. */
static void settle(struct cr_conn *c, struct cr_upconn *u, struct fx_lb *lb)
{
    struct evbuffer *b = shown();
    (void)fx_up_pump(u, lb);
    (void)fx_conn_take(c, b);
    if (b) {
        size_t n = evbuffer_get_length(b);
        fwrite(evbuffer_pullup(b, -1), 1, n, stderr);
        evbuffer_drain(b, n);
    }
}

/* One read of the client's bytes as conn.c's read_some hands it over.
 * Returns false once the connection would read no more. */
static bool deliver(struct cr_conn *c, struct cr_upconn *u, struct fx_lb *lb, const uint8_t *p,
                    size_t n)
{
    if (c->state != CR_CONN_OPEN)
        return false;
    if (c->read_paused) { /* backpressure: the answers must come first */
        settle(c, u, lb);
        if (c->state != CR_CONN_OPEN || c->read_paused)
            return false;
    }
    if (c->proto->on_data(c, p, n) < 0) {
        cr_conn_close(c, true);
        return false;
    }
    settle(c, u, lb);
    return true;
}

void fuzz_conn_run(fuzz_attach_fn attach, const uint8_t *preface, size_t plen, const uint8_t *data,
                   size_t size)
{
    if (size < 1)
        return;
    uint8_t ctl = data[0];
    data++;
    size--;
    size_t step = (size_t)(ctl & 63) * 7;
    if (step == 0)
        step = size ? size : 1;

    /* the preface and the input as one stream of client bytes */
    uint8_t *in = malloc(plen + size + 1);
    if (!in)
        abort();
    if (plen)
        memcpy(in, preface, plen);
    if (size)
        memcpy(in + plen, data, size);
    size_t len = plen + size;
    if (step < len && step < plen) /* the preface itself is never the fuzzer's */
        step = plen;

    struct fx_world x;
    fx_world_init(&x, world_yaml);
    cr_request_seed_ids(1);
    struct fx_lb *lb = fx_lb_new(100, 200, 300);
    struct cr_upconn *u = fx_up_ready(&x, 0, lb);
    struct cr_conn *c = fx_conn_new(&x, "198.51.100.7");
    if (attach(c, cr_request_submit) < 0)
        abort();
    (void)fx_conn_take(c, NULL); /* h2: our SETTINGS */

    size_t off = 0;
    for (int round = 0; off < len && round < MAX_ROUNDS; round++) {
        size_t n = len - off < step ? len - off : step;
        if (!deliver(c, u, lb, in + off, n))
            break;
        off += n;
        if (round == 0 && (ctl & 0x80) && c->state == CR_CONN_OPEN && c->proto->on_drain) {
            c->proto->on_drain(c);
            settle(c, u, lb);
        }
    }
    if ((ctl & 0x40) && c->state == CR_CONN_OPEN && c->proto->on_timer &&
        evtimer_pending(c->tmr, NULL)) {
        c->proto->on_timer(c);
        settle(c, u, lb);
    }

    fx_conn_free(c);
    fx_lb_free(lb);
    fx_world_free(&x);
    free(in);
}
