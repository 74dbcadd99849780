/* check_tenant.c - tenant identification in every mode, the default tenant
 * for everything unknown, route priorities, and the normalised paths that
 * path prefixes are matched against, on segment boundaries.
 *
 * Configs are built as structs (the YAML side is check_config's job). */
#include "ac_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "tenant.h"

/* ------------------------------------------------------------ fixtures */

static struct cr_cfg_limits limits_of(uint32_t weight)
{
    struct cr_cfg_limits l = {.rate = 10.0 * weight,
                              .burst = 5,
                              .concurrency = weight,
                              .queue = 100,
                              .max_wait_ms = 5000,
                              .weight = weight};
    return l;
}

static struct cr_tenants *build(const struct cr_cfg_tenants *cfg)
{
    struct cr_tenants *t = NULL;

    ck_assert_int_eq(cr_tenants_new(cfg, &t), 0);
    ck_assert_ptr_nonnull(t);
    return t;
}

static const char *who(const struct cr_tenants *t, const char *sni, const char *path,
                       const char *value)
{
    struct cr_tenant_key k = {.sni = sni, .path = path, .header_value = value};
    const struct cr_tenant *tn = cr_tenants_identify(t, &k);

    ck_assert_ptr_nonnull(tn);
    return tn->name;
}

/* The priority of a path as the pool classifies it: normalised first. */
static enum cr_priority prio(const struct cr_tenants *t, const char *raw)
{
    char buf[512];

    ck_assert_uint_lt(strlen(raw), sizeof(buf));
    strcpy(buf, raw);
    cr_tenants_normalize_path(buf);
    return cr_tenants_priority(t, buf);
}

/* The tenant of a path (by: path_prefix) as the pool finds it. */
static const char *who_path(const struct cr_tenants *t, const char *raw)
{
    char buf[512];

    ck_assert_uint_lt(strlen(raw), sizeof(buf));
    strcpy(buf, raw);
    cr_tenants_normalize_path(buf);
    return who(t, NULL, buf, NULL);
}

/* ------------------------------------------------------------ tests */

START_TEST(by_none_is_always_default)
{
    struct cr_cfg_tenant list[] = {{.name = "acme", .limits = limits_of(3)}};
    struct cr_cfg_tenants cfg = {
        .by = CR_TENANT_BY_NONE, .defaults = limits_of(1), .list = list, .nlist = 1};
    struct cr_tenants *t = build(&cfg);

    ck_assert_str_eq(who(t, "acme", "/acme", "acme"), "default");
    ck_assert_str_eq(who(t, NULL, NULL, NULL), "default");
    ck_assert_ptr_eq(cr_tenants_identify(t, NULL), cr_tenants_at(t, 0));
    cr_tenants_free(t);
}
END_TEST

START_TEST(table_indexes_names_and_limits)
{
    struct cr_cfg_tenant list[] = {{.name = "a", .limits = limits_of(2)},
                                   {.name = "b", .limits = limits_of(5)}};
    struct cr_cfg_tenants cfg = {
        .by = CR_TENANT_BY_HEADER, .defaults = limits_of(1), .list = list, .nlist = 2};
    struct cr_tenants *t = build(&cfg);

    ck_assert_uint_eq(cr_tenants_count(t), 3);
    ck_assert_str_eq(cr_tenants_at(t, 0)->name, "default");
    ck_assert_uint_eq(cr_tenants_at(t, 0)->index, 0);
    ck_assert_uint_eq(cr_tenants_at(t, 0)->limits.weight, 1);
    ck_assert_str_eq(cr_tenants_at(t, 1)->name, "a");
    ck_assert_uint_eq(cr_tenants_at(t, 1)->index, 1);
    ck_assert_uint_eq(cr_tenants_at(t, 1)->limits.weight, 2);
    ck_assert_str_eq(cr_tenants_at(t, 2)->name, "b");
    ck_assert_uint_eq(cr_tenants_at(t, 2)->index, 2);
    ck_assert_uint_eq(cr_tenants_at(t, 2)->limits.concurrency, 5);
    ck_assert_double_eq(cr_tenants_at(t, 2)->limits.rate, 50.0);
    ck_assert_ptr_null(cr_tenants_at(t, 3));
    cr_tenants_free(t);
}
END_TEST

