/* rp_h1.c - HTTP/1.1 on a client connection: one request at a time
 * (no pipelining, as a phone's HTTP stack), the answer read with
 * http_parser. Keep-alive unless the server says "Connection: close". */
#include "rp_client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "common.h"
#include "hparse.h"

struct h1 {
    http_parser parser;
    struct rp_conn *c;
    struct cr_hparse hp; /* the header field being read */
    char ra[64];         /* the last Retry-After value */
    size_t ralen;
    uint64_t body_left; /* request body still to produce */
};

static const char xs[16384] = {[0 ... 16383] = 'x'};

static struct h1 *h1_of(const struct rp_conn *c)
{
    return c->cx;
}

/* The request whose answer is being read: the oldest one in flight. */
static struct rp_req *current(struct h1 *h)
{
    return TAILQ_FIRST(&h->c->flights);
}

/* ------------------------------------------------------------ the answer */

static int on_begin(http_parser *p)
{
    struct h1 *h = p->data;

    cr_hparse_reset(&h->hp);
    h->ralen = 0;
    return current(h) == NULL ? -1 : 0; /* an answer nobody asked for */
}

/* A complete header field (hparse.h): only Retry-After matters. */
static int on_field_done(void *arg, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct h1 *h = arg;

    if (nlen == 11 && strncasecmp(name, "retry-after", 11) == 0 && vlen < sizeof(h->ra)) {
        memcpy(h->ra, value, vlen);
        h->ralen = vlen;
    }
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct h1 *h = p->data;

    return cr_hparse_name(&h->hp, at, len) < 0 ? -1 : 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct h1 *h = p->data;

    return cr_hparse_value(&h->hp, at, len) < 0 ? -1 : 0;
}

static int on_headers(http_parser *p)
{
    struct h1 *h = p->data;
    struct rp_req *r = current(h);

    if (cr_hparse_end(&h->hp) < 0)
        return -1;

    /* an answer to HEAD has no body, whatever Content-Length says */
    return r != NULL && strcmp(r->spec.method, "HEAD") == 0 ? 1 : 0;
}

static int on_complete(http_parser *p)
{
    struct h1 *h = p->data;
    struct rp_req *r = current(h);

    if (p->status_code < 200)
        return 0; /* 1xx: the real answer follows */
    if (!http_should_keep_alive(p))
        h->c->draining = true;
    r->status = (int)p->status_code;
    if (h->ralen > 0)
        rp_req_set_retry_after(r, h->ra, h->ralen);
    rp_req_answered(r);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers,
    .on_message_complete = on_complete,
};

static int h1_feed(struct rp_conn *c, const unsigned char *d, size_t n)
{
    struct h1 *h = h1_of(c);
    size_t done = http_parser_execute(&h->parser, &settings, (const char *)d, n);

    if (HTTP_PARSER_ERRNO(&h->parser) != HPE_OK || (n > 0 && done != n))
        return CR_EPROTO;
    return 0;
}

/* ------------------------------------------------------------ the request */

static int out_str(struct rp_conn *c, const char *s)
{
    return rp_conn_out(c, s, strlen(s));
}

/* "name: value\r\n" */
static int out_field(struct rp_conn *c, const char *name, const char *value)
{
    int rc = out_str(c, name);

    if (rc == 0)
        rc = rp_conn_out(c, ": ", 2);
    if (rc == 0)
        rc = out_str(c, value);
    return rc == 0 ? rp_conn_out(c, "\r\n", 2) : rc;
}

static bool has_body(const struct rp_spec *s)
{
    return s->body > 0 || strcmp(s->method, "POST") == 0 || strcmp(s->method, "PUT") == 0 ||
           strcmp(s->method, "PATCH") == 0;
}

static int h1_submit(struct rp_conn *c, struct rp_req *r)
{
    const struct rp_engine *e = c->e;
    const struct rp_engine_tenant *t = &e->tenants[r->spec.tenant];
    char len[32];
    int rc = 0;

    rc |= out_str(c, r->spec.method);
    rc |= rp_conn_out(c, " ", 1);
    rc |= out_str(c, r->spec.path);
    rc |= out_str(c, " HTTP/1.1\r\n");
    rc |= out_field(c, "Host", e->p->target.authority);
    if (t->value != NULL)
        rc |= out_field(c, e->p->tenants.header, t->value);
    if (e->p->client.request_id) {
        char rid[48];
        rp_req_id(r, rid);
        rc |= out_field(c, "x-request-id", rid);
    }
    for (size_t i = 0; i < r->spec.nheaders; i++)
        rc |= out_field(c, r->spec.hname[i], r->spec.hvalue[i]);
    if (has_body(&r->spec)) {
        snprintf(len, sizeof(len), "%llu", (unsigned long long)r->spec.body);
        rc |= out_field(c, "Content-Length", len);
    }
    rc |= rp_conn_out(c, "\r\n", 2);
    h1_of(c)->body_left = r->spec.body;
    return rc != 0 ? CR_ENOMEM : 0;
}

/* The body, a piece at a time while the output drains. */
static int h1_pump(struct rp_conn *c)
{
    struct h1 *h = h1_of(c);

    while (h->body_left > 0 && c->olen - c->ooff < RP_OUT_HIGH) {
        size_t n = (size_t)CR_MIN(h->body_left, sizeof(xs));
        if (rp_conn_out(c, xs, n) != 0)
            return CR_ENOMEM;
        h->body_left -= n;
    }
    return 0;
}

/* HTTP/1.1 cannot cancel one exchange: the connection goes. */
static void h1_cancel(struct rp_conn *c, struct rp_req *r)
{
    c->broken = true;
}

static void h1_goodbye(struct rp_conn *c)
{
}

static int h1_start(struct rp_conn *c)
{
    struct h1 *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return CR_ENOMEM;
    http_parser_init(&h->parser, HTTP_RESPONSE);
    h->parser.data = h;
    /* as corral's own upstream codec: a field past 64 KiB is an error */
    cr_hparse_init(&h->hp, 65536, 65536, false, on_field_done, h);
    h->c = c;
    c->cx = h;
    return 0;
}

static void h1_free(struct rp_conn *c)
{
    struct h1 *h = h1_of(c);

    if (h != NULL)
        cr_hparse_free(&h->hp);
    free(c->cx);
    c->cx = NULL;
}

const struct rp_codec rp_h1_codec = {
    .start = h1_start,
    .submit = h1_submit,
    .feed = h1_feed,
    .pump = h1_pump,
    .cancel = h1_cancel,
    .goodbye = h1_goodbye,
    .free = h1_free,
};
