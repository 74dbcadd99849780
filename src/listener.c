/* listener.c - listening sockets and the accept loop. */
#include "listener.h"

#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "log.h"

/* Connections taken per wake-up. Every worker is woken for the same
 * socket; a small batch lets the others take their share of a burst (a
 * campaign's clients arrive together) instead of one worker taking it all,
 * and keeps a burst of handshakes from starving open connections. */
#define CR_ACCEPT_BATCH 8

/* After accept(2) fails for want of a descriptor or memory, how long the
 * listener rests before it tries again. The pending connection stays in
 * the backlog and keeps the socket readable: retrying at once would spin
 * (and log) as fast as the CPU allows. */
#define CR_ACCEPT_RETRY_MS 100
#define CR_ACCEPT_LOG_EVERY_US 10000000u

struct cr_listener {
    struct event *ev;
    struct event *retry; /* ends a rest after EMFILE and the like */
    int fd;
    int paused;  /* by the owner (cr_listener_pause) */
    int resting; /* by the listener itself, until retry fires */
    cr_listener_accept_cb cb;
    void *arg;
};

/* One line per 10 s at most for failed accepts, with how many there were. */
static void log_accept_error(int err, bool rests)
{
    static uint64_t last_us, count;
    uint64_t now = cr_now_us();
    count++;
    if (last_us && now - last_us < CR_ACCEPT_LOG_EVERY_US)
        return;
    if (rests)
        cr_log_warn("accept: %s (%llu time(s)%s): not accepting for %d ms, connections wait "
                    "in the backlog; raise the open files limit or lower max_connections",
                    strerror(err), (unsigned long long)count, last_us ? " in the last 10 s" : "",
                    CR_ACCEPT_RETRY_MS);
    else
        cr_log_warn("accept: %s (%llu time(s)%s)", strerror(err), (unsigned long long)count,
                    last_us ? " in the last 10 s" : "");
    last_us = now;
    count = 0;
}

static void rest(struct cr_listener *l)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = CR_ACCEPT_RETRY_MS * 1000};
    l->resting = 1;
    event_del(l->ev);
    evtimer_add(l->retry, &tv);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct cr_listener *l = arg;
    l->resting = 0;
    if (!l->paused)
        event_add(l->ev, NULL);
    (void)fd;
    (void)what;
}

int cr_listener_bind(const struct cr_addr *addr, int backlog, char *err, size_t errlen)
{
    int one = 1;
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail_fd;
    /* IPv6 only, so that [::] and 0.0.0.0 can be two listeners; not for an
     * IPv4 address mapped into IPv6 ([::ffff:127.0.0.1]), which an
     * IPv6-only socket cannot bind (EINVAL): its clients are IPv4 ones */
    if (addr->ss.ss_family == AF_INET6 &&
        !IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)&addr->ss)->sin6_addr))
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0)
        goto fail_fd;
    if (listen(fd, backlog) < 0)
        goto fail_fd;
    return fd;
fail_fd:
    snprintf(err, errlen, "cannot listen on %s: %s", addr->text, strerror(errno));
    close(fd);
    return CR_EIO;
fail:
    snprintf(err, errlen, "cannot listen on %s: %s", addr->text, strerror(errno));
    return CR_EIO;
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct cr_listener *l = arg;
    for (int i = 0; i < CR_ACCEPT_BATCH && !l->paused; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            int err = errno;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                log_accept_error(err, true);
                rest(l);
            } else if (err != EAGAIN && err != EINTR && err != ECONNABORTED) {
                log_accept_error(err, false);
            }
            return;
        }
        int one = 1;
        (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        l->cb(c, (struct sockaddr *)&ss, len, l->arg);
    }
}

struct cr_listener *cr_listener_start(struct event_base *base, int fd, int priority,
                                      cr_listener_accept_cb cb, void *arg)
{
    struct cr_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->fd = fd;
    l->cb = cb;
    l->arg = arg;
    l->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_accept, l);
    l->retry = evtimer_new(base, on_retry, l);
    if (!l->ev || !l->retry || event_priority_set(l->ev, priority) < 0 ||
        event_add(l->ev, NULL) < 0) {
        if (l->ev)
            event_free(l->ev);
        if (l->retry)
            event_free(l->retry);
        free(l);
        return NULL;
    }
    return l;
}

void cr_listener_pause(struct cr_listener *l)
{
    if (!l->paused) {
        l->paused = 1;
        event_del(l->ev);
    }
}

void cr_listener_resume(struct cr_listener *l)
{
    if (l->paused) {
        l->paused = 0;
        if (!l->resting)
            event_add(l->ev, NULL);
    }
}

void cr_listener_free(struct cr_listener *l)
{
    if (!l)
        return;
    event_free(l->ev);
    event_free(l->retry);
    close(l->fd);
    free(l);
}
