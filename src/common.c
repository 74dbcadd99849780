/* common.c - the few helpers every module shares. */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

uint64_t cr_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int cr_grow(char **buf, size_t *len, size_t *cap, const char *at, size_t n, size_t max)
{
    if (*len + n > max)
        return CR_ELIMIT;
    if (*len + n + 1 > *cap) {
        size_t nc = CR_MAX(CR_MAX(*cap * 2, *len + n + 1), (size_t)64);
        char *p = realloc(*buf, nc);
        if (!p)
            return CR_ENOMEM;
        *buf = p;
        *cap = nc;
    }
    memcpy(*buf + *len, at, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

int cr_read_file(const char *path, size_t max, char **buf, size_t *len)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    int e = 0;

    if (f == NULL)
        return CR_EIO;
    if (fstat(fileno(f), &st) != 0)
        e = errno;
    else if (S_ISDIR(st.st_mode))
        e = EISDIR;
    else if ((uintmax_t)st.st_size > max)
        e = EFBIG;
    else if ((p = malloc((size_t)st.st_size + 1)) == NULL)
        e = ENOMEM;
    else if ((*len = fread(p, 1, (size_t)st.st_size, f)) != (size_t)st.st_size || ferror(f))
        e = ferror(f) ? EIO : ESPIPE; /* changed while read, or not a regular file */
    fclose(f);
    if (e != 0) {
        free(p);
        errno = e;
        return CR_EIO;
    }
    p[*len] = '\0';
    *buf = p;
    return 0;
}

/* ------------------------------------------------------------ diagnostics */

void cr_diag_free(struct cr_diag *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nmsgs; i++)
        free(d->msgs[i]);
    free(d->msgs);
    d->msgs = NULL;
    d->nmsgs = 0;
    d->nerrors = 0;
}

void cr_diag_add(struct cr_diag *d, bool is_error, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    char **msgs = n < 0 ? NULL : realloc(d->msgs, (d->nmsgs + 2) * sizeof(char *));
    if (!msgs) {
        free(n < 0 ? NULL : text);
        d->nerrors += is_error;
        return;
    }
    d->msgs = msgs;
    d->msgs[d->nmsgs++] = text;
    d->msgs[d->nmsgs] = NULL;
    d->nerrors += is_error;
}

void cr_diag_print(const struct cr_diag *d, FILE *f)
{
    for (size_t i = 0; i < d->nmsgs; i++)
        fprintf(f, "%s\n", d->msgs[i]);
}

/* GCC defines __SANITIZE_ADDRESS__, clang answers __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define CR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CR_ASAN 1
#endif
#endif

#ifdef CR_ASAN
#include <sanitizer/lsan_interface.h>

void cr_leak_check(void)
{
    (void)__lsan_do_recoverable_leak_check();
}
#else
void cr_leak_check(void)
{
}
#endif

bool cr_addr_loopback(const struct sockaddr *sa, socklen_t len)
{
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family != AF_INET6 || len < (socklen_t)sizeof(struct sockaddr_in6))
        return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}
