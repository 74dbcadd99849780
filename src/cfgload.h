/* cfgload.h - a table-driven YAML loader: typed key tables in, C structs and
 * positioned diagnostics out.
 *
 * Each mapping level of a schema is a struct cr_cfgload_table: a list of keys
 * with a type, an offset into the level's C struct, a range, enum names, a
 * default written the way a user would write it, and a sub-table for nested
 * mappings and lists of mappings. One walker uses the tables to reject unknown
 * keys (suggesting the key that was probably meant) and duplicate keys, to
 * convert and range-check values, to apply defaults and to report missing
 * keys; a table's check hook then does the rules that span several keys. The
 * same tables drive cr_cfgload_free, so every string is freed exactly once.
 *
 * Keys are processed in table order, not file order (a table can rely on an
 * earlier key being parsed whatever the file says). Every problem becomes a
 * "FILE:LINE:COL: error: text" or "...: warning: text" message from libyaml's
 * marks (1-based); the walk goes on after an error, and the messages are sorted
 * by position at the end so that they read top to bottom.
 *
 * This module knows nothing of corral's schema: config.c holds the tables and
 * the hooks. It fills the struct cr_diag and struct cr_addr of common.h.
 *
 * Use: cr_cfgload_init, cr_cfgload_parse, cr_cfgload_finish (always), then
 * cr_cfgload_free on the object when done with it. */
#ifndef CR_CFGLOAD_H
#define CR_CFGLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

struct cr_diag;

#define CR_CFGLOAD_MAX_KEYS 24 /* keys in one table, at most */
#define CR_CFGLOAD_MAX_DEPTH 8 /* nesting of tables, at most */

/* Limits on the YAML document itself, whatever the schema, checked while it
 * is parsed and before the work they limit; crossing one is an error at the
 * node or alias that crosses it, and nothing of the file is walked:
 *   - collections (mappings, lists) nested at most CR_CFGLOAD_MAX_NESTING
 *     deep, an alias counting as deep as the node it names;
 *   - at most CR_CFGLOAD_MAX_VALUES nodes (scalars and collections) with
 *     every alias expanded, as the walker would see them: an alias of a list
 *     of 1000 values counts 1001 at each use ("billion laughs");
 *   - an alias must name a node that is complete (no cycles) and anchors
 *     are unique. */
#define CR_CFGLOAD_MAX_NESTING 64
#define CR_CFGLOAD_MAX_VALUES 1000000u

/* ------------------------------------------------------------ the tables */

/* What a key holds, and so how its value is converted and freed. Enums are
 * stored as int: a schema should _Static_assert that its enums are int-sized. */
enum cr_cfgload_type {
    CR_CFGLOAD_STR,      /* char *, non-empty */
    CR_CFGLOAD_PATH,     /* char *, resolved against the file's directory */
    CR_CFGLOAD_UINT,     /* uint32_t, plain decimal, min..max */
    CR_CFGLOAD_SIZE,     /* uint64_t bytes, min..max */
    CR_CFGLOAD_DURATION, /* uint64_t milliseconds, min..max */
    CR_CFGLOAD_RATE,     /* double per second, 0 = unlimited */
    CR_CFGLOAD_BOOL,     /* bool */
    CR_CFGLOAD_ENUM,     /* int-sized enum; the value is the index in names */
    CR_CFGLOAD_ADDR,     /* struct cr_addr */
    CR_CFGLOAD_MAP,      /* nested struct described by sub */
    CR_CFGLOAD_LIST,     /* array of sub structs: pointer at off, size_t count at noff */
    CR_CFGLOAD_STRLIST,  /* char ** at off, count at noff */
    CR_CFGLOAD_ADDRLIST, /* struct cr_addr * at off, count at noff */
    CR_CFGLOAD_CUSTOM,   /* fn does it all, including the default; nothing is freed */
};

