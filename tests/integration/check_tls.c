/* check_tls.c - corral's TLS toward clients: protocol versions, certificate
 * selection by SNI and by key type, ALPN, stateless session resumption
 * (shared, rotated and file-provided ticket keys, reload), OCSP stapling,
 * the handshake timeout and limit, and what `corral -t` says about
 * certificates.
 *
 * Clients are real ones (openssl s_client, curl), run with time limits;
 * counters come from the admin endpoint's GET /stats. The certificates the
 * shared set lacks (an ECDSA twin of edge.crt, other names, a chain with an
 * intermediate, short-lived and expired ones, OCSP responses) are made once
 * per run with the openssl CLI, signed by the test CA, in a fixture dir that
 * main() creates and removes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SC_MS 5000    /* an s_client run */
#define OSSL_MS 30000 /* an openssl fixture command (RSA key generation) */

static struct h_test *T;
static char FIX[512]; /* the per-run fixture dir, made by main() */

static void setup(void)
{
    T = h_test_begin();
}

static void teardown(void)
{
    h_test_end(T);
    T = NULL;
}

/* ------------------------------------------------------------ small helpers */

static bool has(const char *text, const char *needle)
{
    return text != NULL && strstr(text, needle) != NULL;
}

/* How many times needle occurs in text. */
static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* true when one line of text contains every string of the NULL-terminated
 * needles. */
static bool line_has(const char *text, const char *const *needles)
{
    for (const char *p = text; *p != '\0';) {
        size_t n = strcspn(p, "\n");
        char *l = h_strf(T, "%.*s", (int)n, p);
        bool all = true;
        for (size_t i = 0; needles[i] != NULL && all; i++)
            all = strcasestr(l, needles[i]) != NULL;
        if (all)
            return true;
        p += n + (p[n] == '\n');
    }
    return false;
}

static char *fix(const char *name)
{
    return h_strf(T, "%s/%s", FIX, name);
}

static char *shared(const char *name)
{
    return h_strf(T, "%s/%s", T->certs, name);
}

/* Runs `openssl args...` (NULL-terminated); fails the test unless it exits
 * 0 within OSSL_MS. Returns its stdout (owned by T). */
static char *ossl(const char *first, ...)
{
    char *argv[48];
    int n = 0;
    argv[n++] = "openssl";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL && n < 47; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    struct h_run r;
    ck_assert_msg(h_run(T, argv, OSSL_MS, &r) == 0, "cannot run openssl");
    ck_assert_msg(r.exit_code == 0 && !r.timed_out, "openssl %s %s ... failed (exit %d%s): %s%s",
                  argv[1], n > 2 ? argv[2] : "", r.exit_code, r.timed_out ? ", timed out" : "",
                  r.out, r.err);
    return r.out;
}

/* ------------------------------------------------------------ fixtures */

/* A leaf certificate `name`.crt for key keyfile, subject CN=cn, the SAN
 * `san`, valid `days` days, signed by the CA ca_crt/ca_key (serials from
 * FIX/ca.srl: the shared certs dir is never written). ext NULL = a server
 * certificate. */
static void make_cert(const char *name, const char *keyfile, const char *cn, const char *san,
                      const char *days, const char *ca_crt, const char *ca_key, const char *ext)
{
    char *csr = fix(h_strf(T, "%s.csr", name));
    char *extf = fix(h_strf(T, "%s.ext", name));
    ossl("req", "-new", "-key", keyfile, "-subj", h_strf(T, "/CN=%s", cn), "-out", csr, NULL);
    ck_assert_int_eq(h_write_file(extf, ext != NULL ? ext
                                                    : h_strf(T,
                                                             "subjectAltName=%s\n"
                                                             "extendedKeyUsage=serverAuth\n",
                                                             san)),
                     0);
    ossl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAserial", fix("ca.srl"),
         "-CAcreateserial", "-days", days, "-extfile", extf, "-out", fix(h_strf(T, "%s.crt", name)),
         NULL);
}

/* "serial=HEX" of a certificate, as HEX. */
static char *serial_of(const char *crt)
{
    char *out = ossl("x509", "-in", crt, "-noout", "-serial", NULL);
    char *eq = strchr(out, '=');
    ck_assert_msg(eq != NULL, "no serial in: %s", out);
    return h_strf(T, "%.*s", (int)strcspn(eq + 1, "\r\n"), eq + 1);
}

/* Reads one DER TLV header at p (< end). Returns 0 or -1. */
static int der_tlv(const unsigned char *p, const unsigned char *end, unsigned *tag, size_t *hdr,
                   size_t *len)
{
    if (end - p < 2)
        return -1;
    size_t l = p[1], h = 2;
    if (l & 0x80) {
        size_t n = l & 0x7f;
        if (n == 0 || n > 3 || (size_t)(end - p) < 2 + n)
            return -1;
        l = 0;
        for (size_t i = 0; i < n; i++)
            l = (l << 8) | p[2 + i];
        h += n;
    }
    if (l > (size_t)(end - p) - h)
        return -1;
    *tag = p[0];
    *hdr = h;
    *len = l;
    return 0;
}

/* Enters (or with skip, steps over) the TLV at *p, which must have tag. */
static void der_step(const unsigned char **p, const unsigned char *end, unsigned tag, bool skip)
{
    unsigned t;
    size_t h, l;
    ck_assert_msg(der_tlv(*p, end, &t, &h, &l) == 0 && t == tag,
                  "OCSP response: expected DER tag 0x%02x, found 0x%02x", tag, **p);
    *p += skip ? h + l : h;
}

/* The OCSP response `src` with its producedAt, thisUpdate and nextUpdate
 * moved to January 2020, re-signed with the CA key (a genuine response that
 * is simply stale), written to dst. `openssl ocsp` cannot date a response
 * in the past (its shortest validity is -nmin 1), and a test does not wait
 * a minute. */
static void make_stale_ocsp(const char *src, const char *dst)
{
    size_t len;
    unsigned char *der = (unsigned char *)h_read_file(src, &len);
    ck_assert_msg(der != NULL, "cannot read %s", src);
    const unsigned char *end = der + len, *p = der;
    der_step(&p, end, 0x30, false); /* OCSPResponse */
    der_step(&p, end, 0x0a, true);  /* responseStatus */
    der_step(&p, end, 0xa0, false); /* [0] responseBytes */
    der_step(&p, end, 0x30, false);
    der_step(&p, end, 0x06, true);  /* responseType */
    der_step(&p, end, 0x04, false); /* response: BasicOCSPResponse */
    der_step(&p, end, 0x30, false);
    unsigned tag;
    size_t h, l;
    ck_assert(der_tlv(p, end, &tag, &h, &l) == 0 && tag == 0x30);
    unsigned char *tbs = der + (p - der);
    size_t tbs_len = h + l;
    p += tbs_len;
    der_step(&p, end, 0x30, true); /* signatureAlgorithm */
    ck_assert(der_tlv(p, end, &tag, &h, &l) == 0 && tag == 0x03 && l > 1 && p[h] == 0);
    unsigned char *sig = der + (p - der) + h + 1;
    size_t sig_len = l - 1;

    static const char *const when[] = {"20200101000000Z", "20200101000000Z", "20200102000000Z"};
    int times = 0;
    for (size_t i = 0; i + 17 <= tbs_len; i++) {
        if (tbs[i] != 0x18 || tbs[i + 1] != 15 || tbs[i + 16] != 'Z')
            continue;
        ck_assert_msg(times < 3, "more GeneralizedTimes than expected in %s", src);
        memcpy(tbs + i + 2, when[times++], 15);
        i += 16;
    }
    ck_assert_msg(times == 3,
                  "%s: %d GeneralizedTime(s), expected producedAt, thisUpdate, "
                  "nextUpdate",
                  src, times);
    FILE *f = fopen(fix("stale.tbs"), "wb");
    ck_assert(f != NULL && fwrite(tbs, 1, tbs_len, f) == tbs_len && fclose(f) == 0);
    ossl("dgst", "-sha256", "-sign", shared("ca.key"), "-out", fix("stale.sig"), fix("stale.tbs"),
         NULL);
    size_t slen;
    char *s = h_read_file(fix("stale.sig"), &slen);
    ck_assert_msg(s != NULL && slen == sig_len, "signature of %zu bytes, expected %zu", slen,
                  sig_len);
    memcpy(sig, s, slen);
    free(s);
    f = fopen(dst, "wb");
    ck_assert(f != NULL && fwrite(der, 1, len, f) == len && fclose(f) == 0);
    free(der);
}

/* An OCSP response "good" for crt from the test CA, valid one day. */
static void make_ocsp(const char *crt, const char *req, const char *resp)
{
    ossl("ocsp", "-issuer", shared("ca.crt"), "-cert", crt, "-reqout", req, "-no_nonce", NULL);
    ossl("ocsp", "-index", fix("ocsp-index.txt"), "-rsigner", shared("ca.crt"), "-rkey",
         shared("ca.key"), "-CA", shared("ca.crt"), "-reqin", req, "-respout", resp, "-ndays", "1",
         NULL);
}

