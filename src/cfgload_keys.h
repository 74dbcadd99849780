/* cfgload_keys.h - shorthand for writing cfgload schema tables (cfgload.h):
 * one macro per key type, each a struct cr_cfgload_key initialiser. For the
 * .c files that hold schema tables only (config.c, rp_profile.c), which add
 * their own variants; never include it from a header.
 *
 * n: the key's name; o: the field's offset in the level's struct; fl: flags
 * (REQ, READ); d: the default, written as a user would write it; lo, hi: the
 * range; sub_: the sub-table of a mapping or of a list's elements; no: the
 * offset of a list's element count; elem: the element type. */
#ifndef CR_CFGLOAD_KEYS_H
#define CR_CFGLOAD_KEYS_H

#include "cfgload.h"
#include "common.h"

/* durations are in milliseconds */
#define MS_S 1000ULL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)

/* clang-format off */
#define TABLE(keys, init, check) {keys, CR_ARRAY_LEN(keys), init, check}
#define KSTR(n, o, fl, d)        {.name = n, .type = CR_CFGLOAD_STR, .off = o, .flags = fl, .dflt = d}
#define KPATH(n, o, fl)          {.name = n, .type = CR_CFGLOAD_PATH, .off = o, .flags = fl}
#define KUINT(n, o, lo, hi, d)   {.name = n, .type = CR_CFGLOAD_UINT, .off = o, .min = lo, .max = hi, .dflt = d}
#define KSIZE(n, o, lo, hi, d)   {.name = n, .type = CR_CFGLOAD_SIZE, .off = o, .min = lo, .max = hi, .dflt = d}
#define KDUR(n, o, lo, hi, d)    {.name = n, .type = CR_CFGLOAD_DURATION, .off = o, .min = lo, .max = hi, .dflt = d}
#define KBOOL(n, o, d)           {.name = n, .type = CR_CFGLOAD_BOOL, .off = o, .dflt = d}
#define KENUM(n, o, names_, d)   {.name = n, .type = CR_CFGLOAD_ENUM, .off = o, .names = names_, .dflt = d}
#define KMAP(n, o, sub_, fl)     {.name = n, .type = CR_CFGLOAD_MAP, .off = o, .sub = sub_, .flags = fl}
#define KLIST(n, o, no, elem, lo, sub_, fl) \
    {.name = n, .type = CR_CFGLOAD_LIST, .off = o, .noff = no, .size = sizeof(elem), .min = lo, .sub = sub_, .flags = fl}

#define REQ CR_CFGLOAD_REQUIRED
#define READ CR_CFGLOAD_READABLE
/* clang-format on */

#endif
