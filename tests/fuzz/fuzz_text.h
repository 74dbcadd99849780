/* fuzz_text.h - for the fuzz targets of text formats: the input as a
 * NUL-terminated string, and a sink for messages. */
#ifndef CR_FUZZ_TEXT_H
#define CR_FUZZ_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A malloc'd copy of data with a NUL after it (aborts when out of memory:
 * the fuzzer's limit, not a finding). */
static inline char *fuzz_text(const unsigned char *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Where messages are printed, so that their formatting runs too. */
static inline FILE *fuzz_devnull(void)
{
    static FILE *f;
    if (!f && !(f = fopen("/dev/null", "w")))
        abort();
    return f;
}

#endif