/* Makes the fixtures once per run (the first test that needs them pays):
 *   ec.key                 ECDSA P-256 key, shared by the ECDSA leaves
 *   rsa.key                RSA-2048 key, shared by the other leaves
 *   edge-ec.crt            ECDSA twin of edge.crt: the same SANs
 *   api.crt, api-ec.crt    api.example.test, RSA and ECDSA
 *   wild.crt               *.wild.example.test
 *   soon.crt               valid 5 days; expired.crt: January 2020
 *   chain-full.pem         leaf (chain.example.test) + intermediate + root
 *   chain-partial.pem      the same leaf + root, the intermediate missing
 *   edge.ocsp, api.ocsp    fresh OCSP responses; edge-stale.ocsp: stale */
static void fixtures(void)
{
    if (access(fix(".done"), F_OK) == 0)
        return;
    const char *ca = shared("ca.crt"), *cakey = shared("ca.key");
    char *ec = fix("ec.key"), *rsa = fix("rsa.key"), *ikey = fix("inter.key");
    ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec, NULL);
    ossl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa, NULL);
    ossl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", ikey, NULL);
    ck_assert(chmod(ec, 0600) == 0 && chmod(rsa, 0600) == 0 && chmod(ikey, 0600) == 0);

    make_cert("edge-ec", ec, "edge.test", "DNS:edge.test,DNS:localhost,IP:127.0.0.1", "365", ca,
              cakey, NULL);
    make_cert("api", rsa, "api.example.test", "DNS:api.example.test", "365", ca, cakey, NULL);
    make_cert("api-ec", ec, "api.example.test", "DNS:api.example.test", "365", ca, cakey, NULL);
    make_cert("wild", rsa, "*.wild.example.test", "DNS:*.wild.example.test", "365", ca, cakey,
              NULL);
    make_cert("soon", rsa, "soon.example.test", "DNS:soon.example.test", "5", ca, cakey, NULL);
    make_cert("inter", ikey, "corral test intermediate", NULL, "365", ca, cakey,
              "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n");
    make_cert("chain", rsa, "chain.example.test", "DNS:chain.example.test", "365", fix("inter.crt"),
              ikey, NULL);
    char *leaf = h_read_file(fix("chain.crt"), NULL), *inter = h_read_file(fix("inter.crt"), NULL);
    char *root = h_read_file(ca, NULL);
    ck_assert(leaf != NULL && inter != NULL && root != NULL);
    ck_assert_int_eq(h_write_file(fix("chain-full.pem"), h_strf(T, "%s%s%s", leaf, inter, root)),
                     0);
    ck_assert_int_eq(h_write_file(fix("chain-partial.pem"), h_strf(T, "%s%s", leaf, root)), 0);
    free(leaf);
    free(inter);
    free(root);

    /* expired: `openssl ca` is the CLI that takes explicit dates */
    ck_assert_int_eq(h_write_file(fix("ca-db.txt"), ""), 0);
    ck_assert_int_eq(h_write_file(fix("ca-serial"), "1000\n"), 0);
    ck_assert_int_eq(h_write_file(fix("ca.cnf"), h_strf(T,
                                                        "[ca]\ndefault_ca = d\n[d]\n"
                                                        "database = %s/ca-db.txt\n"
                                                        "new_certs_dir = %s\n"
                                                        "serial = %s/ca-serial\n"
                                                        "default_md = sha256\npolicy = p\n"
                                                        "copy_extensions = copy\n"
                                                        "unique_subject = no\n"
                                                        "[p]\ncommonName = supplied\n",
                                                        FIX, FIX, FIX)),
                     0);
    ossl("req", "-new", "-key", rsa, "-subj", "/CN=expired.example.test", "-addext",
         "subjectAltName=DNS:expired.example.test", "-out", fix("expired.csr"), NULL);
    ossl("ca", "-config", fix("ca.cnf"), "-batch", "-notext", "-cert", ca, "-keyfile", cakey, "-in",
         fix("expired.csr"), "-out", fix("expired.crt"), "-startdate", "20200101000000Z",
         "-enddate", "20200201000000Z", NULL);

    /* OCSP: the CA answers for edge.crt and api.crt */
    char *index = h_strf(T,
                         "V\t301231000000Z\t\t%s\tunknown\t/CN=edge.test\n"
                         "V\t301231000000Z\t\t%s\tunknown\t/CN=api.example.test\n",
                         serial_of(shared("edge.crt")), serial_of(fix("api.crt")));
    ck_assert_int_eq(h_write_file(fix("ocsp-index.txt"), index), 0);
    make_ocsp(shared("edge.crt"), fix("edge.req"), fix("edge.ocsp"));
    make_ocsp(fix("api.crt"), fix("api.req"), fix("api.ocsp"));
    make_stale_ocsp(fix("edge.ocsp"), fix("edge-stale.ocsp"));
    /* the stale one is a genuine, well-signed response, only old */
    struct h_run r;
    char *argv[] = {"openssl", "ocsp",     "-respin",    fix("edge-stale.ocsp"),
                    "-CAfile", (char *)ca, "-resp_text", NULL};
    ck_assert(h_run(T, argv, OSSL_MS, &r) == 0);
    ck_assert_msg(has(r.err, "Response verify OK") &&
                      has(r.out, "Next Update: Jan  2 00:00:00 2020"),
                  "the stale OCSP fixture is not right: %s%s", r.out, r.err);
    ck_assert_int_eq(h_write_file(fix(".done"), "ok\n"), 0);
}

/* ------------------------------------------------------------ corral */

/* One entry of `certificates:`. */
static char *cert_entry(const char *cert, const char *key, const char *ocsp)
{
    return h_strf(T, "        - {cert: %s, key: %s%s%s}\n", cert, key, ocsp ? ", ocsp: " : "",
                  ocsp ? ocsp : "");
}

static char *edge_entry(void)
{
    return cert_entry(shared("edge.crt"), shared("edge.key"), NULL);
}

/* DIR/name.log: the error log of the corral started as `name`. */
static char *log_of(const char *name)
{
    return h_path(T, h_strf(T, "%s.log", name));
}

/* Writes DIR/name.yaml: `workers` workers, one listener on port with the
 * certificates `certs` (cert_entry lines) and `tls_extra` (more keys of
 * tls:, indented 6), the admin endpoint on admin (0 = none), errors logged
 * to DIR/name.log, the demo upstream. Returns the path. */
static char *write_config(const char *name, int workers, int port, const char *certs,
                          const char *tls_extra, int admin)
{
    char *text = h_strf(T,
                        "workers: %d\n"
                        "drain_timeout: 1s\n"
                        "log: {error: %s, level: info}\n"
                        "listeners:\n"
                        "  - name: https\n"
                        "    address: 127.0.0.1:%d\n"
                        "    tls:\n"
                        "      certificates:\n"
                        "%s%s"
                        "upstream:\n"
                        "  addresses: [127.0.0.1:@UPORT@]\n"
                        "  protocol: h2\n"
                        "  connections: 1\n"
                        "  tls: {ca: @CERTS@/ca.crt, cert: @CERTS@/client.crt, "
                        "key: @CERTS@/client.key, sni: lb.test}\n"
                        "%s",
                        workers, log_of(name), port, certs, tls_extra ? tls_extra : "",
                        admin ? h_strf(T, "admin: {address: 127.0.0.1:%d}\n", admin) : "");
    char *path = h_config_write(T, h_strf(T, "%s.yaml", name), text);
    ck_assert_msg(path != NULL, "cannot write %s.yaml", name);
    return path;
}

/* Starts corral with write_config(...) and waits until its workers run.
 * Returns the master's pid. */
static pid_t start(const char *name, int workers, int port, const char *certs,
                   const char *tls_extra, int admin)
{
    char *cfg = write_config(name, workers, port, certs, tls_extra, admin);
    pid_t m = h_corral_start(T, cfg, port);
    ck_assert_msg(m > 0, "corral (%s) did not start on port %d: stderr: %s | error log: %s", name,
                  port, h_file_tail(T, h_path(T, "corral.err"), 1500),
                  h_file_tail(T, log_of(name), 1500));
    int n = h_wait_children(m, workers, 5000, NULL);
    ck_assert_msg(n == workers, "corral (%s) has %d worker(s), expected %d", name, n, workers);
    return m;
}

/* `corral -t -c cfg`: its exit code, stdout + stderr in *out. */
static int check_config(const char *cfg, char **out)
{
    char *argv[] = {(char *)T->bin, "-t", "-c", (char *)cfg, NULL};
    struct h_run r;
    ck_assert_msg(h_run(T, argv, 10000, &r) == 0, "cannot run %s", T->bin);
    ck_assert_msg(!r.timed_out, "corral -t did not finish within 10 s");
    *out = h_strf(T, "%s%s", r.out, r.err);
    return r.exit_code;
}

/* ------------------------------------------------------------ clients */

/* A request corral refuses: it answers 400 and closes, with no upstream. */
static const char REQ_BAD[] = "BAD\r\n\r\n";

/* openssl s_client to 127.0.0.1:port with args (NULL-terminated), the test
 * CA trusted. It sends REQ_BAD and reads until corral closes (-ign_eof), so
 * session tickets, which come after the handshake, are read and saved by
 * -sess_out. Fails the test when it runs longer than SC_MS. Returns stdout
 * + stderr (owned by T); *exit_code (may be NULL) gets its exit code. */
