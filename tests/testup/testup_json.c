/* testup_json.c - writing JSON strings. */
#include "testup_json.h"

#include <stdint.h>
#include <stdio.h>

#include "common.h"

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0 if there is none. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    size_t n, i;
    uint32_t cp;

    if (p[0] < 0xc2 || p[0] > 0xf4)
        return 0;
    n = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
    if (avail < n)
        return 0;
    cp = p[0] & (0x7f >> n);
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* The escape for byte c, or NULL if it is copied as is. */
static const char *short_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        return NULL;
    }
}

int tu_json_str(struct evbuffer *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;
    int rv = evbuffer_add(out, "\"", 1);

    while (rv == 0 && i < len) {
        unsigned char c = p[i];
        const char *esc = short_escape(c);
        size_t u8 = c >= 0x80 ? utf8_len(p + i, len - i) : 0;

        if (esc == NULL && c >= 0x20 && c != 0x7f && (c < 0x80 || u8 > 0)) {
            /* Copied as is: extend the current run. */
            size_t step = c < 0x80 ? 1 : u8;
            run += step;
            i += step;
            continue;
        }
        if (run > 0)
            rv = evbuffer_add(out, p + i - run, run);
        run = 0;
        if (rv != 0)
            break;
        if (esc != NULL)
            rv = evbuffer_add(out, esc, 2);
        else
            rv = evbuffer_add_printf(out, "\\u%04x", (unsigned)c) < 0 ? -1 : 0;
        i++;
    }
    if (rv == 0 && run > 0)
        rv = evbuffer_add(out, p + i - run, run);
    if (rv == 0)
        rv = evbuffer_add(out, "\"", 1);
    return rv == 0 ? 0 : CR_ENOMEM;
}
