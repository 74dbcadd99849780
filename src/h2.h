/* h2.h - the HTTP/2 front end of a client connection (nghttp2 server
 * session): many concurrent streams, flow control tied to the upstream's
 * consumption of each body, GOAWAY on drain and when idle. */
#ifndef CR_H2_H
#define CR_H2_H

#include "conn.h"

/* Binds the HTTP/2 front end to an open connection. Returns 0 or
 * CR_ENOMEM. */
int cr_h2_attach(struct cr_conn *c);

#endif
