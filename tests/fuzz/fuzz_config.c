/* fuzz_config.c - the config loader (src/config.c over src/cfgload.c):
 * YAML text becomes a config or a list of FILE:LINE:COL errors, never a
 * crash, a leak or a hang. Seeds: the sample configs (etc/corral.yaml, the
 * built-in default, the unit tests' worlds) in tests/fuzz/corpus/config/.
 * File names in the text are only checked for readability (open(2)
 * O_NONBLOCK, then closed), never read. */
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fuzz_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    struct cr_config *cfg = NULL;
    struct cr_diag diag;
    (void)cr_config_load_string("fuzz.yaml", text, &cfg, &diag);
    cr_diag_print(&diag, fuzz_devnull());
    cr_diag_free(&diag);
    cr_config_free(cfg);
    free(text);
    return 0;
}