START_TEST(table_does_not_point_into_the_config)
{
    char name[] = "acme";
    struct cr_cfg_tenant list[] = {{.name = name, .limits = limits_of(2)}};
    struct cr_cfg_tenants cfg = {
        .by = CR_TENANT_BY_HEADER, .defaults = limits_of(1), .list = list, .nlist = 1};
    struct cr_tenants *t = build(&cfg);

    memcpy(name, "xxxx", 4);
    ck_assert_str_eq(who(t, NULL, NULL, "acme"), "acme");
    ck_assert_str_eq(cr_tenants_at(t, 1)->name, "acme");
    cr_tenants_free(t);
}
END_TEST

START_TEST(by_header_exact_and_case_sensitive)
{
    struct cr_cfg_tenant list[] = {{.name = "acme"}, {.name = "acme-eu"}, {.name = "Globex"}};
    struct cr_cfg_tenants cfg = {
        .by = CR_TENANT_BY_HEADER, .header = "X-Tenant-Id", .list = list, .nlist = 3};
    struct cr_tenants *t = build(&cfg);

    ck_assert_str_eq(who(t, NULL, NULL, "acme"), "acme");
    ck_assert_str_eq(who(t, NULL, NULL, "acme-eu"), "acme-eu");
    ck_assert_str_eq(who(t, NULL, NULL, "Globex"), "Globex");
    ck_assert_str_eq(who(t, NULL, NULL, "ACME"), "default");
    ck_assert_str_eq(who(t, NULL, NULL, "globex"), "default");
    ck_assert_str_eq(who(t, NULL, NULL, "acm"), "default");
    ck_assert_str_eq(who(t, NULL, NULL, "acme "), "default");
    ck_assert_str_eq(who(t, NULL, NULL, ""), "default");
    ck_assert_str_eq(who(t, NULL, NULL, "default"), "default");
    ck_assert_str_eq(who(t, NULL, NULL, NULL), "default");
    /* other fields are not looked at in this mode */
    ck_assert_str_eq(who(t, "acme", "acme", NULL), "default");
    cr_tenants_free(t);
}
END_TEST

/* 400 tenants with 25 keys each: every key finds its tenant. */
START_TEST(by_api_key_many_keys)
{
    enum { NT = 400, NK = 25 };
    struct cr_cfg_tenant *list = calloc(NT, sizeof(*list));
    struct cr_cfg_tenants cfg = {
        .by = CR_TENANT_BY_API_KEY, .header = "X-Api-Key", .list = list, .nlist = NT};
    struct cr_tenants *t;
    char buf[64];

    for (int i = 0; i < NT; i++) {
        snprintf(buf, sizeof(buf), "tenant-%d", i);
        list[i].name = strdup(buf);
        list[i].api_keys = calloc(NK, sizeof(char *));
        list[i].napi_keys = NK;
        for (int j = 0; j < NK; j++) {
            snprintf(buf, sizeof(buf), "k-%08x-%d", (unsigned)(i * 7919 + j * 104729), j);
            list[i].api_keys[j] = strdup(buf);
        }
    }
    t = build(&cfg);
    for (int i = 0; i < NT; i++) {
        const struct cr_tenant *tn;
        for (int j = 0; j < NK; j++) {
            struct cr_tenant_key k = {.header_value = list[i].api_keys[j]};
            tn = cr_tenants_identify(t, &k);
            ck_assert_uint_eq(tn->index, (uint32_t)i + 1);
            ck_assert_str_eq(tn->name, list[i].name);
        }
    }
    /* a name is not a key; near misses are not keys */
    ck_assert_str_eq(who(t, NULL, NULL, "tenant-3"), "default");
    snprintf(buf, sizeof(buf), "%s", list[7].api_keys[3]);
    buf[strlen(buf) - 1] = '\0';
    ck_assert_str_eq(who(t, NULL, NULL, buf), "default");
    snprintf(buf, sizeof(buf), "%sx", list[7].api_keys[3]);
    ck_assert_str_eq(who(t, NULL, NULL, buf), "default");
    snprintf(buf, sizeof(buf), "K%s", list[7].api_keys[3] + 1);
    ck_assert_str_eq(who(t, NULL, NULL, buf), "default");
    ck_assert_str_eq(who(t, NULL, NULL, NULL), "default");
    cr_tenants_free(t);
    for (int i = 0; i < NT; i++) {
        for (int j = 0; j < NK; j++)
            free(list[i].api_keys[j]);
        free(list[i].api_keys);
        free(list[i].name);
    }
    free(list);
}
END_TEST

