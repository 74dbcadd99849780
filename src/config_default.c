/* config_default.c - the built-in default config: the quick start's shape.
 * Certificates are read from CR_STATEDIR (configure --with-statedir). */
#include "config.h"
#include "ac_config.h"

const char cr_config_default_yaml[] =
    "# corral built-in default: TLS on 127.0.0.1:8443, demo upstream on 9443\n"
    "workers: auto\n"
    "listeners:\n"
    "  - name: https\n"
    "    address: 127.0.0.1:8443\n"
    "    tls:\n"
    "      certificates:\n"
    "        - cert: " CR_STATEDIR "/edge.crt\n"
    "          key: " CR_STATEDIR "/edge.key\n"
    "upstream:\n"
    "  addresses: [127.0.0.1:9443]\n"
    "  protocol: h2\n"
    "  connections: 2\n"
    "  tls:\n"
    "    ca: " CR_STATEDIR "/ca.crt\n"
    "    cert: " CR_STATEDIR "/client.crt\n"
    "    key: " CR_STATEDIR "/client.key\n"
    "    sni: lb.test\n"
    "log:\n"
    "  access: stdout\n";
