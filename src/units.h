/* units.h - parsing of the config file's units. Pure functions, no I/O.
 *
 * Each returns 0 and stores the value, or CR_EINVAL and writes a one-line
 * human explanation (no position, no trailing newline) into err. */
#ifndef CR_UNITS_H
#define CR_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Durations: an integer or decimal followed by one of us, ms, s, m (or min),
 * h, d; e.g. "250ms", "2s", "1.5m", "1h". A bare "0" is accepted. The result
 * is in milliseconds (us values are rounded up to 1 ms when non-zero). */
int cr_parse_duration_ms(const char *s, uint64_t *ms, char *err, size_t errlen);

/* Sizes: an integer followed by nothing (bytes), b, k, m, g (powers of 1024,
 * case-insensitive, optional trailing "b" or "ib": "16k", "16kb", "1MiB"). */
int cr_parse_size(const char *s, uint64_t *bytes, char *err, size_t errlen);

/* Rates: a number, "/", and a unit: s, sec, second, m, min, minute, h, hour;
 * e.g. "1000/s", "60/min". The result is events per second. "unlimited" is
 * accepted and stored as 0. */
int cr_parse_rate(const char *s, double *per_sec, char *err, size_t errlen);

/* Formats a duration given in ms the way the parser reads it ("1500ms",
 * "2s", "1h"); returns buf. */
const char *cr_format_duration(uint64_t ms, char *buf, size_t len);

#endif