START_TEST(by_sni_case_insensitive_and_wildcards)
{
    char *m1[] = {"api.example.com", "api.example.net"};
    char *m2[] = {"*.example.com"};
    char *m3[] = {"www.example.com", "*.eu.example.com"};
    struct cr_cfg_tenant list[] = {{.name = "api", .match = m1, .nmatch = 2},
                                   {.name = "wild", .match = m2, .nmatch = 1},
                                   {.name = "www", .match = m3, .nmatch = 2}};
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_SNI, .list = list, .nlist = 3};
    struct cr_tenants *t = build(&cfg);

    ck_assert_str_eq(who(t, "api.example.com", NULL, NULL), "api");
    ck_assert_str_eq(who(t, "API.Example.COM", NULL, NULL), "api");
    ck_assert_str_eq(who(t, "api.example.net", NULL, NULL), "api");
    ck_assert_str_eq(who(t, "api.example.com.", NULL, NULL), "api");
    /* exact entries win over the wildcard */
    ck_assert_str_eq(who(t, "www.example.com", NULL, NULL), "www");
    ck_assert_str_eq(who(t, "shop.example.com", NULL, NULL), "wild");
    ck_assert_str_eq(who(t, "SHOP.EXAMPLE.COM", NULL, NULL), "wild");
    ck_assert_str_eq(who(t, "x.eu.example.com", NULL, NULL), "www");
    /* the wildcard covers one label, not the parent, not two labels */
    ck_assert_str_eq(who(t, "example.com", NULL, NULL), "default");
    ck_assert_str_eq(who(t, "a.shop.example.com", NULL, NULL), "default");
    ck_assert_str_eq(who(t, "eu.example.com", NULL, NULL), "wild");
    ck_assert_str_eq(who(t, ".example.com", NULL, NULL), "default");
    ck_assert_str_eq(who(t, "api.example.org", NULL, NULL), "default");
    ck_assert_str_eq(who(t, "", NULL, NULL), "default");
    ck_assert_str_eq(who(t, ".", NULL, NULL), "default");
    ck_assert_str_eq(who(t, NULL, "/api", "api"), "default");
    cr_tenants_free(t);
}
END_TEST

/* sni_name(buf, len): a host name of exactly len bytes (len >= 13) whose
 * first label is all 'a' and which ends in ".example.com". */
static char *sni_name(char *buf, size_t len)
{
    static const char parent[] = ".example.com";

    memset(buf, 'a', len - (sizeof(parent) - 1));
    memcpy(buf + len - (sizeof(parent) - 1), parent, sizeof(parent));
    return buf;
}

/* A name longer than a host name can be is not looked up at all, even when
 * it ends in a configured wildcard: the lengths on either side of the limit
 * (254, a trailing dot allowed) and far past it. Without the length guard
 * the 255-byte name would match "*.example.com" (and the 1 023-byte one
 * would overrun the lookup's buffer). */
START_TEST(by_sni_overlong_name_is_default)
{
    char *m[] = {"*.example.com"};
    struct cr_cfg_tenant list[] = {{.name = "wild", .match = m, .nmatch = 1}};
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_SNI, .list = list, .nlist = 1};
    struct cr_tenants *t = build(&cfg);
    char big[1024];

    ck_assert_str_eq(who(t, sni_name(big, 254), NULL, NULL), "wild");
    ck_assert_str_eq(who(t, strcat(sni_name(big, 254), "."), NULL, NULL), "wild");
    ck_assert_str_eq(who(t, sni_name(big, 255), NULL, NULL), "default");
    ck_assert_str_eq(who(t, sni_name(big, sizeof(big) - 1), NULL, NULL), "default");
    cr_tenants_free(t);
}
END_TEST

