/* common.h - error codes and small helpers shared by every module.
 *
 * Functions return 0 on success or one of these negative codes. A module
 * logs an error once, where it is handled, never where it is returned. */
#ifndef CR_COMMON_H
#define CR_COMMON_H

#include <stddef.h>
#include <stdint.h>

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

#endif
