/* units.c - durations, sizes and rates as written in the config file.
 *
 * Numbers are scanned by hand rather than with strtod/strtoull: those accept
 * signs, hex, "inf", leading blanks and locale decimal points, none of which
 * belong in a config file. */
#include "ac_config.h"

#include "units.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common.h"

#define MAX_FRAC_DIGITS 6
#define MAX_INT_PART 1000000000000000ULL /* 1e15: keeps products in range */

/* A decimal number as written: ip + fp / 10^fd. */
struct number {
    uint64_t ip;
    uint64_t fp;
    unsigned fd;
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return CR_EINVAL;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Scans digits into *v; returns the number of digits, or -1 on overflow. */
static int scan_digits(const char **sp, uint64_t *v)
{
    const char *s = *sp;
    int n = 0;

    *v = 0;
    for (; is_digit(*s); s++, n++) {
        unsigned d = (unsigned)(*s - '0');
        if (*v > (UINT64_MAX - d) / 10)
            return -1;
        *v = *v * 10 + d;
    }
    *sp = s;
    return n;
}

/* Scans "DIGITS[.DIGITS]" at *sp. On success advances *sp past it. */
static int scan_number(const char **sp, struct number *num, char *err, size_t errlen)
{
    const char *s = *sp;
    int n;

    memset(num, 0, sizeof(*num));
    if (*s == '-')
        return fail(err, errlen, "must not be negative");
    n = scan_digits(&s, &num->ip);
    if (n == 0)
        return fail(err, errlen, "expected a number");
    if (n < 0 || num->ip > MAX_INT_PART)
        return fail(err, errlen, "number too large");
    if (*s == '.') {
        s++;
        const char *f = s;
        n = scan_digits(&s, &num->fp);
        if (n == 0)
            return fail(err, errlen, "expected digits after '.'");
        if (n < 0 || s - f > MAX_FRAC_DIGITS)
            return fail(err, errlen, "at most %d decimal places", MAX_FRAC_DIGITS);
        num->fd = (unsigned)(s - f);
    }
    *sp = s;
    return 0;
}

static uint64_t pow10u(unsigned n)
{
    uint64_t v = 1;

    while (n-- > 0)
        v *= 10;
    return v;
}

struct unit {
    const char *name;
    uint64_t mult;
};

#define DURATION_UNITS "us, ms, s, m, h, d"

static const struct unit duration_units[] = {
    {"us", 1ULL},         {"ms", 1000ULL},      {"s", 1000000ULL},     {"m", 60000000ULL},
    {"min", 60000000ULL}, {"h", 3600000000ULL}, {"d", 86400000000ULL},
};

int cr_parse_duration_ms(const char *s, uint64_t *ms, char *err, size_t errlen)
{
    const struct unit *u = NULL;
    struct number num;
    uint64_t frac_us, total_us;
    int rc;

    if (s == NULL || *s == '\0')
        return fail(err, errlen, "empty value");
    if (!is_digit(*s) && *s != '-')
        return fail(err, errlen, "expected a number and a unit, e.g. 250ms, 2s, 1h");
    rc = scan_number(&s, &num, err, errlen);
    if (rc != 0)
        return rc;
    if (*s == '\0') {
        if (num.ip == 0 && num.fp == 0) {
            *ms = 0;
            return 0;
        }
        return fail(err, errlen, "missing unit (use " DURATION_UNITS ")");
    }
    for (size_t i = 0; i < CR_ARRAY_LEN(duration_units); i++) {
        if (strcmp(s, duration_units[i].name) == 0)
            u = &duration_units[i];
    }
    if (u == NULL)
        return fail(err, errlen, "unknown unit '%s' (use " DURATION_UNITS ")", s);
    /* fp < 10^6 and mult <= 8.64e10, so the product fits in 64 bits. */
    frac_us = (num.fp * u->mult + pow10u(num.fd) - 1) / pow10u(num.fd);
    if (num.ip > (UINT64_MAX - frac_us) / u->mult)
        return fail(err, errlen, "duration too large");
    total_us = num.ip * u->mult + frac_us;
    *ms = total_us / 1000 + (total_us % 1000 != 0);
    return 0;
}

#define SIZE_UNITS "b, k, m, g"

int cr_parse_size(const char *s, uint64_t *bytes, char *err, size_t errlen)
{
    static const char *const names[] = {"k", "m", "g"};
    uint64_t v, mult = 1;
    const char *unit;
    int n;

    if (s == NULL || *s == '\0')
        return fail(err, errlen, "empty value");
    if (*s == '-')
        return fail(err, errlen, "must not be negative");
    n = scan_digits(&s, &v);
    if (n == 0)
        return fail(err, errlen, "expected a number and an optional unit, e.g. 512, 16k, 1m");
    if (n < 0)
        return fail(err, errlen, "size too large");
    if (*s == '.')
        return fail(err, errlen, "must be a whole number (write 1536k, not 1.5m)");
    unit = s;
    for (size_t i = 0; i < CR_ARRAY_LEN(names); i++) {
        if (strncasecmp(s, names[i], 1) == 0) {
            mult = 1ULL << (10 * (i + 1));
            s++;
            if (strncasecmp(s, "i", 1) == 0 && strncasecmp(s + 1, "b", 1) == 0)
                s++;
            break;
        }
    }
    if (strncasecmp(s, "b", 1) == 0)
        s++;
    if (*s != '\0')
        return fail(err, errlen, "unknown unit '%s' (use " SIZE_UNITS ")", unit);
    if (v > UINT64_MAX / mult)
        return fail(err, errlen, "size too large");
    *bytes = v * mult;
    return 0;
}

static const struct unit rate_units[] = {
    {"s", 1},    {"sec", 1},     {"second", 1}, {"m", 60},
    {"min", 60}, {"minute", 60}, {"h", 3600},   {"hour", 3600},
};

int cr_parse_rate(const char *s, double *per_sec, char *err, size_t errlen)
{
    struct number num;
    double v;
    int rc;

    if (s == NULL || *s == '\0')
        return fail(err, errlen, "empty value");
    if (strcmp(s, "unlimited") == 0) {
        *per_sec = 0;
        return 0;
    }
    if (!is_digit(*s) && *s != '-')
        return fail(err, errlen, "expected NUMBER/UNIT, e.g. 100/s or 60/min, or unlimited");
    rc = scan_number(&s, &num, err, errlen);
    if (rc != 0)
        return rc;
    if (*s != '/')
        return fail(err, errlen, "missing '/UNIT' after the number, e.g. 100/s or 60/min");
    s++;
    if (num.ip == 0 && num.fp == 0)
        return fail(err, errlen, "must be greater than 0 (use 'unlimited' for no limit)");
    v = (double)num.ip + (double)num.fp / (double)pow10u(num.fd);
    for (size_t i = 0; i < CR_ARRAY_LEN(rate_units); i++) {
        if (strcmp(s, rate_units[i].name) == 0) {
            *per_sec = v / (double)rate_units[i].mult;
            return 0;
        }
    }
    if (*s == '\0')
        return fail(err, errlen, "missing unit after '/' (use s, min or h)");
    return fail(err, errlen, "unknown unit '%s' (use s, min or h)", s);
}

const char *cr_format_duration(uint64_t ms, char *buf, size_t len)
{
    static const struct unit units[] = {
        {"d", 86400000ULL},
        {"h", 3600000ULL},
        {"m", 60000ULL},
        {"s", 1000ULL},
    };
    const char *name = "ms";
    uint64_t v = ms;

    if (ms == 0) {
        snprintf(buf, len, "0");
        return buf;
    }
    for (size_t i = 0; i < CR_ARRAY_LEN(units); i++) {
        if (ms % units[i].mult == 0) {
            v = ms / units[i].mult;
            name = units[i].name;
            break;
        }
    }
    snprintf(buf, len, "%llu%s", (unsigned long long)v, name);
    return buf;
}