START_TEST(by_path_prefix_longest_wins)
{
    char *m1[] = {"/api"};
    char *m2[] = {"/api/v2", "/static/"};
    char *m3[] = {"/api/v2/admin"};
    struct cr_cfg_tenant list[] = {{.name = "v1", .match = m1, .nmatch = 1},
                                   {.name = "v2", .match = m2, .nmatch = 2},
                                   {.name = "admin", .match = m3, .nmatch = 1}};
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_PATH_PREFIX, .list = list, .nlist = 3};
    struct cr_tenants *t = build(&cfg);

    ck_assert_str_eq(who(t, NULL, "/api", NULL), "v1");
    ck_assert_str_eq(who(t, NULL, "/api/v1/users", NULL), "v1");
    ck_assert_str_eq(who(t, NULL, "/api/v2", NULL), "v2");
    ck_assert_str_eq(who(t, NULL, "/api/v2/users?x=1", NULL), "v2");
    ck_assert_str_eq(who(t, NULL, "/api/v2/admin", NULL), "admin");
    ck_assert_str_eq(who(t, NULL, "/api/v2/admin/x", NULL), "admin");
    ck_assert_str_eq(who(t, NULL, "/api/v2/admi", NULL), "v2");
    ck_assert_str_eq(who(t, NULL, "/static/app.js", NULL), "v2");
    ck_assert_str_eq(who(t, NULL, "/apix", NULL), "default"); /* not a segment of /api */
    ck_assert_str_eq(who(t, NULL, "/api/v2x", NULL), "v1");
    ck_assert_str_eq(who(t, NULL, "/api?x=/api/v2", NULL), "v1");
    ck_assert_str_eq(who(t, NULL, "/static", NULL), "default");
    ck_assert_str_eq(who(t, NULL, "/ap", NULL), "default");
    ck_assert_str_eq(who(t, NULL, "/API", NULL), "default");
    ck_assert_str_eq(who(t, NULL, "/", NULL), "default");
    ck_assert_str_eq(who(t, NULL, "", NULL), "default");
    ck_assert_str_eq(who(t, "/api", NULL, "/api"), "default");
    cr_tenants_free(t);
}
END_TEST

START_TEST(by_path_prefix_root_catches_all)
{
    char *m1[] = {"/"};
    char *m2[] = {"/b"};
    struct cr_cfg_tenant list[] = {{.name = "root", .match = m1, .nmatch = 1},
                                   {.name = "b", .match = m2, .nmatch = 1}};
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_PATH_PREFIX, .list = list, .nlist = 2};
    struct cr_tenants *t = build(&cfg);

    ck_assert_str_eq(who(t, NULL, "/anything", NULL), "root");
    ck_assert_str_eq(who(t, NULL, "/b/ar", NULL), "b");
    ck_assert_str_eq(who(t, NULL, "/bar", NULL), "root"); /* not a segment of /b */
    ck_assert_str_eq(who(t, NULL, "x", NULL), "default");
    cr_tenants_free(t);
}
END_TEST

/* A flood of made-up ids in every mode lands on the one default tenant, and
 * the table does not change. */
START_TEST(unknown_ids_share_the_default)
{
    static const enum cr_tenant_by modes[] = {CR_TENANT_BY_HEADER, CR_TENANT_BY_API_KEY,
                                              CR_TENANT_BY_SNI, CR_TENANT_BY_PATH_PREFIX};
    char *keys[] = {"secret"};
    char *sni[] = {"a.example.com"};
    char *paths[] = {"/a"};

    for (size_t m = 0; m < CR_ARRAY_LEN(modes); m++) {
        struct cr_cfg_tenant list[] = {{.name = "a"}};
        struct cr_cfg_tenants cfg = {.by = modes[m], .list = list, .nlist = 1};
        const struct cr_tenant *def;
        struct cr_tenants *t;
        char buf[64];

        if (modes[m] == CR_TENANT_BY_API_KEY) {
            list[0].api_keys = keys;
            list[0].napi_keys = 1;
        } else if (modes[m] == CR_TENANT_BY_SNI) {
            list[0].match = sni;
            list[0].nmatch = 1;
        } else if (modes[m] == CR_TENANT_BY_PATH_PREFIX) {
            list[0].match = paths;
            list[0].nmatch = 1;
        }
        t = build(&cfg);
        def = cr_tenants_at(t, 0);
        for (int i = 0; i < 100000; i++) {
            struct cr_tenant_key k = {.sni = buf, .path = buf, .header_value = buf};
            snprintf(buf, sizeof(buf), "/tenant-%d.example.org", i);
            ck_assert_ptr_eq(cr_tenants_identify(t, &k), def);
        }
        ck_assert_uint_eq(cr_tenants_count(t), 2);
        cr_tenants_free(t);
    }
}
END_TEST

