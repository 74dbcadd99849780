/* h1.h - the HTTP/1.1 front end of a client connection (http_parser).
 *
 * Keep-alive, pipelining (responses in request order, at most
 * CR_H1_PIPELINE requests in flight: the parser pauses at the cap even
 * inside one read, keeps the bytes it has not parsed and goes on from them
 * once an answer frees a place), Content-Length and chunked bodies streamed
 * both ways, Expect: 100-continue, HTTP/1.0, absolute-form targets (their
 * authority replaces Host). Framing errors get 400 (Transfer-Encoding not
 * ending in chunked, Content-Length not plain digits, both at once),
 * transfer codings other than chunked 501, oversized heads 431/414, bodies
 * 413, stalls 408, and the connection closes after such an answer. Trailer
 * fields count against http.max_header_size and are dropped, never
 * forwarded. */
#ifndef CR_H1_H
#define CR_H1_H

#include "conn.h"
#include "request.h"

#define CR_H1_PIPELINE 16

/* Binds the HTTP/1.1 front end to an open connection. Each request whose
 * head is complete goes to submit (cr_request_submit in corral; see
 * request.h); requests the front end answers itself (framing errors,
 * limits) never do. Returns 0 or CR_ENOMEM. */
int cr_h1_attach(struct cr_conn *c, cr_request_submit_cb submit);

#endif