static char *sclient(int port, const char *const *args, int *exit_code)
{
    char *argv[40];
    int n = 0;
    argv[n++] = "openssl";
    argv[n++] = "s_client";
    argv[n++] = "-connect";
    argv[n++] = h_strf(T, "127.0.0.1:%d", port);
    argv[n++] = "-CAfile";
    argv[n++] = shared("ca.crt");
    argv[n++] = "-ign_eof";
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 39; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    struct h_run r;
    ck_assert_msg(h_run_in(T, argv, REQ_BAD, SC_MS, &r) == 0, "cannot run openssl s_client");
    char *all = h_strf(T, "%s\n%s", r.out, r.err);
    ck_assert_msg(!r.timed_out, "s_client to port %d ran longer than %d ms: %s", port, SC_MS, all);
    if (exit_code != NULL)
        *exit_code = r.exit_code;
    return all;
}

/* Shorthand: s_client with up to four arguments. */
static char *sc(int port, const char *a1, const char *a2, const char *a3, const char *a4)
{
    const char *args[] = {a1, a2, a3, a4, NULL};
    return sclient(port, args, NULL);
}

/* Expects the server certificate s_client saw: subject CN=cn, a key of
 * `bits` bits, signatures of type sigtype ("ECDSA", "RSA-PSS"). */
static void expect_cert(const char *out, const char *what, const char *cn, int bits,
                        const char *sigtype)
{
    ck_assert_msg(has(out, h_strf(T, "\nsubject=CN = %s\n", cn)),
                  "%s: the server certificate is not CN=%s: %s", what, cn, out);
    ck_assert_msg(has(out, h_strf(T, "Server public key is %d bit", bits)),
                  "%s: expected a %d-bit key (CN=%s): %s", what, bits, cn, out);
    ck_assert_msg(has(out, h_strf(T, "Peer signature type: %s\n", sigtype)),
                  "%s: expected %s signatures (CN=%s): %s", what, sigtype, cn, out);
}

/* Saves a session of a new full handshake to DIR/name (-sess_out); extra
 * arguments a1, a2 (may be NULL). Returns the path. */
static char *new_session(int port, const char *name, const char *a1, const char *a2)
{
    char *path = h_path(T, name);
    unlink(path);
    char *out = sc(port, "-sess_out", path, a1, a2);
    ck_assert_msg(has(out, "New, TLSv1."), "port %d: no new session: %s", port, out);
    ck_assert_msg(access(path, F_OK) == 0, "port %d: s_client saved no session (no ticket?): %s",
                  port, out);
    return path;
}

/* Connects with the saved session; true when corral resumed it. Fails the
 * test when the handshake does not complete at all. */
static bool resumes(int port, const char *sess, const char *a1)
{
    char *out = sc(port, "-sess_in", sess, a1, NULL);
    bool reused = has(out, "Reused, TLSv1.");
    ck_assert_msg(reused || has(out, "New, TLSv1."), "port %d: no handshake: %s", port, out);
    return reused;
}

/* The first 16 bytes of the session ticket in a saved session (the key
 * name), as s_client's hex dump prints them. */
static char *ticket_name(const char *sess)
{
    char *out = ossl("sess_id", "-in", sess, "-noout", "-text", NULL);
    const char *p = strstr(out, "TLS session ticket:\n");
    ck_assert_msg(p != NULL, "no ticket in the session %s: %s", sess, out);
    p = strstr(p, "0000 - ");
    ck_assert_msg(p != NULL, "no ticket dump in %s: %s", sess, out);
    return h_strf(T, "%.47s", p + 7); /* "xx xx ... xx-xx ... xx" */
}

/* The same text for 16 raw bytes. */
static char *hex_dump16(const unsigned char *b)
{
    char *s = h_strf(T, "%s", "");
    for (int i = 0; i < 16; i++)
        s = h_strf(T, "%s%02x%s", s, b[i], i == 15 ? "" : i == 7 ? "-" : " ");
    return s;
}

/* ------------------------------------------------------------ /stats */

static char *stats(int admin)
{
    struct h_http r;
    h_curl(T, &r, h_strf(T, "http://127.0.0.1:%d/stats", admin), NULL);
    ck_assert_msg(r.exit_code == 0 && r.status == 200, "GET /stats on %d: curl %d, HTTP %d: %s",
                  admin, r.exit_code, r.status, r.err);
    return r.body;
}

static const char *skip_object(const char *p)
{
    int depth = 0;
    for (; *p != '\0'; p++) {
        if (*p == '{')
            depth++;
        else if (*p == '}' && --depth == 0)
            return p + 1;
    }
    return NULL;
}

/* The counter key of worker w (0-based), or of the total when w < 0, in a
 * /stats document; -1 when it is not there. */
static long stat_of(const char *json, int w, const char *key)
{
    const char *p;
    if (w < 0) {
        if ((p = strstr(json, "\"total\":{")) == NULL)
            return -1;
        p += strlen("\"total\":");
    } else {
        if ((p = strstr(json, "\"workers\":[")) == NULL)
            return -1;
        p += strlen("\"workers\":[");
        for (int i = 0; i < w; i++) {
            if ((p = skip_object(p)) == NULL || *p != ',')
                return -1;
            p++;
        }
    }
    const char *end = *p == '{' ? skip_object(p) : NULL;
    if (end == NULL)
        return -1;
    char *k = h_strf(T, "\"%s\":", key);
    const char *q = strstr(p, k);
    if (q == NULL || q >= end)
        return -1;
    return strtol(q + strlen(k), NULL, 10);
}

/* The classes of handshake_failures, in FAILURES' order. */
enum { F_VERSION, F_CIPHER, F_SNI, F_TIMEOUT, F_CLOSED, F_NOT_TLS, F_ALERT, F_OTHER };
static const char *const FAILURES[] = {
    "protocol_version", "no_shared_cipher", "unknown_sni",  "timeout",
    "client_closed",    "not_tls",          "client_alert", "other"};
#define NFAILURES (sizeof(FAILURES) / sizeof(FAILURES[0]))

/* The sum of the total's handshake_failures (each must be there). */
static long failures_sum(const char *json)
{
    long sum = 0;
    for (size_t i = 0; i < NFAILURES; i++) {
        long v = stat_of(json, -1, FAILURES[i]);
        ck_assert_msg(v >= 0, "/stats has no handshake_failures.%s: %s", FAILURES[i], json);
        sum += v;
    }
    return sum;
}

/* Polls the total counter key until it is want, for at most timeout_ms.
 * Returns the value seen last. */
static long wait_total(int admin, const char *key, long want, int timeout_ms)
{
    long long end = h_now_ms() + timeout_ms;
    for (;;) {
        long v = stat_of(stats(admin), -1, key);
        if (v == want || h_now_ms() >= end)
            return v;
        h_sleep_ms(50);
    }
}

/* Waits until /stats says generation gen (a reload has been adopted). */
static void wait_generation(int admin, long gen, const char *log)
{
    long long end = h_now_ms() + 10000;
    long g = -1;
    while (h_now_ms() < end) {
        const char *p = strstr(stats(admin), "\"generation\":");
        g = p != NULL ? strtol(p + 13, NULL, 10) : -1;
        if (g == gen)
            return;
        h_sleep_ms(50);
    }
    ck_abort_msg("generation %ld, not %ld, 10 s after SIGHUP | error log: %s", g, gen,
                 h_file_tail(T, log, 1500));
}

/* ------------------------------------------------------------ raw sockets */

/* Reads (and drops) what the peer sends until it closes; returns the ms
 * that took, or -1 when it was still open after timeout_ms. */
static long long wait_closed(int fd, int timeout_ms)
{
    long long t0 = h_now_ms(), end = t0 + timeout_ms;
    char buf[4096];
    for (;;) {
        long long left = end - h_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0 && !(n < 0 && errno == EINTR))
            return h_now_ms() - t0;
    }
}

/* ------------------------------------------------------------ versions */

/* TLS 1.0 and 1.1 are refused with a protocol_version alert and counted;
 * 1.2 and 1.3 work. */
START_TEST(old_versions_refused)
{
    int admin = h_free_port();
    start("c", 1, T->port, edge_entry(), NULL, admin);
    static const char *const old[] = {"-tls1", "-tls1_1"};
    for (size_t i = 0; i < 2; i++) {
        int rc;
        const char *args[] = {old[i], "-cipher", "DEFAULT@SECLEVEL=0", NULL};
        char *out = sclient(T->port, args, &rc);
        ck_assert_msg(rc != 0 && has(out, "alert protocol version"),
                      "%s: expected the server's protocol_version alert (exit %d): %s", old[i], rc,
                      out);
        ck_assert_msg(!has(out, "New, TLSv1"), "%s: a session was made: %s", old[i], out);
    }
    long v = wait_total(admin, "protocol_version", 2, 2000);
    ck_assert_msg(v == 2, "/stats protocol_version failures: %ld, expected 2: %s", v, stats(admin));
    char *s = stats(admin);
    ck_assert_msg(stat_of(s, -1, "handshakes_failed") == failures_sum(s),
                  "handshakes_failed is not the sum of handshake_failures: %s", s);
    ck_assert_int_eq(stat_of(s, -1, "handshakes_full"), 0);

    char *out = sc(T->port, "-tls1_2", NULL, NULL, NULL);
    ck_assert_msg(has(out, "New, TLSv1.2,") && has(out, "HTTP/1.1 400"), "TLS 1.2: %s", out);
    out = sc(T->port, "-tls1_3", NULL, NULL, NULL);
    ck_assert_msg(has(out, "New, TLSv1.3,") && has(out, "HTTP/1.1 400"), "TLS 1.3: %s", out);
    ck_assert_int_eq(wait_total(admin, "handshakes_full", 2, 2000), 2);
    ck_assert_int_eq(stat_of(stats(admin), -1, "protocol_version"), 2);
}
END_TEST

