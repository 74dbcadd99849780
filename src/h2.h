/* h2.h - the HTTP/2 front end of a client connection (nghttp2 server
 * session): many concurrent streams, flow control tied to the upstream's
 * consumption of each body, GOAWAY on drain and when idle. */
#ifndef CR_H2_H
#define CR_H2_H

#include "conn.h"
#include "request.h"

/* Binds the HTTP/2 front end to an open connection (its SETTINGS are queued
 * at once). Each request whose head is complete goes to submit
 * (cr_request_submit in corral; see request.h); requests the front end
 * answers itself (431, 414, 413) never do. Returns 0 or CR_ENOMEM. */
int cr_h2_attach(struct cr_conn *c, cr_request_submit_cb submit);

#endif
