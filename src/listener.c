/* listener.c - listening sockets and the accept loop. */
#include "listener.h"

#include <errno.h>
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

struct cr_listener {
    struct event *ev;
    int fd;
    int paused;
    cr_listener_accept_cb cb;
    void *arg;
};

int cr_listener_bind(const struct cr_addr *addr, int backlog, char *err, size_t errlen)
{
    int one = 1;
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail_fd;
    if (addr->ss.ss_family == AF_INET6)
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
            if (errno == EMFILE || errno == ENFILE)
                cr_log_warn("accept: %s; connections are waiting in the backlog",
                            strerror(errno));
            else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                cr_log_warn("accept: %s", strerror(errno));
            return;
        }
        int one = 1;
        (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        l->cb(c, (struct sockaddr *)&ss, len, l->arg);
    }
}

struct cr_listener *cr_listener_start(struct event_base *base, int fd, cr_listener_accept_cb cb,
                                      void *arg)
{
    struct cr_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->fd = fd;
    l->cb = cb;
    l->arg = arg;
    l->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_accept, l);
    if (!l->ev || event_add(l->ev, NULL) < 0) {
        if (l->ev)
            event_free(l->ev);
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
        event_add(l->ev, NULL);
    }
}

void cr_listener_free(struct cr_listener *l)
{
    if (!l)
        return;
    event_free(l->ev);
    close(l->fd);
    free(l);
}