START_TEST(route_priorities_longest_prefix)
{
    struct cr_cfg_route routes[] = {{.path_prefix = "/checkout", .priority = CR_PRIO_HIGH},
                                    {.path_prefix = "/checkout/recommend", .priority = CR_PRIO_LOW},
                                    {.path_prefix = "/batch", .priority = CR_PRIO_LOW},
                                    {.path_prefix = "/batch/urgent", .priority = CR_PRIO_HIGH},
                                    {.path_prefix = "/api", .priority = CR_PRIO_NORMAL}};
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_NONE, .routes = routes, .nroutes = 5};
    struct cr_tenants *t = build(&cfg);

    ck_assert_int_eq(cr_tenants_priority(t, "/checkout"), CR_PRIO_HIGH);
    ck_assert_int_eq(cr_tenants_priority(t, "/checkout/pay"), CR_PRIO_HIGH);
    ck_assert_int_eq(cr_tenants_priority(t, "/checkout/recommend/x"), CR_PRIO_LOW);
    ck_assert_int_eq(cr_tenants_priority(t, "/batch/job"), CR_PRIO_LOW);
    ck_assert_int_eq(cr_tenants_priority(t, "/batch/urgent/1"), CR_PRIO_HIGH);
    ck_assert_int_eq(cr_tenants_priority(t, "/api/x"), CR_PRIO_NORMAL);
    ck_assert_int_eq(cr_tenants_priority(t, "/other"), CR_PRIO_NORMAL);
    ck_assert_int_eq(cr_tenants_priority(t, "/"), CR_PRIO_NORMAL);
    ck_assert_int_eq(cr_tenants_priority(t, "/CHECKOUT"), CR_PRIO_NORMAL);
    ck_assert_int_eq(cr_tenants_priority(t, NULL), CR_PRIO_NORMAL);
    cr_tenants_free(t);
}
END_TEST

/* RFC 3986 5.2.4 dot segments, 6.2.2 percent-encoding normalisation of
 * unreserved characters (hex digits upper-cased), nothing else collapsed,
 * the query left alone. */
static const struct {
    const char *in, *out;
} norm[] = {
    {"/", "/"},
    {"/a/b/c/./../../g", "/a/g"},
    {"/login/../api/x", "/api/x"},
    {"/login/./x", "/login/x"},
    {"/..", "/"},
    {"/../../login", "/login"},
    {"/a/..", "/"},
    {"/a/b/..", "/a/"},
    {"/a/.", "/a/"},
    {"/a/b/../../..", "/"},
    {"/a/..b/c", "/a/..b/c"},
    {"/a/.b", "/a/.b"},
    {"/a/...", "/a/..."},
    {"/a//b", "/a//b"},
    {"/a//../b", "/a/b"},
    {"/%6Cogin", "/login"},
    {"/%6cogin", "/login"},
    {"/%2e%2e/login", "/login"},
    {"/login/%2E%2e/api", "/api"},
    {"/login/%2e/x", "/login/x"},
    {"/%7e%41%5a%30%2D%5F", "/~AZ0-_"},
    {"/a%2fb", "/a%2Fb"},
    {"/a%2Fb/../c", "/c"},
    {"/a%20b", "/a%20b"},
    {"/%00", "/%00"},
    {"/%zz%4", "/%zz%4"},
    {"/%", "/%"},
    {"/x?y=/../z", "/x?y=/../z"},
    {"/a/./b?q=%41&r=./..", "/a/b?q=%41&r=./.."},
    {"/login/..?x", "/?x"},
    {"/a#f/..", "/a#f/.."},
    {"*", "*"},
    {"", ""},
};

