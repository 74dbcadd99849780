/* testup_ws.c - a WebSocket echo (RFC 6455 frames). */
#include "testup_ws.h"

#include <event2/event.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "testup.h"

struct tu_ws {
    struct tu_server *srv;
    struct event *ping;
    tu_ws_ping_cb cb;
    void *arg;
    uint64_t pings;
    unsigned ended : 1;
    unsigned in_fragment : 1; /* a data message's continuation is due */
};

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tu_ws *ws = arg;
    (void)fd;
    (void)what;

    if (!ws->ended)
        ws->cb(ws, ws->arg);
}

struct tu_ws *tu_ws_new(struct tu_server *srv, tu_ws_ping_cb cb, void *arg)
{
    struct tu_ws *ws = calloc(1, sizeof(*ws));
    struct tu_stats *st = &srv->stats;

    if (ws == NULL)
        return NULL;
    ws->srv = srv;
    ws->cb = cb;
    ws->arg = arg;
    if (cb != NULL && srv->opts.ws_ping_ms > 0) {
        struct timeval tv = {(time_t)(srv->opts.ws_ping_ms / 1000),
                             (suseconds_t)(srv->opts.ws_ping_ms % 1000) * 1000};
        ws->ping = event_new(srv->base, -1, EV_PERSIST, ping_cb, ws);
        if (ws->ping == NULL || event_add(ws->ping, &tv) != 0) {
            if (ws->ping)
                event_free(ws->ping);
            free(ws);
            return NULL;
        }
    }
    st->ws_open++;
    st->ws_total++;
    if (st->ws_open > st->ws_peak)
        st->ws_peak = st->ws_open;
    return ws;
}

void tu_ws_free(struct tu_ws *ws)
{
    if (ws == NULL)
        return;
    if (ws->ping)
        event_free(ws->ping);
    if (ws->srv->stats.ws_open > 0)
        ws->srv->stats.ws_open--;
    free(ws);
}

/* Appends an unmasked frame header for opcode (with FIN if fin). */
static int put_head(struct evbuffer *out, int fin, int opcode, uint64_t len)
{
    unsigned char h[10];
    size_t n = 2;

    h[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        n = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        n = 10;
    }
    return evbuffer_add(out, h, n) == 0 ? 0 : CR_ENOMEM;
}

/* Appends a close with code (0: none) and ends the WebSocket. */
static int put_close(struct tu_ws *ws, struct evbuffer *out, unsigned code)
{
    unsigned char c[2] = {(unsigned char)(code >> 8), (unsigned char)code};

    ws->ended = 1;
    if (put_head(out, 1, 8, code ? 2 : 0) != 0 || (code && evbuffer_add(out, c, 2) != 0))
        return CR_ENOMEM;
    return 0;
}

static void count_close(struct tu_stats *st, unsigned code)
{
    size_t i;

    for (i = 0; i < st->nws_close; i++) {
        if (st->ws_close[i].code == code) {
            st->ws_close[i].n++;
            return;
        }
    }
    if (st->nws_close < TU_WS_CODES_MAX) {
        st->ws_close[st->nws_close].code = code;
        st->ws_close[st->nws_close++].n = 1;
    }
}

/* One whole frame: opcode, fin, unmasked payload p[len]. Returns 0, 1
 * (close answered), -1 (protocol error answered) or CR_ENOMEM. */
static int answer(struct tu_ws *ws, int fin, int opcode, const unsigned char *p, size_t len,
                  struct evbuffer *out)
{
    unsigned code = 0;

    switch (opcode) {
    case 0: /* continuation */
    case 1: /* text */
    case 2: /* binary */
        if ((opcode == 0) != ws->in_fragment)
            return put_close(ws, out, 1002) ? CR_ENOMEM : -1;
        ws->in_fragment = !fin;
        ws->srv->stats.ws_bytes += len;
        if (put_head(out, fin, opcode, len) != 0 || evbuffer_add(out, p, len) != 0)
            return CR_ENOMEM;
        return 0;
    case 8: /* close */
        if (len == 1)
            return put_close(ws, out, 1002) ? CR_ENOMEM : -1;
        if (len >= 2)
            code = (unsigned)p[0] << 8 | p[1];
        count_close(&ws->srv->stats, len >= 2 ? code : 1005);
        return put_close(ws, out, code) ? CR_ENOMEM : 1;
    case 9: /* ping */
        if (put_head(out, 1, 10, len) != 0 || evbuffer_add(out, p, len) != 0)
            return CR_ENOMEM;
        return 0;
    case 10: /* pong */
        return 0;
    default:
        return put_close(ws, out, 1002) ? CR_ENOMEM : -1;
    }
}

/* Parses the frame header at the front of in. Returns 1 and sets the
 * fields when the whole frame is there, 0 when more is needed, -1 when the
 * header is bad (*why: the close code). */
static int frame_head(struct evbuffer *in, int *fin, int *opcode, size_t *hlen, uint64_t *plen,
                      unsigned char mask[4], unsigned *why)
{
    unsigned char h[14];
    size_t have = evbuffer_get_length(in), need = 2;
    uint64_t len;

    if (have < 2)
        return 0;
    evbuffer_copyout(in, h, have < sizeof(h) ? have : sizeof(h));
    *fin = h[0] >> 7;
    *opcode = h[0] & 0x0f;
    *why = 1002;
    if ((h[0] & 0x70) != 0 || !(h[1] & 0x80))
        return -1; /* reserved bits without an extension; unmasked */
    len = h[1] & 0x7f;
    if (len == 126)
        need += 2;
    else if (len == 127)
        need += 8;
    need += 4;
    if (have < need)
        return 0;
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
    }
    if ((*opcode & 8) && (len > 125 || !*fin))
        return -1;
    if (len > TU_WS_MAX_PAYLOAD) {
        *why = 1009;
        return -1;
    }
    memcpy(mask, h + need - 4, 4);
    *hlen = need;
    *plen = len;
    return have - need >= len;
}

int tu_ws_feed(struct tu_ws *ws, struct evbuffer *in, struct evbuffer *out)
{
    while (!ws->ended) {
        unsigned char mask[4], *p;
        int fin, opcode, rv;
        size_t hlen, i;
        uint64_t plen;
        unsigned why;

        rv = frame_head(in, &fin, &opcode, &hlen, &plen, mask, &why);
        if (rv < 0)
            return put_close(ws, out, why) ? CR_ENOMEM : -1;
        if (rv == 0)
            return 0;
        evbuffer_drain(in, hlen);
        p = malloc(plen ? plen : 1);
        if (p == NULL)
            return CR_ENOMEM;
        evbuffer_remove(in, p, plen);
        for (i = 0; i < plen; i++)
            p[i] ^= mask[i & 3];
        rv = answer(ws, fin, opcode, p, plen, out);
        free(p);
        if (rv != 0)
            return rv;
    }
    return 0;
}

int tu_ws_ping(struct tu_ws *ws, struct evbuffer *out)
{
    unsigned char p[8];
    uint64_t n = ++ws->pings;

    if (ws->ended)
        return 0;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(n >> (56 - 8 * i));
    if (put_head(out, 1, 9, sizeof(p)) != 0 || evbuffer_add(out, p, sizeof(p)) != 0)
        return CR_ENOMEM;
    return 0;
}

void tu_ws_accept(const char *key, size_t klen, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    out[0] = '\0';
    if (c != NULL && EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1 &&
        EVP_DigestUpdate(c, key, klen) == 1 && EVP_DigestUpdate(c, guid, sizeof(guid) - 1) == 1 &&
        EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 20)
        EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    EVP_MD_CTX_free(c);
}
