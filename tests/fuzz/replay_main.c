/* replay_main.c - runs a fuzz target's inputs once each, without libFuzzer,
 * so that `make check` proves every seed and every crash kept as a
 * regression input still goes through (built with the normal compiler;
 * `make fuzz` links the same targets with libFuzzer instead).
 *
 *   fuzz_TARGET [FILE|DIR]...
 *
 * Without arguments the inputs are the files of
 *   $CORRAL_SRCDIR/tests/fuzz/corpus/TARGET/    (the seeds: at least one)
 *   $CORRAL_SRCDIR/tests/fuzz/regress/TARGET/   (crashes found and fixed)
 * where TARGET is the program's name without "fuzz_" (CORRAL_SRCDIR
 * defaults to "."). A crash, a sanitizer report or a failed assertion in
 * the target fails the test, and so does an input that takes more than
 * REPLAY_TIMEOUT seconds (FUZZ_REPLAY_TIMEOUT in the environment; every
 * seed takes milliseconds): a hang kept as a regression input must fail
 * when the hang comes back. Exit 0 when every input went through, 99 when
 * the inputs cannot be read. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPLAY_MAX_INPUT (1u << 20) /* bigger than any -max_len of make fuzz */
#define REPLAY_TIMEOUT 5            /* seconds per input */

static const char *current; /* the input running, for the alarm */
static unsigned timeout_s = REPLAY_TIMEOUT;

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "replay: an input took too long (a hang): ";
    ssize_t rc = write(2, msg, sizeof(msg) - 1);
    rc = write(2, current, strlen(current));
    rc = write(2, "\n", 1);
    (void)rc;
    _exit(1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as in libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static const char *target_name(const char *argv0)
{
    const char *b = strrchr(argv0, '/');
    b = b ? b + 1 : argv0;
    return strncmp(b, "fuzz_", 5) == 0 ? b + 5 : b;
}

/* Runs one file through the target. Returns 0, or -1 if it cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    size_t n = buf ? fread(buf, 1, REPLAY_MAX_INPUT, f) : 0;
    int bad = !buf || ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read (or larger than %u bytes)\n", path, REPLAY_MAX_INPUT);
        free(buf);
        return -1;
    }
    /* an exact-size copy, so that the sanitizers see reads past the end */
    uint8_t *in = malloc(n ? n : 1);
    if (!in) {
        free(buf);
        return -1;
    }
    memcpy(in, buf, n);
    free(buf);
    current = path;
    alarm(timeout_s);
    (void)LLVMFuzzerTestOneInput(in, n);
    alarm(0);
    free(in);
    return 0;
}

/* Runs a file, or every regular file of a directory in name order (not
 * recursive; dot files skipped). *count gets the inputs run. Returns 0, or
 * -1 when something could not be read. missing_ok: a directory that does
 * not exist is empty. */
static int run_path(const char *path, int missing_ok, size_t *count)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (missing_ok && errno == ENOENT)
            return 0;
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (run_file(path) < 0)
            return -1;
        (*count)++;
        return 0;
    }
    struct dirent **list;
    int n = scandir(path, &list, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char file[4096];
        if (list[i]->d_name[0] != '.' &&
            (size_t)snprintf(file, sizeof(file), "%s/%s", path, list[i]->d_name) < sizeof(file) &&
            stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(file) < 0)
                rc = -1;
            else
                (*count)++;
        }
        free(list[i]);
    }
    free(list);
    return rc;
}

int main(int argc, char **argv)
{
    const char *name = target_name(argv[0]);
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    size_t count = 0;
    int rc = 0;
    const char *t = getenv("FUZZ_REPLAY_TIMEOUT");
    if (t && atoi(t) > 0)
        timeout_s = (unsigned)atoi(t);
    signal(SIGALRM, on_alarm);
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            rc |= run_path(argv[i], 0, &count);
        printf("fuzz_%s: %zu inputs replayed\n", name, count);
        return rc < 0 ? 99 : 0;
    }
    const char *src = getenv("CORRAL_SRCDIR");
    char corpus[4096], regress[4096];
    snprintf(corpus, sizeof(corpus), "%s/tests/fuzz/corpus/%s", src ? src : ".", name);
    snprintf(regress, sizeof(regress), "%s/tests/fuzz/regress/%s", src ? src : ".", name);
    size_t seeds = 0, crashes = 0;
    rc |= run_path(corpus, 0, &seeds);
    rc |= run_path(regress, 1, &crashes);
    printf("fuzz_%s: %zu seeds (%s), %zu regression inputs (%s) replayed\n", name, seeds, corpus,
           crashes, regress);
    if (rc < 0 || seeds == 0) {
        fprintf(stderr, "fuzz_%s: %s\n", name,
                rc < 0 ? "inputs could not be read" : "no seeds: the corpus is missing");
        return 99;
    }
    return 0;
}
