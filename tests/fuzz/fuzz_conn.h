/* fuzz_conn.h - what the front-end fuzz targets (fuzz_h1, fuzz_h2) share:
 * one input through a client connection of a fresh in-memory world
 * (tests/unit/fixture.h) whose upstream is an HTTP/2 load balancer in
 * memory, so that requests go the whole way (tenant, admission, pool,
 * upstream codec) and the answers come back through the front end.
 *
 * Input layout: the first byte steers the driver, the rest is what the
 * client sends (after the preface, for HTTP/2):
 *   bits 0-5   0: everything in one read; n: reads of n * 7 bytes, so that
 *              heads, frames and chunks are split at odd places
 *   bit 6      at the end, fire the connection's timer if one is armed
 *              (the 408 / idle paths a stalled client reaches)
 *   bit 7      after the first read, the worker starts draining (on_drain)
 *
 * Everything is built and freed per input: no state crosses inputs, so a
 * crash reproduces from its input alone. Nothing opens a socket; the
 * world's error and access logs go to /dev/null at level debug, so that
 * the log formatting sees the hostile strings too. */
#ifndef CR_FUZZ_CONN_H
#define CR_FUZZ_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "request.h"

typedef int (*fuzz_attach_fn)(struct cr_conn *c, cr_request_submit_cb submit);

/* Runs data (size bytes, layout above) through a connection bound with
 * attach; preface (plen bytes, may be 0) is sent first, in the same read. */
void fuzz_conn_run(fuzz_attach_fn attach, const uint8_t *preface, size_t plen, const uint8_t *data,
                   size_t size);

#endif
