/* fuzz_profile.c - corral-replay's profile loader (src/replay/rp_profile.c):
 * YAML text becomes a profile or a list of FILE:LINE:COL errors, never a
 * crash, a leak or a hang. Each input is loaded twice, as a campaign
 * profile and as the profile of an access-log replay (events refused,
 * tenants optional). Seeds: etc/replay/ and the unit tests' profiles, in
 * tests/fuzz/corpus/profile/. */
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fuzz_text.h"
#include "rp_curve.h"
#include "rp_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_profile: %s failed\n", #cond);                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* What a loaded profile promises: every event names a tenant by its index,
 * rates are finite and never negative, and the first 10 ms of the
 * schedule come out in time order with valid indexes. */
static void check_profile(const struct rp_profile *p)
{
    CHECK(p->nphases > 0 && p->duration_ms > 0);
    for (size_t i = 0; i < p->nevents; i++)
        CHECK(rp_profile_tenant(p, p->events[i].tenant) == (int)p->events[i].tenant_index);
    uint64_t at[] = {0, p->duration_ms * 500, p->duration_ms * 1000 - 1};
    for (size_t t = 0; t < p->tenants.nlist; t++)
        for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
            double r = rp_curve_rate(p, t, at[k]);
            CHECK(r >= 0 && r <= 1e300);
        }
    struct rp_sched *s = rp_sched_new(p);
    CHECK(s != NULL);
    struct rp_arrival a;
    uint64_t last = 0;
    for (int n = 0; n < 1000 && rp_sched_next(s, 10000, &a); n++) {
        CHECK(a.at_us >= last && a.at_us <= 10000 && a.tenant < p->tenants.nlist);
        CHECK(a.tpl < p->tenants.list[a.tenant].nrequests);
        last = a.at_us;
    }
    rp_sched_free(s);
}

static void load(const char *text, unsigned flags)
{
    struct rp_profile *p = NULL;
    struct cr_diag diag;
    if (rp_profile_load_string("fuzz.yaml", text, flags, &p, &diag) == 0)
        check_profile(p);
    cr_diag_print(&diag, fuzz_devnull());
    cr_diag_free(&diag);
    rp_profile_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    load(text, 0);
    load(text, RP_PROFILE_ACCESS_LOG);
    free(text);
    return 0;
}