/* Key flags. */
enum {
    CR_CFGLOAD_REQUIRED = 1 << 0,
    CR_CFGLOAD_READABLE = 1 << 1,   /* PATH: the file must be readable now */
    CR_CFGLOAD_ABSENT_OFF = 1 << 2, /* MAP: when absent, leave the struct zeroed */
    CR_CFGLOAD_WILDCARD = 1 << 3,   /* ADDR, ADDRLIST: "*" is allowed (listening) */
};

struct cr_cfgload;
struct cr_cfgload_key;
struct cr_cfgload_level;

/* A CUSTOM key: n is its value node, NULL when the key is absent (the
 * callback then sets the default). obj is the level's struct. */
typedef void (*cr_cfgload_custom_cb)(struct cr_cfgload *c, const struct cr_cfgload_key *k,
                                     yaml_node_t *n, void *obj);
/* Runs on obj before any key of its table, e.g. to inherit values. */
typedef void (*cr_cfgload_init_cb)(struct cr_cfgload *c, void *obj);
/* Runs after every key of the table, only when the mapping is in the file
 * (map is its node); l tells which keys were given and which were in error. */
typedef void (*cr_cfgload_check_cb)(struct cr_cfgload *c, void *obj, yaml_node_t *map,
                                    const struct cr_cfgload_level *l);

struct cr_cfgload_table;

struct cr_cfgload_key {
    const char *name;
    enum cr_cfgload_type type;
    size_t off;
    size_t noff;       /* lists: offset of the size_t count */
    size_t size;       /* LIST: element size */
    uint64_t min, max; /* numbers: range; lists: minimum entries */
    unsigned flags;
    const char *dflt;                   /* default, as written in a file; NULL = none */
    const char *const *names;           /* ENUM, NULL-terminated */
    const struct cr_cfgload_table *sub; /* MAP, LIST */
    cr_cfgload_custom_cb fn;            /* CUSTOM */
};

struct cr_cfgload_table {
    const struct cr_cfgload_key *keys; /* at most CR_CFGLOAD_MAX_KEYS */
    size_t nkeys;
    cr_cfgload_init_cb init;   /* NULL = none */
    cr_cfgload_check_cb check; /* NULL = none */
};

/* ------------------------------------------------------------ a load */

/* Where a value that must be unique was first seen (cr_cfgload_seen). */
struct cr_cfgload_first {
    int kind;
    void *key;
    size_t len;
    unsigned long line, col; /* 1-based; 0:0 when it had no node */
};

struct cr_cfgload_msg;

/* One load in progress. Lives on the caller's stack between cr_cfgload_init
 * and cr_cfgload_finish. Hooks may read user, root and item and may set oom;
 * the other fields belong to cfgload.c. */
struct cr_cfgload {
    void *user;  /* the caller's, for its hooks */
    void *root;  /* the object cr_cfgload_parse fills, NULL before */
    size_t item; /* index of the list entry being parsed */
    bool oom;    /* an allocation failed: "out of memory" is reported once */

    const char *name;     /* FILE in messages */
    const char *base_dir; /* relative paths are resolved against it; NULL = as is */
    yaml_document_t *doc;
    struct cr_cfgload_msg *msgs;
    size_t nmsgs, capmsgs, nerrors;
    struct cr_cfgload_first *seen;
    size_t nseen, capseen;
    uint32_t *seenix; /* hash index over seen: index + 1, 0 = empty */
    size_t capseenix;
    const struct cr_cfgload_level *levels[CR_CFGLOAD_MAX_DEPTH];
    size_t depth;
    bool no_file_checks; /* set after init: CR_CFGLOAD_READABLE is not checked
                          * (a plan that will open no file, corral-replay -n) */
};

/* Starts a load. name is FILE in messages and base_dir the directory relative
 * paths are resolved against (NULL = leave them as written); both are
 * borrowed until cr_cfgload_finish. user is for the caller's hooks. */
void cr_cfgload_init(struct cr_cfgload *c, const char *name, const char *base_dir, void *user);

