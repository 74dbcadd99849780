/* testup_stats.c - the counters /__stats and --stats-file report. */
#include "testup_stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "testup_json.h"

void tu_stats_req_begin(struct tu_stats *st)
{
    st->requests++;
    st->inflight++;
    if (st->inflight > st->max_inflight)
        st->max_inflight = st->inflight;
}

void tu_stats_req_end(struct tu_stats *st)
{
    if (st->inflight > 0)
        st->inflight--;
}

void tu_stats_count_by(struct tu_stats *st, const char *value, size_t len)
{
    size_t i;

    if (value == NULL) {
        st->by_none++;
        return;
    }
    len = len > TU_BY_VALUE_MAX ? TU_BY_VALUE_MAX : len;
    for (i = 0; i < st->nby; i++) {
        if (strlen(st->by[i].value) == len && memcmp(st->by[i].value, value, len) == 0) {
            st->by[i].n++;
            return;
        }
    }
    if (st->nby == TU_BY_MAX) {
        st->by_other++;
        return;
    }
    memcpy(st->by[st->nby].value, value, len);
    st->by[st->nby].value[len] = '\0';
    st->by[st->nby++].n = 1;
}

void tu_stats_reset(struct tu_stats *st)
{
    st->requests = 0;
    st->max_inflight = st->inflight;
    st->nby = 0;
    st->by_other = st->by_none = 0;
}

/* ,"by_header":{...} */
static int by_json(const struct tu_stats *st, struct evbuffer *out)
{
    int bad = evbuffer_add_printf(out, ",\"by_header\":{") < 0;

    for (size_t i = 0; i < st->nby && !bad; i++) {
        bad |= i > 0 && evbuffer_add(out, ",", 1) != 0;
        bad |= tu_json_str(out, st->by[i].value, strlen(st->by[i].value)) != 0;
        bad |= evbuffer_add_printf(out, ":%" PRIu64, st->by[i].n) < 0;
    }
    if (st->by_other > 0)
        bad |= evbuffer_add_printf(out, "%s\"(other)\":%" PRIu64, st->nby ? "," : "",
                                   st->by_other) < 0;
    if (st->by_none > 0)
        bad |= evbuffer_add_printf(out, "%s\"(none)\":%" PRIu64, st->nby || st->by_other ? "," : "",
                                   st->by_none) < 0;
    bad |= evbuffer_add(out, "}", 1) != 0;
    return bad ? CR_ENOMEM : 0;
}

/* ,"ws_open":N,...,"ws_close_codes":{...}. Returns 0 or -1. */
static int ws_json(const struct tu_stats *st, struct evbuffer *out)
{
    int bad = evbuffer_add_printf(out,
                                  ",\"ws_open\":%" PRIu64 ",\"ws_peak\":%" PRIu64
                                  ",\"ws_total\":%" PRIu64 ",\"ws_bytes\":%" PRIu64
                                  ",\"ws_close_codes\":{",
                                  st->ws_open, st->ws_peak, st->ws_total, st->ws_bytes) < 0;

    for (size_t i = 0; i < st->nws_close && !bad; i++)
        bad |= evbuffer_add_printf(out, "%s\"%u\":%" PRIu64, i ? "," : "", st->ws_close[i].code,
                                   st->ws_close[i].n) < 0;
    bad |= evbuffer_add(out, "}", 1) != 0;
    return bad ? -1 : 0;
}

int tu_stats_json(const struct tu_stats *st, const char *count_header, struct evbuffer *out)
{
    int n = evbuffer_add_printf(
        out,
        "{\"connections_accepted\":%" PRIu64 ",\"connections_open\":%" PRIu64
        ",\"requests\":%" PRIu64 ",\"inflight\":%" PRIu64 ",\"max_inflight\":%" PRIu64
        ",\"h2_connections\":%" PRIu64 ",\"h1_connections\":%" PRIu64,
        st->connections_accepted, st->connections_open, st->requests, st->inflight,
        st->max_inflight, st->h2_connections, st->h1_connections);
    if (n >= 0)
        n = ws_json(st, out);
    if (n < 0 || (count_header != NULL && by_json(st, out) != 0))
        return CR_ENOMEM;
    return evbuffer_add(out, "}", 1) == 0 ? 0 : CR_ENOMEM;
}

/* Writes all of buf to f. Returns 0 or CR_EIO. */
static int write_all(FILE *f, struct evbuffer *buf)
{
    size_t len = evbuffer_get_length(buf);
    const unsigned char *p = evbuffer_pullup(buf, -1);

    if (len > 0 && p == NULL)
        return CR_EIO;
    if (fwrite(p, 1, len, f) != len || fputc('\n', f) == EOF)
        return CR_EIO;
    return 0;
}

int tu_stats_write_file(const struct tu_stats *st, const char *count_header, const char *path)
{
    struct evbuffer *buf;
    char *tmp;
    size_t tmplen = strlen(path) + sizeof(".tmp");
    FILE *f;
    int rv;

    buf = evbuffer_new();
    if (buf == NULL)
        return CR_ENOMEM;
    tmp = malloc(tmplen);
    if (tmp == NULL) {
        rv = CR_ENOMEM;
        goto fail_tmp;
    }
    snprintf(tmp, tmplen, "%s.tmp", path);
    rv = tu_stats_json(st, count_header, buf);
    if (rv != 0)
        goto fail_json;
    f = fopen(tmp, "w");
    if (f == NULL) {
        rv = CR_EIO;
        goto fail_json;
    }
    rv = write_all(f, buf);
    if (fclose(f) != 0 && rv == 0)
        rv = CR_EIO;
    if (rv == 0 && rename(tmp, path) != 0)
        rv = CR_EIO;
    if (rv != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
    }
fail_json:
    free(tmp);
fail_tmp:
    evbuffer_free(buf);
    return rv;
}