START_TEST(path_normalisation)
{
    char buf[128];
    size_t n;

    strcpy(buf, norm[_i].in);
    n = cr_tenants_normalize_path(buf);
    ck_assert_msg(strcmp(buf, norm[_i].out) == 0, "'%s' normalised to '%s', expected '%s'",
                  norm[_i].in, buf, norm[_i].out);
    ck_assert_uint_eq(n, strlen(norm[_i].out));
}
END_TEST

/* A normalised path is its own normal form. */
START_TEST(path_normalisation_is_idempotent)
{
    char buf[128], again[128];

    strcpy(buf, norm[_i].in);
    cr_tenants_normalize_path(buf);
    strcpy(again, buf);
    cr_tenants_normalize_path(again);
    ck_assert_str_eq(again, buf);
}
END_TEST

/* A long path is normalised in place, whatever its length (no buffer):
 * 100000 segments, then as many dot-dot segments and one more. */
START_TEST(path_normalisation_long)
{
    size_t reps = 100000, n = 0;
    char *p = malloc(6 + reps * 3 + (reps + 1) * 3 + 8);

    ck_assert_ptr_nonnull(p);
    memcpy(p, "/login", 6), n = 6;
    for (size_t i = 0; i < reps; i++, n += 3)
        memcpy(p + n, "/aa", 3);
    for (size_t i = 0; i < reps + 1; i++, n += 3)
        memcpy(p + n, "/..", 3);
    strcpy(p + n, "/api");
    ck_assert_uint_eq(cr_tenants_normalize_path(p), 4);
    ck_assert_str_eq(p, "/api");
    free(p);
}
END_TEST

/* Routes match on segment boundaries of the normalised path: /login
 * matches /login, /login/, /login/x, /login?x, not /loginXYZ; no dot
 * segment or percent-encoding moves a request into or out of it. */
START_TEST(route_priorities_on_segments_of_the_normalised_path)
{
    struct cr_cfg_route routes[] = {{.path_prefix = "/login", .priority = CR_PRIO_HIGH},
                                    {.path_prefix = "/static/", .priority = CR_PRIO_LOW}};
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_NONE, .routes = routes, .nroutes = 2};
    struct cr_tenants *t = build(&cfg);

    ck_assert_int_eq(prio(t, "/login"), CR_PRIO_HIGH);
    ck_assert_int_eq(prio(t, "/login/"), CR_PRIO_HIGH);
    ck_assert_int_eq(prio(t, "/login/x"), CR_PRIO_HIGH);
    ck_assert_int_eq(prio(t, "/login?x"), CR_PRIO_HIGH);
    ck_assert_int_eq(prio(t, "/login?next=/api"), CR_PRIO_HIGH);
    ck_assert_int_eq(prio(t, "/loginXYZ"), CR_PRIO_NORMAL);
    ck_assert_int_eq(prio(t, "/login.php"), CR_PRIO_NORMAL);
    ck_assert_int_eq(prio(t, "/login/../api/x"), CR_PRIO_NORMAL);
    ck_assert_int_eq(prio(t, "/login/%2e%2e/api/x"), CR_PRIO_NORMAL);
    ck_assert_int_eq(prio(t, "/login/./../api"), CR_PRIO_NORMAL);
    ck_assert_int_eq(prio(t, "/api/../login/x"), CR_PRIO_HIGH);
    ck_assert_int_eq(prio(t, "/%6Cogin"), CR_PRIO_HIGH);
    ck_assert_int_eq(prio(t, "/x?/login"), CR_PRIO_NORMAL);
    ck_assert_int_eq(prio(t, "//login"), CR_PRIO_NORMAL);
    ck_assert_int_eq(prio(t, "/static/app.js"), CR_PRIO_LOW);
    ck_assert_int_eq(prio(t, "/static/"), CR_PRIO_LOW);
    ck_assert_int_eq(prio(t, "/static"), CR_PRIO_NORMAL);
    ck_assert_int_eq(prio(t, "/staticx/y"), CR_PRIO_NORMAL);
    /* the raw lookup is on segments too */
    ck_assert_int_eq(cr_tenants_priority(t, "/loginXYZ"), CR_PRIO_NORMAL);
    ck_assert_int_eq(cr_tenants_priority(t, "/login?x"), CR_PRIO_HIGH);
    cr_tenants_free(t);
}
END_TEST