/* Parses text (len bytes) as YAML, checks that it is exactly one document
 * holding a mapping and, when it is, allocates a zeroed object of root_size
 * bytes and fills it through table. Returns that object (also c->root), which
 * the caller owns whether or not errors were reported (free it with
 * cr_cfgload_free(table, obj), then free()), or NULL when YAML errors stopped
 * the load before it, or on out of memory. Call once per load. */
void *cr_cfgload_parse(struct cr_cfgload *c, const char *text, size_t len,
                       const struct cr_cfgload_table *table, size_t root_size);

/* Ends a load: moves every message, sorted by position, into d (which must be
 * zeroed; free it with cr_diag_free) and frees what the load holds. An
 * allocation failure anywhere adds one "FILE: error: out of memory". After it
 * d->nerrors says whether the load failed. */
void cr_cfgload_finish(struct cr_cfgload *c, struct cr_diag *d);

/* Frees what the table t says obj owns (strings, lists, nested structs) and
 * zeroes those fields; obj itself is the caller's. */
void cr_cfgload_free(const struct cr_cfgload_table *t, void *obj);

/* ------------------------------------------------------------ for hooks */

/* Reports an error (counted: the load fails) or a warning at node n, NULL
 * meaning the start of the file. */
void cr_cfgload_error(struct cr_cfgload *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cr_cfgload_warn(struct cr_cfgload *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Values that must be unique within a load, in classes named by kind (the
 * caller's numbering). Returns where an equal key of that kind was first seen,
 * or NULL after recording this one (len bytes at key, copied) at n. The result
 * is valid until the next call. */
const struct cr_cfgload_first *cr_cfgload_seen(struct cr_cfgload *c, int kind, const void *key,
                                               size_t len, const yaml_node_t *n);
/* The same for a string. */
const struct cr_cfgload_first *cr_cfgload_seen_str(struct cr_cfgload *c, int kind, const char *s,
                                                   const yaml_node_t *n);

/* The value node of key `name` (which must be in l's table) in the mapping
 * being checked: _val gives NULL when the key is absent or was in error,
 * _node only when it is absent. _bad says whether it was in error. */
yaml_node_t *cr_cfgload_val(const struct cr_cfgload_level *l, const char *name);
yaml_node_t *cr_cfgload_node(const struct cr_cfgload_level *l, const char *name);
bool cr_cfgload_bad(const struct cr_cfgload_level *l, const char *name);
/* The level of the mapping that holds the one being parsed (for an entry of a
 * list, the mapping that holds the list). */
const struct cr_cfgload_level *cr_cfgload_parent(const struct cr_cfgload *c);

/* A scalar node's text. */
const char *cr_cfgload_str(const yaml_node_t *n);
/* True for a scalar that is not YAML's null ("", "~", "null" written plainly). */
bool cr_cfgload_is_value(const yaml_node_t *n);
/* How a node that is not what was expected looks, for "got %s": "a list",
 * "an empty value", "'text'"... buf (len bytes) may hold the result. */
const char *cr_cfgload_got(const yaml_node_t *n, char *buf, size_t len);
/* Entries of a sequence node, and entry i. */
size_t cr_cfgload_seq_len(const yaml_node_t *n);
yaml_node_t *cr_cfgload_seq_at(struct cr_cfgload *c, const yaml_node_t *n, size_t i);

/* strdup that sets c->oom on failure. */
char *cr_cfgload_strdup(struct cr_cfgload *c, const char *s);
/* Frees the char * at field and stores s (owned) there. */
void cr_cfgload_set_str(void *field, char *s);
/* p resolved against the file's directory, newly allocated; NULL (and
 * c->oom) on failure. */
char *cr_cfgload_path(struct cr_cfgload *c, const char *p);
/* Plain decimal, no sign, no leading zeros, into *v; false when it is not. */
bool cr_cfgload_decimal(const char *s, uint64_t *v);
/* The field at off in obj, and the size_t count of list key k in obj. */
void *cr_cfgload_field(void *obj, size_t off);
size_t *cr_cfgload_count(void *obj, const struct cr_cfgload_key *k);

#endif
