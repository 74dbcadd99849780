/* common.h - error codes, diagnostics, addresses and small helpers shared
 * by every module (the YAML loader, cfgload.c, and corral-replay among
 * them: nothing here knows corral's schema).
 *
 * Functions return 0 on success or one of these negative codes. A module
 * logs an error once, where it is handled, never where it is returned. */
#ifndef CR_COMMON_H
#define CR_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

enum {
    CR_OK = 0,
    CR_ENOMEM = -1,   /* allocation failed */
    CR_EINVAL = -2,   /* bad argument or malformed input */
    CR_EIO = -3,      /* system call failed; errno is meaningful */
    CR_ETLS = -4,     /* OpenSSL reported an error */
    CR_EPROTO = -5,   /* peer broke the protocol */
    CR_ELIMIT = -6,   /* a configured limit was reached */
    CR_EAGAIN = -7,   /* try again later (backpressure, no capacity) */
    CR_ECLOSED = -8,  /* the peer or the object is gone */
    CR_ECONFIG = -9,  /* configuration is invalid */
};

#define CR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CR_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Monotonic clock in microseconds; the only clock the data path reads. */
uint64_t cr_now_us(void);

/* Appends n bytes at `at` to the NUL-terminated growable string *buf
 * (*len bytes used, *cap allocated). Returns 0, CR_ELIMIT when the result
 * would pass max bytes (nothing is appended), or CR_ENOMEM. */
int cr_grow(char **buf, size_t *len, size_t *cap, const char *at, size_t n, size_t max);

/* Reads the whole file at path, at most max bytes, into a new
 * NUL-terminated *buf of *len bytes (the caller frees it). Returns 0, or
 * CR_EIO with errno set (EFBIG past max, EISDIR for a directory). */
int cr_read_file(const char *path, size_t max, char **buf, size_t *len);

/* In an AddressSanitizer build (tools/run-tests' sanitizer step), runs
 * LeakSanitizer now and goes on: for a worker, which ends with _exit
 * where no exit-time check runs. A no-op in other builds. */
void cr_leak_check(void);

/* Diagnostics: what a loader (config.c, cfgload.c, corral-replay's
 * profile) found wrong, every problem at once. */
struct cr_diag {
    char **msgs; /* each "FILE:LINE:COL: error: text" or "...: warning: text" */
    size_t nmsgs;
    size_t nerrors; /* messages that are errors (warnings do not fail a load) */
};

void cr_diag_free(struct cr_diag *d);
/* Appends one message, already formatted as "WHERE: error: text" or
 * "WHERE: warning: text" by the caller. */
void cr_diag_add(struct cr_diag *d, bool is_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints every message, one per line, to f. */
void cr_diag_print(const struct cr_diag *d, FILE *f);

/* A parsed "host:port" ("127.0.0.1:8443", "[::1]:8443", "*:8443",
 * "localhost:8443" resolved numerically at load time). */
struct cr_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[64]; /* as written, for logs */
};

/* Whether sa (len bytes of it) is a loopback address: 127.0.0.0/8, ::1, or
 * 127.0.0.0/8 mapped into IPv6 (::ffff:127.0.0.1, the peer an IPv4 client
 * shows on a dual-stack socket). False for other families and for a
 * length too short for the family. */
bool cr_addr_loopback(const struct sockaddr *sa, socklen_t len);

#endif