START_TEST(by_path_prefix_on_segments_of_the_normalised_path)
{
    char *m1[] = {"/api"};
    char *m2[] = {"/api/admin"};
    struct cr_cfg_tenant list[] = {{.name = "api", .match = m1, .nmatch = 1},
                                   {.name = "admin", .match = m2, .nmatch = 1}};
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_PATH_PREFIX, .list = list, .nlist = 2};
    struct cr_tenants *t = build(&cfg);

    ck_assert_str_eq(who_path(t, "/api"), "api");
    ck_assert_str_eq(who_path(t, "/api/x"), "api");
    ck_assert_str_eq(who_path(t, "/apiXYZ"), "default");
    ck_assert_str_eq(who_path(t, "/api/admin/../x"), "api");
    ck_assert_str_eq(who_path(t, "/api/admin%2Fx"), "api");
    ck_assert_str_eq(who_path(t, "/api/%61dmin/x"), "admin");
    ck_assert_str_eq(who_path(t, "/api/adminx"), "api");
    ck_assert_str_eq(who_path(t, "/x/../api/admin?y"), "admin");
    ck_assert_str_eq(who_path(t, "/api/../x"), "default");
    cr_tenants_free(t);
}
END_TEST

START_TEST(no_routes_is_normal)
{
    struct cr_cfg_tenants cfg = {.by = CR_TENANT_BY_NONE};
    struct cr_tenants *t = build(&cfg);

    ck_assert_int_eq(cr_tenants_priority(t, "/checkout"), CR_PRIO_NORMAL);
    ck_assert_uint_eq(cr_tenants_count(t), 1);
    cr_tenants_free(t);
}
END_TEST

START_TEST(bad_arguments)
{
    char *keys1[] = {"dup"};
    char *keys2[] = {"dup"};
    struct cr_cfg_tenant list[] = {{.name = "a", .api_keys = keys1, .napi_keys = 1},
                                   {.name = "b", .api_keys = keys2, .napi_keys = 1}};
    struct cr_cfg_tenants dup = {.by = CR_TENANT_BY_API_KEY, .list = list, .nlist = 2};
    struct cr_cfg_tenants ok = {.by = CR_TENANT_BY_NONE};
    struct cr_tenants *t = (struct cr_tenants *)&t;

    ck_assert_int_eq(cr_tenants_new(NULL, &t), CR_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(cr_tenants_new(&ok, NULL), CR_EINVAL);
    t = (struct cr_tenants *)&t;
    ck_assert_int_eq(cr_tenants_new(&dup, &t), CR_EINVAL);
    ck_assert_ptr_null(t);
    cr_tenants_free(NULL);
}
END_TEST

static Suite *tenant_suite(void)
{
    Suite *s = suite_create("tenant");
    TCase *tc = tcase_create("identify");

    tcase_add_test(tc, by_none_is_always_default);
    tcase_add_test(tc, table_indexes_names_and_limits);
    tcase_add_test(tc, table_does_not_point_into_the_config);
    tcase_add_test(tc, by_header_exact_and_case_sensitive);
    tcase_add_test(tc, by_api_key_many_keys);
    tcase_add_test(tc, by_sni_case_insensitive_and_wildcards);
    tcase_add_test(tc, by_sni_overlong_name_is_default);
    tcase_add_test(tc, by_path_prefix_longest_wins);
    tcase_add_test(tc, by_path_prefix_root_catches_all);
    tcase_add_test(tc, unknown_ids_share_the_default);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("priority");
    tcase_add_test(tc, route_priorities_longest_prefix);
    tcase_add_test(tc, no_routes_is_normal);
    tcase_add_test(tc, route_priorities_on_segments_of_the_normalised_path);
    tcase_add_test(tc, by_path_prefix_on_segments_of_the_normalised_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("paths");
    tcase_add_loop_test(tc, path_normalisation, 0, (int)CR_ARRAY_LEN(norm));
    tcase_add_loop_test(tc, path_normalisation_is_idempotent, 0, (int)CR_ARRAY_LEN(norm));
    tcase_add_test(tc, path_normalisation_long);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tenant_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
