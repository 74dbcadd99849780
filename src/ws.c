/* ws.c - WebSocket handshake values (ws.h). */
#include "ws.h"

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "common.h"

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static bool b64char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

bool cr_ws_key_valid(const char *key, size_t len)
{
    if (len != CR_WS_KEY_LEN || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!b64char(key[i]))
            return false;
    /* the last character before the padding carries 2 bits: its low four are 0 */
    return strchr("AQgw", key[21]) != NULL;
}

int cr_ws_accept(const char *key, size_t len, char out[CR_WS_ACCEPT_LEN + 1])
{
    unsigned char in[128], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (len > sizeof(in) - (sizeof(GUID) - 1))
        len = sizeof(in) - (sizeof(GUID) - 1); /* a valid key is 24 bytes */
    memcpy(in, key, len);
    memcpy(in + len, GUID, sizeof(GUID) - 1);
    if (EVP_Digest(in, len + sizeof(GUID) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return CR_ENOMEM;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
    return 0;
}

int cr_ws_new_key(char out[CR_WS_KEY_LEN + 1])
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return CR_EIO;
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
    return 0;
}

bool cr_ws_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = v; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
            return true;
        p = e;
    }
    return false;
}

/* A frame's header is whole: its payload follows. */
static void header_done(struct cr_ws_track *t)
{
    uint8_t l7 = t->hdr[1] & 0x7f;
    uint64_t len = l7;
    if (l7 == 126) {
        len = (uint64_t)t->hdr[2] << 8 | t->hdr[3];
    } else if (l7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | t->hdr[2 + i];
    }
    t->op = t->hdr[0] & 0x0f;
    t->hlen = t->need = 0;
    t->left = len;
    if (t->op < 8)
        t->data++; /* an empty data frame is activity too */
}

size_t cr_ws_track(struct cr_ws_track *t, const uint8_t *p, size_t n, bool stop)
{
    size_t i = 0;
    while (i < n) {
        if (t->left > 0) {
            uint64_t k = CR_MIN(t->left, (uint64_t)(n - i));
            t->left -= k;
            if (t->op < 8)
                t->data += k;
            i += (size_t)k;
        } else {
            t->hdr[t->hlen++] = p[i++];
            if (t->hlen == 2) {
                uint8_t l7 = t->hdr[1] & 0x7f;
                t->need = (uint8_t)(2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) +
                                    (t->hdr[1] & 0x80 ? 4 : 0));
            }
            if (t->hlen < 2 || t->hlen < t->need)
                continue;
            header_done(t);
        }
        if (cr_ws_at_boundary(t)) {
            if (t->op == 8)
                t->closes++;
            if (stop)
                return i;
        }
    }
    return i;
}

size_t cr_ws_track_buf(struct cr_ws_track *t, struct evbuffer *b, size_t max, bool stop)
{
    size_t done = 0;
    if (stop && cr_ws_at_boundary(t))
        return 0;
    struct evbuffer_ptr pos;
    if (evbuffer_ptr_set(b, &pos, 0, EVBUFFER_PTR_SET) < 0)
        return 0;
    while (done < max) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(b, (ev_ssize_t)(max - done), &pos, &v, 1) < 1 || v.iov_len == 0)
            break;
        size_t len = CR_MIN(v.iov_len, max - done);
        size_t k = cr_ws_track(t, v.iov_base, len, stop);
        done += k;
        if (k < len || evbuffer_ptr_set(b, &pos, k, EVBUFFER_PTR_ADD) < 0)
            break;
    }
    return done;
}

static size_t frame_bytes(uint8_t *f, uint8_t op, const uint8_t *payload, uint8_t len, bool masked)
{
    size_t n = 0;
    f[n++] = (uint8_t)(0x80 | op);
    f[n++] = (uint8_t)((masked ? 0x80 : 0) | len);
    uint8_t mask[4] = {0, 0, 0, 0};
    if (masked) {
        if (getrandom(mask, sizeof(mask), 0) != (ssize_t)sizeof(mask))
            mask[0] = 0x5a; /* a fixed mask still frames correctly */
        memcpy(f + n, mask, 4);
        n += 4;
    }
    for (uint8_t i = 0; i < len; i++)
        f[n++] = payload[i] ^ mask[i & 3];
    return n;
}

static int frame(struct evbuffer *out, uint8_t op, const uint8_t *payload, uint8_t len, bool masked)
{
    uint8_t f[2 + 4 + 125];
    size_t n = frame_bytes(f, op, payload, len, masked);
    return evbuffer_add(out, f, n) == 0 ? 0 : CR_ENOMEM;
}

int cr_ws_ping(struct evbuffer *out, bool masked)
{
    return frame(out, 0x9, NULL, 0, masked);
}

