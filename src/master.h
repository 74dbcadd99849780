/* master.h - the master process: config, listeners, workers, signals.
 *
 * The master loads the config, binds every listener, builds the TLS
 * contexts, forks cfg->workers workers and supervises them:
 *   - a worker that dies is replaced, with back-off, and its exit logged;
 *   - SIGTERM/SIGINT: workers stop accepting, finish in-flight requests up
 *     to drain_timeout, and the master exits 0 once they are gone;
 *   - SIGHUP: the config is re-read and validated in full (YAML, files, TLS
 *     material, binds); a bad one is logged and the running workers keep
 *     serving; a good one starts a new generation of workers and drains the
 *     old one;
 *   - SIGUSR1: the master and every worker re-open their log files.
 * The master stays root (to bind and read keys on reload); workers drop to
 * the configured user and group right after they start. */
#ifndef CR_MASTER_H
#define CR_MASTER_H

#include "config.h"

/* Runs until stopped. cfg is taken over by the master. path is the file to
 * re-read on SIGHUP, or NULL for the built-in default. Returns the process
 * exit code (0 after a graceful stop). */
int cr_master_run(struct cr_config *cfg, const char *path);

/* Checks everything a start would (config, TLS material, key files, users)
 * without binding or forking; cfg is taken over. Problems go to diag.
 * Returns 0 or CR_ECONFIG. */
int cr_master_check(struct cr_config *cfg, struct cr_diag *diag);

#endif
