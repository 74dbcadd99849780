/* testup_stats.c - the counters /__stats and --stats-file report. */
#include "testup_stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

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

void tu_stats_reset(struct tu_stats *st)
{
    st->requests = 0;
    st->max_inflight = st->inflight;
}

int tu_stats_json(const struct tu_stats *st, struct evbuffer *out)
{
    int n = evbuffer_add_printf(
        out,
        "{\"connections_accepted\":%" PRIu64 ",\"connections_open\":%" PRIu64
        ",\"requests\":%" PRIu64 ",\"inflight\":%" PRIu64 ",\"max_inflight\":%" PRIu64
        ",\"h2_connections\":%" PRIu64 ",\"h1_connections\":%" PRIu64 "}",
        st->connections_accepted, st->connections_open, st->requests, st->inflight,
        st->max_inflight, st->h2_connections, st->h1_connections);
    return n < 0 ? CR_ENOMEM : 0;
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

int tu_stats_write_file(const struct tu_stats *st, const char *path)
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
    rv = tu_stats_json(st, buf);
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