int cr_ws_close(struct evbuffer *out, uint16_t code, bool masked)
{
    uint8_t f[CR_WS_CLOSE_MAX];
    size_t n = cr_ws_close_bytes(f, code, masked);
    return evbuffer_add(out, f, n) == 0 ? 0 : CR_ENOMEM;
}

size_t cr_ws_close_bytes(uint8_t f[CR_WS_CLOSE_MAX], uint16_t code, bool masked)
{
    const uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    return frame_bytes(f, 0x8, p, 2, masked);
}

/* ------------------------------------------------------------ tunnels */

void cr_ws_tun_start(struct cr_ws_tun *t, uint64_t now)
{
    t->last_us = now;
}

void cr_ws_tun_drain(struct cr_ws_tun *t, uint64_t now, uint64_t drain_ms)
{
    drain_ms -= CR_MIN((uint64_t)CR_WS_CLOSE_WAIT_MS, drain_ms / 2);
    t->drain_at_us = now + drain_ms * 1000;
}

uint64_t cr_ws_tun_next(const struct cr_ws_tun *t, uint64_t idle_ms, uint64_t ping_ms)
{
    uint64_t at = UINT64_MAX;
    if (t->close)
        return t->closed_us + CR_WS_CLOSE_WAIT_MS * 1000;
    if (idle_ms)
        at = CR_MIN(at, t->last_us + idle_ms * 1000);
    if (ping_ms)
        at = CR_MIN(at, CR_MAX(t->last_us, t->pinged_us) + ping_ms * 1000);
    if (t->drain_at_us)
        at = CR_MIN(at, t->drain_at_us);
    return at;
}

bool cr_ws_tun_close(struct cr_ws_tun *t, uint16_t code, const char *why, uint64_t now)
{
    if (t->close)
        return false;
    t->close = code;
    t->why = why;
    t->closed_us = now;
    return true;
}

enum cr_ws_tun_act cr_ws_tun_timer(struct cr_ws_tun *t, uint64_t now, uint64_t idle_ms,
                                   uint64_t ping_ms)
{
    if (t->close)
        return now >= t->closed_us + CR_WS_CLOSE_WAIT_MS * 1000 ? CR_WS_TUN_GONE : CR_WS_TUN_NONE;
    if (t->drain_at_us && now >= t->drain_at_us)
        return cr_ws_tun_close(t, 1001, "draining", now), CR_WS_TUN_CLOSE;
    if (idle_ms && now - t->last_us >= idle_ms * 1000)
        return cr_ws_tun_close(t, 1001, "tunnel idle timeout", now), CR_WS_TUN_CLOSE;
    if (ping_ms && now - CR_MAX(t->last_us, t->pinged_us) >= ping_ms * 1000) {
        t->ping_due = true;
        t->pinged_us = now;
        return CR_WS_TUN_PING;
    }
    return CR_WS_TUN_NONE;
}

bool cr_ws_tun_in(struct cr_ws_tun *t, const uint8_t *p, size_t n, uint64_t now)
{
    uint64_t closes = t->from_client.closes, data = t->from_client.data;
    cr_ws_track(&t->from_client, p, n, false);
    if (t->from_client.closes > closes && !t->first_close)
        t->first_close = 'c';
    if (t->from_client.data > data)
        t->last_us = now; /* data; a pong (to corral's ping, most likely) is not */
    return t->close_sent && t->from_client.closes > closes;
}

size_t cr_ws_tun_own(struct cr_ws_tun *t, uint8_t f[6])
{
    if (!cr_ws_at_boundary(&t->to_client) || t->close_sent)
        return 0;
    if (t->close) {
        const uint8_t p[2] = {(uint8_t)(t->close >> 8), (uint8_t)t->close};
        t->close_sent = true;
        return frame_bytes(f, 0x8, p, 2, false);
    }
    if (t->ping_due) {
        t->ping_due = false;
        return frame_bytes(f, 0x9, NULL, 0, false);
    }
    return 0;
}

size_t cr_ws_tun_out(struct cr_ws_tun *t, struct evbuffer *b, size_t max, uint64_t now)
{
    if (t->close_sent || max == 0)
        return 0;
    uint64_t closes = t->to_client.closes, data = t->to_client.data;
    size_t n = cr_ws_track_buf(&t->to_client, b, max, t->close || t->ping_due);
    if (t->to_client.closes > closes && !t->first_close)
        t->first_close = 'u';
    if (t->to_client.data > data)
        t->last_us = now;
    return n;
}

const char *cr_ws_tun_reason(const struct cr_ws_tun *t, bool upstream_eof)
{
    if (t->why)
        return t->why;
    if (t->first_close == 'c')
        return "tunnel closed by the client";
    if (t->first_close == 'u')
        return "tunnel closed by the upstream";
    return upstream_eof ? "tunnel closed by the upstream" : "tunnel closed by the client";
}
