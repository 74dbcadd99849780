/* testup_json.h - writing JSON strings.
 *
 * Header fields and request targets are arbitrary bytes; the answers that
 * carry them must still be valid JSON (valid UTF-8, no raw control
 * characters). */
#ifndef TU_JSON_H
#define TU_JSON_H

#include <event2/buffer.h>
#include <stddef.h>

/* Appends s[0..len) to out as a quoted JSON string. '"', '\\' and control
 * characters are escaped; well-formed UTF-8 sequences are copied; any other
 * byte B becomes \u00BB (read as Latin-1), so the output is always valid.
 * Returns 0 or CR_ENOMEM. */
int tu_json_str(struct evbuffer *out, const char *s, size_t len);

#endif