/* min_version "1.3" refuses TLS 1.2. */
START_TEST(min_version_13)
{
    int admin = h_free_port();
    start("c", 1, T->port, edge_entry(), "      min_version: \"1.3\"\n", admin);
    int rc;
    const char *args[] = {"-tls1_2", NULL};
    char *out = sclient(T->port, args, &rc);
    ck_assert_msg(rc != 0 && has(out, "alert protocol version") && !has(out, "New, TLSv1"),
                  "TLS 1.2 against min_version 1.3 (exit %d): %s", rc, out);
    out = sc(T->port, "-tls1_3", NULL, NULL, NULL);
    ck_assert_msg(has(out, "New, TLSv1.3,"), "TLS 1.3: %s", out);
    ck_assert_int_eq(wait_total(admin, "protocol_version", 1, 2000), 1);
}
END_TEST

/* ------------------------------------------------------------ certificates */

/* SNI picks the certificate: exact names (any case), a one-label wildcard;
 * unknown names, bare parent domains and no SNI get the first certificate,
 * whichever it is. A client that then refuses the default certificate
 * counts as unknown_sni, one that refuses a named one as client_alert. */
START_TEST(sni_selects_certificate)
{
    fixtures();
    int admin = h_free_port();
    char *certs =
        h_strf(T, "%s%s%s", edge_entry(), cert_entry(fix("api.crt"), fix("rsa.key"), NULL),
               cert_entry(fix("wild.crt"), fix("rsa.key"), NULL));
    start("c", 1, T->port, certs, NULL, admin);

    static const struct {
        const char *sni; /* NULL: no SNI */
        const char *cn;
        int bits;
        bool verify; /* the name must verify against the certificate */
    } cases[] = {
        {"edge.test", "edge.test", 4096, true},
        {"api.example.test", "api.example.test", 2048, true},
        {"API.Example.TEST", "api.example.test", 2048, false},
        {"x.wild.example.test", "*.wild.example.test", 2048, true},
        {"a.b.wild.example.test", "edge.test", 4096, false}, /* one label only */
        {"wild.example.test", "edge.test", 4096, false},     /* not the parent */
        {"unknown.test", "edge.test", 4096, false},
        {NULL, "edge.test", 4096, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *sni = cases[i].sni;
        const char *args[8];
        size_t n = 0;
        args[n++] = sni != NULL ? "-servername" : "-noservername";
        if (sni != NULL)
            args[n++] = sni;
        if (cases[i].verify) {
            args[n++] = "-verify_hostname";
            args[n++] = sni;
            args[n++] = "-verify_return_error";
        }
        args[n] = NULL;
        char *out = sclient(T->port, args, NULL);
        char *what = h_strf(T, "SNI %s", sni ? sni : "(none)");
        expect_cert(out, what, cases[i].cn, cases[i].bits, "RSA-PSS");
        ck_assert_msg(has(out, "HTTP/1.1 400"), "%s: no HTTP exchange after the handshake: %s",
                      what, out);
        if (cases[i].verify)
            ck_assert_msg(has(out, "Verification: OK"), "%s does not verify: %s", what, out);
    }

    /* clients that refuse what they got */
    const char *bad_name[] = {"-servername",  "unknown.test",         "-verify_hostname",
                              "unknown.test", "-verify_return_error", NULL};
    char *out = sclient(T->port, bad_name, NULL);
    ck_assert_msg(has(out, "hostname mismatch"), "unknown.test verified?: %s", out);
    const char *bad_ca[] = {"-servername",      "api.example.test",     "-CAfile",
                            shared("edge.crt"), "-verify_return_error", NULL};
    out = sclient(T->port, bad_ca, NULL);
    ck_assert_msg(has(out, "unable to get local issuer"), "api.example.test verified?: %s", out);
    wait_total(admin, "client_alert", 1, 2000);
    char *s = stats(admin);
    ck_assert_msg(stat_of(s, -1, "unknown_sni") == 1 && stat_of(s, -1, "client_alert") == 1,
                  "expected unknown_sni 1 and client_alert 1: %s", s);
    ck_assert_msg(stat_of(s, -1, "handshakes_failed") == failures_sum(s),
                  "handshakes_failed is not the sum of handshake_failures: %s", s);

    /* the first certificate is the default, not edge.crt as such */
    char *api_first =
        h_strf(T, "%s%s", cert_entry(fix("api.crt"), fix("rsa.key"), NULL), edge_entry());
    start("d", 1, T->port2, api_first, NULL, 0);
    expect_cert(sc(T->port2, "-noservername", NULL, NULL, NULL), "api first, no SNI",
                "api.example.test", 2048, "RSA-PSS");
    expect_cert(sc(T->port2, "-servername", "nothing.test", NULL, NULL), "api first, unknown SNI",
                "api.example.test", 2048, "RSA-PSS");
    expect_cert(sc(T->port2, "-servername", "edge.test", NULL, NULL), "api first, edge.test",
                "edge.test", 4096, "RSA-PSS");
}
END_TEST

/* An RSA and an ECDSA certificate for the same names are a pair: ECDSA to
 * clients that offer it, RSA to the others; the default pair (no SNI) as
 * well as one chosen by SNI, whichever is listed first. */
START_TEST(rsa_ecdsa_pair)
{
    fixtures();
    char *certs =
        h_strf(T, "%s%s%s%s", edge_entry(), cert_entry(fix("edge-ec.crt"), fix("ec.key"), NULL),
               cert_entry(fix("api-ec.crt"), fix("ec.key"), NULL),
               cert_entry(fix("api.crt"), fix("rsa.key"), NULL));
    start("c", 1, T->port, certs, NULL, 0);
    const char *rsa_only = "RSA-PSS+SHA256:RSA+SHA256";
    static const char *const tls12_rsa = "ECDHE-RSA-AES128-GCM-SHA256";
    static const char *const tls12_ec = "ECDHE-ECDSA-AES128-GCM-SHA256";

    char *out = sc(T->port, "-servername", "edge.test", "-verify_return_error", NULL);
    expect_cert(out, "edge.test, TLS 1.3", "edge.test", 256, "ECDSA");
    ck_assert_msg(has(out, "Verification: OK"), "the ECDSA edge.test does not verify: %s", out);
    expect_cert(sc(T->port, "-servername", "edge.test", "-sigalgs", rsa_only),
                "edge.test, TLS 1.3, RSA-only client", "edge.test", 4096, "RSA-PSS");
    const char *a12rsa[] = {"-servername", "edge.test", "-tls1_2", "-cipher", tls12_rsa, NULL};
    out = sclient(T->port, a12rsa, NULL);
    expect_cert(out, "edge.test, TLS 1.2 ECDHE-RSA", "edge.test", 4096, "RSA-PSS");
    ck_assert_msg(has(out, "New, TLSv1.2,"), "not TLS 1.2: %s", out);
    const char *a12ec[] = {"-servername", "edge.test", "-tls1_2", "-cipher", tls12_ec, NULL};
    out = sclient(T->port, a12ec, NULL);
    expect_cert(out, "edge.test, TLS 1.2 ECDHE-ECDSA", "edge.test", 256, "ECDSA");

    expect_cert(sc(T->port, "-noservername", NULL, NULL, NULL), "no SNI", "edge.test", 256,
                "ECDSA");
    expect_cert(sc(T->port, "-noservername", "-sigalgs", rsa_only, NULL), "no SNI, RSA-only",
                "edge.test", 4096, "RSA-PSS");

    /* listed ECDSA first, chosen by SNI */
    expect_cert(sc(T->port, "-servername", "api.example.test", NULL, NULL), "api.example.test",
                "api.example.test", 256, "ECDSA");
    expect_cert(sc(T->port, "-servername", "api.example.test", "-sigalgs", rsa_only),
                "api.example.test, RSA-only", "api.example.test", 2048, "RSA-PSS");
    const char *api12[] = {"-servername", "api.example.test", "-tls1_2",
                           "-cipher",     tls12_rsa,          NULL};
    expect_cert(sclient(T->port, api12, NULL), "api.example.test, TLS 1.2 ECDHE-RSA",
                "api.example.test", 2048, "RSA-PSS");
}
END_TEST

/* ------------------------------------------------------------ ALPN */

/* h2 and http/1.1 in the configured order of preference; no ALPN means
 * HTTP/1.1. */
START_TEST(alpn_preference)
{
    start("c", 1, T->port, edge_entry(), NULL, 0);
    start("d", 1, T->port2, edge_entry(), "      alpn: [http/1.1, h2]\n", 0);
    static const struct {
        int which; /* 0: default order, 1: [http/1.1, h2] */
        const char *offer;
        const char *want;
    } cases[] = {
        {0, "h2,http/1.1", "h2"}, {0, "http/1.1,h2", "h2"},       {0, "http/1.1", "http/1.1"},
        {0, "h2", "h2"},          {1, "h2,http/1.1", "http/1.1"}, {1, "http/1.1,h2", "http/1.1"},
        {1, "h2", "h2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int port = cases[i].which ? T->port2 : T->port;
        char *out = sc(port, "-alpn", cases[i].offer, NULL, NULL);
        ck_assert_msg(has(out, h_strf(T, "ALPN protocol: %s\n", cases[i].want)),
                      "alpn %s, client offers %s: expected %s: %s",
                      cases[i].which ? "[http/1.1, h2]" : "default", cases[i].offer, cases[i].want,
                      out);
        /* what follows is spoken in that protocol */
        bool h1 = has(out, "HTTP/1.1 400");
        ck_assert_msg(h1 == (strcmp(cases[i].want, "http/1.1") == 0),
                      "%s negotiated, yet corral %s HTTP/1.1: %s", cases[i].want,
                      h1 ? "answered in" : "did not answer in", out);
    }
    for (int which = 0; which < 2; which++) {
        char *out = sc(which ? T->port2 : T->port, NULL, NULL, NULL, NULL);
        ck_assert_msg(has(out, "No ALPN negotiated") && has(out, "HTTP/1.1 400"),
                      "no ALPN: expected HTTP/1.1: %s", out);
    }
}
END_TEST

/* The same through curl and the upstream: a request over h2 by default,
 * over HTTP/1.1 when asked or when it is all corral offers. */
START_TEST(alpn_end_to_end)
{
    ck_assert_msg(h_upstream_start(T) == 0, "demo upstream did not start: %s",
                  h_file_tail(T, h_path(T, "upstream.log"), 1500));
    start("c", 1, T->port, edge_entry(), NULL, 0);
    start("d", 1, T->port2, edge_entry(), "      alpn: [http/1.1]\n", 0);
    static const struct {
        int which;
        const char *arg;
        const char *version;
    } cases[] = {{0, NULL, "2"}, {0, "--http1.1", "1.1"}, {1, NULL, "1.1"}, {1, "--http2", "1.1"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[] = {cases[i].arg, NULL};
        struct h_http r;
        h_curl_edge(T, &r, cases[i].which ? T->port2 : T->port, "/alpn", args);
        ck_assert_msg(r.exit_code == 0 && r.status == 200,
                      "case %zu: curl exit %d, HTTP %d: %s | body %.200s | error log: %s", i,
                      r.exit_code, r.status, r.err, r.body,
                      h_file_tail(T, log_of(cases[i].which ? "d" : "c"), 1000));
        ck_assert_msg(strcmp(r.version, cases[i].version) == 0,
                      "case %zu (%s): HTTP/%s, expected HTTP/%s", i,
                      cases[i].arg ? cases[i].arg : "curl's default", r.version, cases[i].version);
        ck_assert_msg(has(r.body, "\"uri\":\"/alpn\""), "not the upstream's answer: %.200s",
                      r.body);
    }
}
END_TEST

/* ------------------------------------------------------------ resumption */

/* A session resumes on any worker (keys in shared memory), TLS 1.3 and
 * TLS 1.2 alike. */
START_TEST(resumption_on_any_worker)
{
    int admin = h_free_port();
    start("c", 2, T->port, edge_entry(), NULL, admin);
    char *s13 = new_session(T->port, "s13", NULL, NULL);
    int n = 0;
    char *s = NULL;
    for (; n < 40; n++) {
        ck_assert_msg(resumes(T->port, s13, NULL), "resumption %d of the TLS 1.3 session failed",
                      n + 1);
        s = stats(admin);
        if (stat_of(s, 0, "handshakes_resumed") > 0 && stat_of(s, 1, "handshakes_resumed") > 0)
            break;
    }
    ck_assert_msg(n < 40, "after 40 resumptions, not both workers resumed one: %s", s);
    ck_assert_int_eq(stat_of(s, -1, "handshakes_resumed"), n + 1);
    ck_assert_int_eq(stat_of(s, -1, "handshakes_full"), 1);

    char *s12 = new_session(T->port, "s12", "-tls1_2", NULL);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(resumes(T->port, s12, "-tls1_2"), "TLS 1.2 resumption %d failed", i + 1);
    s = stats(admin);
    ck_assert_int_eq(stat_of(s, -1, "handshakes_full"), 2);
    ck_assert_int_eq(stat_of(s, -1, "handshakes_resumed"), n + 1 + 6);
}
END_TEST

/* A resumed TLS 1.3 connection gets a fresh ticket, so a client that uses
 * each ticket once (as TLS 1.3 clients should) keeps resuming: each
 * connection resumes with the session the previous one saved. */
START_TEST(resumption_renews_tls13_tickets)
{
    start("c", 1, T->port, edge_entry(), NULL, 0);
    const char *arrived = "Post-Handshake New Session Ticket arrived";
    char *prev = new_session(T->port, "s0", "-tls1_3", NULL);
    for (int i = 1; i <= 3; i++) {
        char *next = h_path(T, h_strf(T, "s%d", i));
        const char *args[] = {"-tls1_3", "-sess_in", prev, "-sess_out", next, NULL};
        char *out = sclient(T->port, args, NULL);
        ck_assert_msg(has(out, "Reused, TLSv1.3"), "resumption %d did not resume: %s", i, out);
        ck_assert_msg(count_of(out, arrived) == 1,
                      "resumption %d brought %d new ticket(s), expected 1: %s", i,
                      count_of(out, arrived), out);
        prev = next;
    }
}
END_TEST

/* `tickets` is the number of TLS 1.3 tickets per connection; 0 sends none
 * and so disables resumption. */
START_TEST(tickets_per_connection)
{
    int admin = h_free_port();
    start("c", 1, T->port, edge_entry(), "      tickets: 3\n", 0);
    start("d", 1, T->port2, edge_entry(), "      tickets: 0\n", admin);
    const char *arrived = "Post-Handshake New Session Ticket arrived";
    char *out = sc(T->port, "-tls1_3", NULL, NULL, NULL);
    ck_assert_msg(count_of(out, arrived) == 3, "tickets: 3 sent %d ticket(s): %s",
                  count_of(out, arrived), out);
    char *path = h_path(T, "s0");
    out = sc(T->port2, "-tls1_3", "-sess_out", path, NULL);
    ck_assert_msg(has(out, "New, TLSv1.3") && count_of(out, arrived) == 0,
                  "tickets: 0 sent %d ticket(s): %s", count_of(out, arrived), out);
    if (access(path, F_OK) == 0)
        ck_assert_msg(!resumes(T->port2, path, "-tls1_3"), "tickets: 0, yet a session resumed");
    ck_assert_int_eq(stat_of(stats(admin), -1, "handshakes_resumed"), 0);
}
END_TEST

/* Generated keys rotate every ticket_rotate; a session from before a
 * rotation still resumes. */
START_TEST(ticket_key_rotation)
{
    start("c", 2, T->port, edge_entry(), "      ticket_rotate: 1s\n", 0);
    char *s1 = new_session(T->port, "s1", NULL, NULL);
    char *k1 = ticket_name(s1), *k2 = k1;
    long long end = h_now_ms() + 2500;
    while (strcmp(k1, k2) == 0 && h_now_ms() < end) {
        h_sleep_ms(150);
        k2 = ticket_name(new_session(T->port, "s2", NULL, NULL));
    }
    ck_assert_msg(strcmp(k1, k2) != 0,
                  "the ticket key name is still %s 2.5 s later: keys do not rotate every 1s", k1);
    ck_assert_msg(resumes(T->port, s1, NULL),
                  "a session from before the key rotation did not resume (key %s, now %s)", k1, k2);
    ck_assert_msg(resumes(T->port, h_path(T, "s2"), NULL), "a new session did not resume");
}
END_TEST

/* 80 random bytes, written raw to DIR/name; returned. */
static unsigned char *random_key(const char *name)
{
    char *path = h_path(T, name);
    ossl("rand", "-out", path, "80", NULL);
    size_t len;
    unsigned char *k = (unsigned char *)h_read_file(path, &len);
    ck_assert_msg(k != NULL && len == 80, "%s: %zu bytes", path, len);
    unsigned char *copy = (unsigned char *)h_strf(T, "%80s", "");
    memcpy(copy, k, 80);
    free(k);
    return copy;
}

/* base64 (one line) of the raw file DIR/name. */
static char *base64_of(const char *name)
{
    char *out = ossl("base64", "-A", "-in", h_path(T, name), NULL);
    return h_strf(T, "%.*s", (int)strcspn(out, "\r\n"), out);
}

static char *ticket_file_yaml(const char *path)
{
    return h_strf(T, "      ticket_key_file: %s\n", path);
}

/* Two corrals with the same raw key file resume each other's sessions; one
 * with another file does not. */
START_TEST(ticket_key_file_shared_raw)
{
    random_key("keys");
    random_key("other");
    int port3 = h_free_port();
    start("a", 1, T->port, edge_entry(), ticket_file_yaml(h_path(T, "keys")), 0);
    start("b", 2, T->port2, edge_entry(), ticket_file_yaml(h_path(T, "keys")), 0);
    start("c", 1, port3, edge_entry(), ticket_file_yaml(h_path(T, "other")), 0);
    char *sa = new_session(T->port, "sa", NULL, NULL);
    char *sb = new_session(T->port2, "sb", NULL, NULL);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(resumes(T->port2, sa, NULL), "B did not resume A's session (%d)", i);
    ck_assert_msg(resumes(T->port, sb, NULL), "A did not resume B's session");
    ck_assert_msg(resumes(T->port, sa, NULL), "A did not resume its own session");
    ck_assert_msg(!resumes(port3, sa, NULL), "C, with other keys, resumed A's session");
    char *sa12 = new_session(T->port, "sa12", "-tls1_2", NULL);
    ck_assert_msg(resumes(T->port2, sa12, "-tls1_2"), "B did not resume A's TLS 1.2 session");
}
END_TEST

/* HAProxy's format: base64 lines; with several, the penultimate encrypts
 * and all decrypt. */
START_TEST(ticket_key_file_base64)
{
    random_key("k1");
    random_key("k2");
    char *b1 = base64_of("k1"), *b2 = base64_of("k2");
    char *fa = h_path(T, "a.keys"), *fb = h_path(T, "b.keys"), *fc = h_path(T, "c.keys");
    ck_assert_int_eq(h_write_file(fa, h_strf(T, "%s\n%s\n", b1, b2)), 0);
    ck_assert_int_eq(h_write_file(fb, h_strf(T, "%s\n", b1)), 0);
    ck_assert_int_eq(h_write_file(fc, h_strf(T, "%s\n", b2)), 0);
    int port3 = h_free_port();
    start("a", 1, T->port, edge_entry(), ticket_file_yaml(fa), 0);
    start("b", 1, T->port2, edge_entry(), ticket_file_yaml(fb), 0);
    start("c", 1, port3, edge_entry(), ticket_file_yaml(fc), 0);
    char *sa = new_session(T->port, "sa", NULL, NULL);
    char *sb = new_session(T->port2, "sb", NULL, NULL);
    char *scc = new_session(port3, "sc", NULL, NULL);
    ck_assert_msg(resumes(T->port2, sa, NULL), "B (k1) did not resume A's session (k1 k2)");
    ck_assert_msg(resumes(T->port, sb, NULL), "A (k1 k2) did not resume B's session (k1)");
    ck_assert_msg(!resumes(port3, sa, NULL),
                  "C (k2) resumed A's session: A encrypts with its last key, not the penultimate");
    ck_assert_msg(resumes(T->port, scc, NULL), "A (k1 k2) did not resume C's session (k2)");
}
END_TEST

/* A key file that is not 80-byte keys makes `corral -t` fail naming it. */
START_TEST(ticket_key_file_corrupt)
{
    char *good = h_path(T, "good.keys");
    random_key("good.keys");
    char *out;
    int rc =
        check_config(write_config("ok", 1, T->port, edge_entry(), ticket_file_yaml(good), 0), &out);
    ck_assert_msg(rc == 0, "corral -t with a good key file: exit %d: %s", rc, out);

    char *short_file = h_path(T, "short.keys");
    ossl("rand", "-out", short_file, "50", NULL);
    ossl("rand", "-out", h_path(T, "k40"), "40", NULL);
    char *b64_short = h_path(T, "short-b64.keys"); /* well-formed base64 of 40 bytes */
    ck_assert_int_eq(h_write_file(b64_short, h_strf(T, "%s\n", base64_of("k40"))), 0);
    const char *bad[] = {short_file, b64_short, h_path(T, "missing.keys")};
    for (size_t i = 0; i < 3; i++) {
        rc = check_config(write_config(h_strf(T, "bad%zu", i), 1, T->port, edge_entry(),
                                       ticket_file_yaml(bad[i]), 0),
                          &out);
        ck_assert_msg(rc == 1, "corral -t with key file %s: exit %d (want 1): %s", bad[i], rc, out);
        const char *need[] = {"error", bad[i], NULL};
        ck_assert_msg(line_has(out, need), "no error line naming %s: %s", bad[i], out);
    }
}
END_TEST

/* On SIGHUP a changed key file is used: old sessions stop resuming unless
 * their key is still in the file, and the first key encrypts. */
START_TEST(ticket_key_file_reload)
{
    int admin = h_free_port();
    char *file = h_path(T, "tickets.keys");
    unsigned char *ka = random_key("ka"), *kb = random_key("kb");
    ck_assert_int_eq(rename(h_path(T, "ka"), file), 0);
    pid_t m = start("c", 2, T->port, edge_entry(), ticket_file_yaml(file), admin);
    char *sa = new_session(T->port, "sa", NULL, NULL);
    ck_assert_str_eq(ticket_name(sa), hex_dump16(ka));
    ck_assert_msg(resumes(T->port, sa, NULL), "the session does not resume before the reload");

    /* kb alone */
    ck_assert_int_eq(rename(h_path(T, "kb"), file), 0);
    ck_assert_int_eq(h_signal(m, SIGHUP), 0);
    wait_generation(admin, 2, log_of("c"));
    ck_assert_msg(!resumes(T->port, sa, NULL), "a session under a key no longer in the file "
                                               "resumed after SIGHUP");
    char *sb = new_session(T->port, "sb", NULL, NULL);
    ck_assert_str_eq(ticket_name(sb), hex_dump16(kb));
    ck_assert_msg(resumes(T->port, sb, NULL), "a session under the new key did not resume");

    /* kb then ka: kb encrypts, both decrypt */
    char *both = h_path(T, "both.keys");
    FILE *f = fopen(both, "wb");
    ck_assert(f != NULL && fwrite(kb, 1, 80, f) == 80 && fwrite(ka, 1, 80, f) == 80 &&
              fclose(f) == 0);
    ck_assert_int_eq(rename(both, file), 0);
    ck_assert_int_eq(h_signal(m, SIGHUP), 0);
    wait_generation(admin, 3, log_of("c"));
    ck_assert_msg(resumes(T->port, sa, NULL), "the old key is back in the file (second), yet "
                                              "its session did not resume");
    ck_assert_msg(resumes(T->port, sb, NULL), "the first key's session did not resume");
    ck_assert_str_eq(ticket_name(new_session(T->port, "sc", NULL, NULL)), hex_dump16(kb));
}
END_TEST

/* ------------------------------------------------------------ OCSP */

/* A fresh response is stapled for its certificate (by SNI), none for a
 * certificate without one, and only when the client asks. */
START_TEST(ocsp_fresh_is_stapled)
{
    fixtures();
    char *certs =
        h_strf(T, "%s%s%s", cert_entry(shared("edge.crt"), shared("edge.key"), fix("edge.ocsp")),
               cert_entry(fix("api.crt"), fix("rsa.key"), fix("api.ocsp")),
               cert_entry(fix("wild.crt"), fix("rsa.key"), NULL));
    char *out;
    int rc = check_config(write_config("c", 1, T->port, certs, NULL, 0), &out);
    ck_assert_msg(rc == 0 && !has(out, "OCSP"), "corral -t: exit %d: %s", rc, out);
    start("c", 1, T->port, certs, NULL, 0);

    static const struct {
        const char *sni;
        const char *crt; /* NULL: no response expected */
    } cases[] = {{"edge.test", "edge.crt"},
                 {NULL, "edge.crt"},
                 {"api.example.test", "api.crt"},
                 {"x.wild.example.test", NULL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *sni = cases[i].sni;
        out = sc(T->port, "-status", sni ? "-servername" : "-noservername", sni, NULL);
        char *what = h_strf(T, "SNI %s", sni ? sni : "(none)");
        ck_assert_msg(has(out, "New, TLSv1.3"), "%s: no handshake: %s", what, out);
        if (cases[i].crt == NULL) {
            ck_assert_msg(has(out, "OCSP response: no response sent"),
                          "%s: a response was stapled for a certificate without one: %s", what,
                          out);
            continue;
        }
        char *crt = strcmp(cases[i].crt, "edge.crt") == 0 ? shared("edge.crt") : fix("api.crt");
        ck_assert_msg(has(out, "OCSP Response Status: successful") && has(out, "Cert Status: good"),
                      "%s: no good OCSP response stapled: %s", what, out);
        ck_assert_msg(has(out, h_strf(T, "Serial Number: %s\n", serial_of(crt))),
                      "%s: the stapled response is not about %s: %s", what, cases[i].crt, out);
    }
    out = sc(T->port, "-servername", "edge.test", NULL, NULL);
    ck_assert_msg(!has(out, "OCSP"), "stapled without status_request: %s", out);
}
END_TEST

/* A stale response (nextUpdate passed) loads with a warning and is not
 * stapled. */
START_TEST(ocsp_stale_not_stapled)
{
    fixtures();
    char *stale = fix("edge-stale.ocsp");
    char *certs = cert_entry(shared("edge.crt"), shared("edge.key"), stale);
    char *out;
    int rc = check_config(write_config("c", 1, T->port, certs, NULL, 0), &out);
    const char *warn[] = {"warning", stale, "stale", NULL};
    ck_assert_msg(rc == 0 && line_has(out, warn),
                  "corral -t with a stale OCSP response: exit %d (want 0 and a warning naming "
                  "%s): %s",
                  rc, stale, out);
    start("c", 1, T->port, certs, NULL, 0);
    for (int i = 0; i < 2; i++) {
        out = sc(T->port, "-status", "-servername", "edge.test", NULL);
        ck_assert_msg(has(out, "New, TLSv1.3"), "no handshake: %s", out);
        ck_assert_msg(has(out, "OCSP response: no response sent"),
                      "a stale response was stapled: %s", out);
    }
    const char *logged[] = {stale, "stale", NULL};
    ck_assert_msg(h_wait_file_line(log_of("c"), logged, 2000),
                  "the error log does not say the response is stale: %s",
                  h_file_tail(T, log_of("c"), 1500));
}
END_TEST

/* A response about another certificate, or not a response at all, makes
 * `corral -t` fail naming the file. */
START_TEST(ocsp_bad_response_refused)
{
    fixtures();
    char *garbage = h_path(T, "garbage.ocsp");
    ck_assert_int_eq(h_write_file(garbage, "this is not DER\n"), 0);
    const char *bad[] = {fix("api.ocsp"), garbage};
    for (size_t i = 0; i < 2; i++) {
        char *certs = cert_entry(shared("edge.crt"), shared("edge.key"), bad[i]);
        char *out;
        int rc = check_config(write_config(h_strf(T, "c%zu", i), 1, T->port, certs, NULL, 0), &out);
        const char *need[] = {"error", bad[i], NULL};
        ck_assert_msg(rc == 1 && line_has(out, need),
                      "corral -t with OCSP response %s for edge.crt: exit %d (want 1 and an "
                      "error naming it): %s",
                      bad[i], rc, out);
    }
}
END_TEST

/* ------------------------------------------------------------ handshakes */

/* A client that sends nothing is dropped after client_hello_timeout, one
 * that sent half a ClientHello after handshake_timeout, both counted; one
 * that completed its handshake is not. */
START_TEST(handshake_timeout)
{
    int admin = h_free_port();
    start("c", 1, T->port, edge_entry(),
          "      handshake_timeout: 1s\n      client_hello_timeout: 1s\n", admin);

    int fd = h_connect(T->port, 1000);
    ck_assert_msg(fd >= 0, "cannot connect: %s", strerror(errno));
    long long ms = wait_closed(fd, 3000);
    close(fd);
    ck_assert_msg(ms >= 0, "a silent client is still connected after 3 s (client_hello_timeout "
                           "1s)");
    ck_assert_msg(ms >= 500 && ms <= 1500,
                  "a silent client was dropped after %lld ms, expected about 1000", ms);

    /* a TLS record header announcing 512 bytes, then a few of them */
    static const unsigned char half[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc,
                                         0x03, 0x03, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a};
    fd = h_connect(T->port, 1000);
    ck_assert(fd >= 0);
    ck_assert(write(fd, half, sizeof(half)) == (ssize_t)sizeof(half));
    ms = wait_closed(fd, 3000);
    close(fd);
    ck_assert_msg(ms >= 0, "a client stuck in its ClientHello is still connected after 3 s");
    ck_assert_msg(ms >= 500 && ms <= 1500,
                  "a half ClientHello was dropped after %lld ms, expected about 1000", ms);
    long v = wait_total(admin, "timeout", 2, 2000);
    ck_assert_msg(v == 2, "/stats timeout failures: %ld, expected 2: %s", v, stats(admin));

    /* a complete handshake, then silence for longer than the timeout */
    char *argv[] = {"openssl",  "s_client", "-connect", h_strf(T, "127.0.0.1:%d", T->port),
                    "-ign_eof", NULL};
    pid_t pid = h_spawn(T, argv, h_path(T, "held.out"), h_path(T, "held.err"));
    ck_assert(pid > 0);
    ck_assert_msg(wait_total(admin, "handshakes_full", 1, 3000) == 1,
                  "the handshake did not "
                  "complete: %s",
                  stats(admin));
    h_sleep_ms(1500); /* past the 1 s handshake_timeout */
    char *s = stats(admin);
    ck_assert_msg(h_pid_alive(pid) && stat_of(s, -1, "conns_open") == 1 &&
                      stat_of(s, -1, "timeout") == 2,
                  "a connection past its handshake was dropped at handshake_timeout: %s", s);
    h_signal(pid, SIGKILL);
    h_wait_exit(pid, 2000, NULL);
}
END_TEST

/* Starts corral for the failure counting tests and returns /stats once
 * h_corral_start's probe (a connection too) has been counted. */
static char *start_counting(int admin)
{
    start("c", 1, T->port, edge_entry(), "      handshake_timeout: 3s\n", admin);
    char *s = NULL;
    long long end = h_now_ms() + 2000;
    do {
        if (s != NULL)
            h_sleep_ms(20);
        s = stats(admin);
    } while ((stat_of(s, -1, "conns_accepted") < 1 || stat_of(s, -1, "handshakes_active") != 0 ||
              stat_of(s, -1, "conns_open") != 0) &&
             h_now_ms() < end);
    return s;
}

/* Expects, since the /stats document s0, want[i] more failures of class
 * FAILURES[i] and no other (waiting up to 2 s for them to be counted). */
static void expect_failures(int admin, const char *s0, const long want[NFAILURES])
{
    long total = 0;
    for (size_t i = 0; i < NFAILURES; i++)
        total += want[i];
    long want_failed = stat_of(s0, -1, "handshakes_failed") + total;
    char *s = NULL;
    long long end = h_now_ms() + 2000;
    do {
        if (s != NULL)
            h_sleep_ms(20);
        s = stats(admin);
    } while (stat_of(s, -1, "handshakes_failed") < want_failed && h_now_ms() < end);
    bool ok = stat_of(s, -1, "handshakes_failed") == want_failed;
    char *report = h_strf(T, "%s", "");
    for (size_t i = 0; i < NFAILURES; i++) {
        long d = stat_of(s, -1, FAILURES[i]) - stat_of(s0, -1, FAILURES[i]);
        ok = ok && d == want[i];
        if (d != 0 || want[i] != 0)
            report = h_strf(T, "%s %s +%ld (want +%ld);", report, FAILURES[i], d, want[i]);
    }
    ck_assert_msg(ok,
                  "handshake failures counted as:%s handshakes_failed +%ld (want +%ld) | "
                  "before: %.700s | after: %.700s",
                  report,
                  stat_of(s, -1, "handshakes_failed") - stat_of(s0, -1, "handshakes_failed"), total,
                  s0, s);
}

/* A client that leaves before or in the middle of its ClientHello counts
 * as client_closed. */
START_TEST(failures_client_closed)
{
    int admin = h_free_port();
    char *s0 = start_counting(admin);
    int fd = h_connect(T->port, 1000); /* connects and leaves */
    ck_assert(fd >= 0);
    close(fd);
    static const unsigned char half[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00,
                                         0x01, 0xfc, 0x03, 0x03, 0x5a, 0x5a, 0x5a};
    fd = h_connect(T->port, 1000); /* leaves in the middle of its ClientHello */
    ck_assert(fd >= 0 && write(fd, half, sizeof(half)) == (ssize_t)sizeof(half));
    h_sleep_ms(100);
    close(fd);
    long want[NFAILURES] = {0};
    want[F_CLOSED] = 2;
    expect_failures(admin, s0, want);
}
END_TEST

/* Plain HTTP and other bytes that are not TLS count as not_tls (and the
 * connection is closed); a client with no cipher suite in common (TLS 1.2,
 * no forward secrecy) as no_shared_cipher. */
START_TEST(failures_not_tls_and_cipher)
{
    int admin = h_free_port();
    char *s0 = start_counting(admin);
    static const char *const plain[] = {"GET / HTTP/1.1\r\nHost: edge.test\r\n\r\n",
                                        "hello, this is not TLS at all\r\n\r\n"};
    for (size_t i = 0; i < 2; i++) {
        int fd = h_connect(T->port, 1000);
        ck_assert(fd >= 0 && write(fd, plain[i], strlen(plain[i])) == (ssize_t)strlen(plain[i]));
        long long ms = wait_closed(fd, 2000);
        close(fd);
        ck_assert_msg(ms >= 0, "corral kept a connection that sent \"%.14s...\" open", plain[i]);
    }
    int rc;
    const char *nofs[] = {"-tls1_2", "-cipher", "AES128-SHA", NULL};
    char *out = sclient(T->port, nofs, &rc);
    ck_assert_msg(rc != 0 && !has(out, "New, TLSv1"),
                  "a TLS 1.2 client with only AES128-SHA (no forward secrecy) got in: %s", out);
    long want[NFAILURES] = {0};
    want[F_NOT_TLS] = 2;
    want[F_CIPHER] = 1;
    expect_failures(admin, s0, want);
}
END_TEST

/* max_handshakes caps the handshakes in progress per worker: a client
 * waits while the slot is taken by a stalled one (a handshake from the
 * first byte of its ClientHello). */
START_TEST(max_handshakes_limit)
{
    int admin = h_free_port();
    start("c", 1, T->port, edge_entry(), "      max_handshakes: 1\n      handshake_timeout: 2s\n",
          admin);
    long long t0 = h_now_ms();
    char *out = sc(T->port, NULL, NULL, NULL, NULL);
    long long free_ms = h_now_ms() - t0;
    ck_assert_msg(has(out, "New, TLSv1.3"), "no handshake: %s", out);
    ck_assert_msg(free_ms < 1000, "a handshake took %lld ms with no other client", free_ms);

    static const unsigned char half[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
    int held = h_connect(T->port, 1000);
    ck_assert(held >= 0 && write(held, half, sizeof(half)) == (ssize_t)sizeof(half));
    ck_assert_msg(wait_total(admin, "handshakes_active", 1, 2000) == 1,
                  "the stalled connection is not counted as a handshake in progress: %s",
                  stats(admin));
    t0 = h_now_ms();
    out = sc(T->port, NULL, NULL, NULL, NULL);
    long long waited = h_now_ms() - t0;
    ck_assert_msg(has(out, "New, TLSv1.3"), "the waiting client got no handshake: %s", out);
    ck_assert_msg(waited >= 1200,
                  "with max_handshakes 1 taken by a stalled client, a handshake took only "
                  "%lld ms (the stalled one times out at 2 s)",
                  waited);
    close(held);
    ck_assert_int_eq(wait_total(admin, "timeout", 1, 2000), 1);
}
END_TEST

/* ------------------------------------------------------------ corral -t */

/* A key that does not belong to its certificate is an error. */
START_TEST(check_key_mismatch)
{
    char *crt = shared("edge.crt"), *key = shared("lb.key");
    char *out;
    int rc = check_config(write_config("c", 1, T->port, cert_entry(crt, key, NULL), NULL, 0), &out);
    const char *need[] = {"error", crt, NULL};
    ck_assert_msg(rc == 1 && line_has(out, need),
                  "corral -t, edge.crt with lb.key: exit %d (want 1 and an error naming %s): %s",
                  rc, crt, out);
    const char *need2[] = {"error", key, NULL};
    ck_assert_msg(line_has(out, need2), "the error does not name the key %s: %s", key, out);
}
END_TEST

/* A certificate that cannot be read - missing, or not PEM - is an error. */
START_TEST(check_unreadable_cert)
{
    char *missing = h_path(T, "missing.crt"), *junk = h_path(T, "junk.crt");
    ck_assert_int_eq(h_write_file(junk, "not a certificate\n"), 0);
    const char *bad[] = {missing, junk};
    for (size_t i = 0; i < 2; i++) {
        char *out;
        int rc = check_config(write_config(h_strf(T, "c%zu", i), 1, T->port,
                                           cert_entry(bad[i], shared("edge.key"), NULL), NULL, 0),
                              &out);
        const char *need[] = {"error", bad[i], NULL};
        ck_assert_msg(rc == 1 && line_has(out, need),
                      "corral -t with certificate %s: exit %d (want 1 and an error naming it): %s",
                      bad[i], rc, out);
    }
}
END_TEST

/* A private key every user can read is a warning, not an error. */
START_TEST(check_world_readable_key)
{
    char *text = h_read_file(shared("edge.key"), NULL);
    ck_assert(text != NULL);
    char *open_key = h_path(T, "open.key"), *closed_key = h_path(T, "closed.key");
    ck_assert_int_eq(h_write_file(open_key, text), 0);
    ck_assert_int_eq(h_write_file(closed_key, text), 0);
    free(text);
    ck_assert_int_eq(chmod(open_key, 0644), 0);
    ck_assert_int_eq(chmod(closed_key, 0600), 0);
    char *out;
    int rc = check_config(
        write_config("a", 1, T->port, cert_entry(shared("edge.crt"), open_key, NULL), NULL, 0),
        &out);
    const char *need[] = {"warning", open_key, NULL};
    ck_assert_msg(rc == 0 && line_has(out, need),
                  "corral -t with a 0644 key: exit %d (want 0 and a warning naming it): %s", rc,
                  out);
    rc = check_config(
        write_config("b", 1, T->port, cert_entry(shared("edge.crt"), closed_key, NULL), NULL, 0),
        &out);
    const char *none[] = {closed_key, NULL};
    ck_assert_msg(rc == 0 && !line_has(out, none), "corral -t with a 0600 key: exit %d: %s", rc,
                  out);
}
END_TEST

/* A certificate that expires within 30 days, or has expired, is a
 * warning. */
START_TEST(check_expiry)
{
    fixtures();
    static const struct {
        const char *crt;
        const char *word; /* NULL: no expiry message */
    } cases[] = {{"soon.crt", "expire"}, {"expired.crt", "expired"}, {"api.crt", NULL}};
    for (size_t i = 0; i < 3; i++) {
        char *crt = fix(cases[i].crt);
        char *out;
        int rc = check_config(write_config(h_strf(T, "c%zu", i), 1, T->port,
                                           cert_entry(crt, fix("rsa.key"), NULL), NULL, 0),
                              &out);
        ck_assert_msg(rc == 0, "corral -t with %s: exit %d (want 0): %s", cases[i].crt, rc, out);
        const char *need[] = {"warning", crt, cases[i].word ? cases[i].word : "expir", NULL};
        ck_assert_msg(line_has(out, need) == (cases[i].word != NULL),
                      "corral -t with %s: %s warning about expiry: %s", cases[i].crt,
                      cases[i].word ? "no" : "a", out);
    }
}
END_TEST

/* A chain file missing its intermediate is a warning; the complete one is
 * not. */
START_TEST(check_incomplete_chain)
{
    fixtures();
    static const struct {
        const char *file;
        bool warn;
    } cases[] = {{"chain-partial.pem", true}, {"chain-full.pem", false}};
    for (size_t i = 0; i < 2; i++) {
        char *pem = fix(cases[i].file);
        char *out;
        int rc = check_config(write_config(h_strf(T, "c%zu", i), 1, T->port,
                                           cert_entry(pem, fix("rsa.key"), NULL), NULL, 0),
                              &out);
        ck_assert_msg(rc == 0, "corral -t with %s: exit %d (want 0): %s", cases[i].file, rc, out);
        /* the file name holds "chain": any warning naming it counts */
        const char *need[] = {"warning", pem, NULL};
        ck_assert_msg(line_has(out, need) == cases[i].warn, "corral -t with %s: %s: %s",
                      cases[i].file,
                      cases[i].warn ? "no warning about the incomplete chain"
                                    : "a warning for a complete chain",
                      out);
    }
}
END_TEST

/* ------------------------------------------------------------ main */

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("handshake");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40); /* the first test to need fixtures makes them */
    tcase_add_test(tc, old_versions_refused);
    tcase_add_test(tc, min_version_13);
    tcase_add_test(tc, sni_selects_certificate);
    tcase_add_test(tc, rsa_ecdsa_pair);
    tcase_add_test(tc, alpn_preference);
    tcase_add_test(tc, alpn_end_to_end);
    tcase_add_test(tc, handshake_timeout);
    tcase_add_test(tc, failures_client_closed);
    tcase_add_test(tc, failures_not_tls_and_cipher);
    tcase_add_test(tc, max_handshakes_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("resumption");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, resumption_on_any_worker);
    tcase_add_test(tc, resumption_renews_tls13_tickets);
    tcase_add_test(tc, tickets_per_connection);
    tcase_add_test(tc, ticket_key_rotation);
    tcase_add_test(tc, ticket_key_file_shared_raw);
    tcase_add_test(tc, ticket_key_file_base64);
    tcase_add_test(tc, ticket_key_file_corrupt);
    tcase_add_test(tc, ticket_key_file_reload);
    suite_add_tcase(s, tc);

    tc = tcase_create("ocsp");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, ocsp_fresh_is_stapled);
    tcase_add_test(tc, ocsp_stale_not_stapled);
    tcase_add_test(tc, ocsp_bad_response_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("check");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 40);
    tcase_add_test(tc, check_key_mismatch);
    tcase_add_test(tc, check_unreadable_cert);
    tcase_add_test(tc, check_world_readable_key);
    tcase_add_test(tc, check_expiry);
    tcase_add_test(tc, check_incomplete_chain);
    suite_add_tcase(s, tc);
    return s;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int main(void)
{
    h_init();
    const char *tmp = getenv("TMPDIR");
    snprintf(FIX, sizeof(FIX), "%s/corral-tls-fixtures-XXXXXX",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(FIX) == NULL) {
        fprintf(stderr, "check_tls: mkdtemp %s: %s\n", FIX, strerror(errno));
        return 99;
    }
    SRunner *sr = srunner_create(tls_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (getenv("CORRAL_TEST_KEEP") == NULL)
        nftw(FIX, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "check_tls: CORRAL_TEST_KEEP: fixtures kept in %s\n", FIX);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
