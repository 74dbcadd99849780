/* fuzz_h1.c - the HTTP/1.1 front end (src/h1.c): the bytes a client sends
 * over TLS become requests, refusals (400, 413, 414, 431, ...) or a closed
 * connection, never a crash, a leak or a hang. Input layout: fuzz_conn.h
 * (one control byte, then the client's bytes). Seeds:
 * tests/fuzz/corpus/h1/. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_conn.h"
#include "h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_conn_run(cr_h1_attach, NULL, 0, data, size);
    return 0;
}
