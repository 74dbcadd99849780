/* fuzz_accesslog.c - corral-replay's access-log reader
 * (src/replay/rp_accesslog.c): lines of corral's JSON access log become a
 * schedule of requests or a list of FILE:LINE:COL errors, never a crash, a
 * leak or a hang. The whole input is the file (read through fmemopen), at
 * a speed-up of 1 and a cut at one hour; a loaded log is then played out
 * as the engine would take it, and what comes out must be in time order
 * with a method, a path and a known tenant. Seeds: access-log lines as
 * corral writes them, in tests/fuzz/corpus/accesslog/. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "fuzz_text.h"
#include "rp_accesslog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_accesslog: %s failed\n", #cond);                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void play(struct rp_accesslog *l)
{
    const char *const *names;
    size_t ntenants = rp_accesslog_tenants(l, &names);
    size_t n = rp_accesslog_count(l, NULL, NULL), got = 0;
    struct rp_source src = rp_accesslog_source(l);
    struct rp_spec sp;
    uint64_t last = 0, span = rp_accesslog_span_us(l);
    while (src.next(src.ctx, UINT64_MAX, &sp)) {
        CHECK(got < n && sp.at_us >= last && sp.at_us <= span);
        CHECK(sp.method && sp.path && sp.tenant < ntenants && names[sp.tenant]);
        last = sp.at_us;
        got++;
    }
    CHECK(got == n && src.done(src.ctx));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    FILE *f = size ? fmemopen(text, size, "r") : NULL;
    if (!f) { /* fmemopen refuses a size of 0: an empty file */
        free(text);
        return 0;
    }
    struct rp_accesslog *l = NULL;
    struct cr_diag diag;
    if (rp_accesslog_load_stream(f, "fuzz.log", 1.0, 3600 * 1000, &l, &diag) == 0)
        play(l);
    cr_diag_print(&diag, fuzz_devnull());
    cr_diag_free(&diag);
    rp_accesslog_free(l);
    fclose(f);
    free(text);
    return 0;
}
