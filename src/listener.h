/* listener.h - listening sockets.
 *
 * The master binds (cr_listener_bind) before it forks, so workers inherit the
 * descriptors and every worker accepts on the same socket: a worker busy in
 * an RSA operation simply does not accept, and an idle one takes the
 * connection. Each worker then watches the sockets (cr_listener_start) and
 * hands every accepted descriptor to a callback. */
#ifndef CR_LISTENER_H
#define CR_LISTENER_H

#include <event2/event.h>
#include <sys/socket.h>

#include "config.h"

/* Binds and listens on addr (SO_REUSEADDR, non-blocking). Returns the
 * descriptor, or CR_EIO with a message in err. */
int cr_listener_bind(const struct cr_addr *addr, int backlog, char *err, size_t errlen);

struct cr_listener;

/* Called for each accepted, non-blocking, TCP_NODELAY client descriptor,
 * which the callee now owns. */
typedef void (*cr_listener_accept_cb)(int fd, const struct sockaddr *sa, socklen_t salen,
                                      void *arg);

/* Watches fd on base, its event at the given libevent priority. The
 * listener does not own fd (the master does).
 * When accept(2) fails for want of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM) the listener rests for 100 ms before it tries again,
 * the connection waiting in the backlog meanwhile, and says so in the
 * error log once per 10 s at most. Returns NULL when out of memory. */
struct cr_listener *cr_listener_start(struct event_base *base, int fd, int priority,
                                      cr_listener_accept_cb cb, void *arg);

/* Stops accepting for a while (a limit was reached) or for good (drain).
 * cr_listener_free closes this process's copy of the descriptor. */
void cr_listener_pause(struct cr_listener *l);
void cr_listener_resume(struct cr_listener *l);
void cr_listener_free(struct cr_listener *l);

#endif
