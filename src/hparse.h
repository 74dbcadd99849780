/* hparse.h - HTTP/1.x header fields out of http_parser's callbacks.
 *
 * http_parser hands a field's name and its value over in pieces (one per
 * read that carries part of them) and never says where a field ends: a
 * field is complete when a name piece follows a value piece, or when the
 * head ends. Each HTTP/1.1 parser (the front end h1.c, the upstream codec
 * upstream_h1.c, corral-replay's rp_h1.c) feeds its name and value pieces
 * here and is called back once per complete field, with limits on the
 * name's and the value's size checked before anything is copied. What a
 * parser does with a field (checks, smuggling rules, Retry-After) stays in
 * the parser.
 *
 * Ownership: the caller owns the struct (usually inside its parser state)
 * and frees its buffers with cr_hparse_free. No I/O, no clock. The
 * per-piece functions are inline: they run for every header of every
 * HTTP/1.1 request and response. */
#ifndef CR_HPARSE_H
#define CR_HPARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"

/* A complete field: name (nlen bytes) and value (vlen bytes), each
 * NUL-terminated, valid only during the call (value is "" when empty).
 * Returns 0 or a negative code, which the feeding call returns as it is. */
typedef int (*cr_hparse_field_cb)(void *arg, const char *name, size_t nlen, const char *value,
                                  size_t vlen);

struct cr_hparse {
    char *name, *value; /* the field being read; NULL until its first piece */
    size_t nlen, vlen, ncap, vcap;
    size_t max_name, max_value; /* bytes of one name, of one value */
    bool lower;                 /* names are lower-cased as they arrive */
    bool in_value;              /* a value piece came last */
    cr_hparse_field_cb cb;
    void *arg;
};

/* Sets hp's limits and callback and starts a new head. hp is zeroed (as
 * by calloc) or was cleared by cr_hparse_free; buffers it holds are kept
 * for reuse. lower: names reach cb lower-cased. */
void cr_hparse_init(struct cr_hparse *hp, size_t max_name, size_t max_value, bool lower,
                    cr_hparse_field_cb cb, void *arg);

/* Forgets any partly read field: a new message begins. */
static inline void cr_hparse_reset(struct cr_hparse *hp)
{
    hp->nlen = hp->vlen = 0;
    hp->in_value = false;
}

/* The head (or the trailer section) ended: the last field, if one is
 * being read, goes to the callback. Returns 0 or the callback's code. */
static inline int cr_hparse_end(struct cr_hparse *hp)
{
    int rc = 0;

    if (!hp->in_value)
        return 0;
    if (hp->nlen > 0)
        rc = hp->cb(hp->arg, hp->name, hp->nlen, hp->value ? hp->value : "", hp->vlen);
    cr_hparse_reset(hp);
    return rc;
}

/* A piece of a name. If a value came before it, that field is complete and
 * goes to the callback first. Returns 0, the callback's negative code,
 * CR_ELIMIT when the name would pass max_name (nothing added) or
 * CR_ENOMEM. */
static inline int cr_hparse_name(struct cr_hparse *hp, const char *at, size_t n)
{
    size_t start;
    int rc = cr_hparse_end(hp);

    if (rc < 0)
        return rc;
    start = hp->nlen;
    rc = cr_grow(&hp->name, &hp->nlen, &hp->ncap, at, n, hp->max_name);
    if (rc < 0 || !hp->lower)
        return rc;
    for (size_t i = start; i < hp->nlen; i++)
        if (hp->name[i] >= 'A' && hp->name[i] <= 'Z')
            hp->name[i] = (char)(hp->name[i] + 32);
    return 0;
}

/* A piece of a value. Returns 0, CR_ELIMIT when the value would pass
 * max_value (nothing added) or CR_ENOMEM. */
static inline int cr_hparse_value(struct cr_hparse *hp, const char *at, size_t n)
{
    hp->in_value = true;
    return cr_grow(&hp->value, &hp->vlen, &hp->vcap, at, n, hp->max_value);
}

/* Frees hp's buffers and zeroes it. */
void cr_hparse_free(struct cr_hparse *hp);

#endif
