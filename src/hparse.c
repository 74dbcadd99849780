/* hparse.c - HTTP/1.x header fields out of http_parser's callbacks: what
 * is not inline in hparse.h. */
#include "hparse.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

void cr_hparse_init(struct cr_hparse *hp, size_t max_name, size_t max_value, bool lower,
                    cr_hparse_field_cb cb, void *arg)
{
    hp->max_name = max_name;
    hp->max_value = max_value;
    hp->lower = lower;
    hp->cb = cb;
    hp->arg = arg;
    cr_hparse_reset(hp);
}

void cr_hparse_free(struct cr_hparse *hp)
{
    free(hp->name);
    free(hp->value);
    memset(hp, 0, sizeof(*hp));
}
