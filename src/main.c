/* main.c - corral's command line. */
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "ac_config.h"
#include "config.h"
#include "master.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: corral [-c FILE] [-t] [-V] [-h]\n"
            "  -c FILE  run with this configuration (default: the built-in one, certificates\n"
            "           in " CR_STATEDIR ")\n"
            "  -t       check the configuration and exit: 0 when valid, else 1 and every\n"
            "           problem as FILE:LINE:COL: message\n"
            "  -V       print the version and the libraries' versions\n"
            "  -h       this help\n"
            "Signals: TERM/INT stop gracefully, HUP reloads, USR1 re-opens the logs.\n"
            "See corral(8) and corral.yaml(5).\n");
}

static void version(void)
{
    printf("corral %s\n", PACKAGE_VERSION);
    printf("  OpenSSL  %s (built with %s)\n", OpenSSL_version(OPENSSL_VERSION),
           OPENSSL_VERSION_TEXT);
    printf("  libevent %s\n", event_get_version());
    printf("  nghttp2  %s (built with %s)\n", nghttp2_version(0)->version_str, NGHTTP2_VERSION);
    printf("  libyaml  %s\n", yaml_get_version_string());
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int test = 0, opt;
    while ((opt = getopt(argc, argv, "c:tVh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 'V':
            version();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "corral: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    struct cr_config *cfg = NULL;
    struct cr_diag diag = {0};
    int rc = path ? cr_config_load(path, &cfg, &diag) : cr_config_load_default(&cfg, &diag);
    if (rc == 0 && test)
        rc = cr_master_check(cfg, &diag); /* certificates, keys, ticket key files */
    cr_diag_print(&diag, stderr);
    cr_diag_free(&diag);
    if (rc < 0) {
        fprintf(stderr, "corral: %s has errors\n", path ? path : "the built-in configuration");
        return 1;
    }
    if (test) {
        printf("corral: %s is valid\n", path ? path : "the built-in configuration");
        return 0;
    }
    return cr_master_run(cfg, path);
}
