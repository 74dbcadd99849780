/* fuzz_h2.c - the HTTP/2 front end (src/h2.c, an nghttp2 server session):
 * the frames a client sends after the connection preface become requests,
 * stream resets or a GOAWAY, never a crash, a leak or a hang. The preface
 * ("PRI * HTTP/2.0...") is the driver's, so the fuzzer starts at the
 * frames. Input layout: fuzz_conn.h (one control byte, then the frames).
 * Seeds (frame sequences made with nghttp2 by tests/fuzz/seed_h2.c):
 * tests/fuzz/corpus/h2/. */
#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

#include "fuzz_conn.h"
#include "h2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_conn_run(cr_h2_attach, (const uint8_t *)NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN,
                  data, size);
    return 0;
}
