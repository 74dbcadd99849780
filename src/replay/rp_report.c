/* rp_report.c - the text table, the CSV timeline and the HTML report of a
 * corral-replay run. The plots themselves are drawn by rp_svg.
 *
 * The text table and the HTML summary table have the same rows, produced by
 * one walk (summary_rows) that hands each (tenant, phase, cell) to a
 * callback: the text writer walks twice, to measure the columns and then to
 * print them. */
#include "rp_report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rp_svg.h"

#define ALL_TENANTS "(all tenants)"

static const double QS[4] = {0.5, 0.9, 0.99, 0.999};

/* ------------------------------------------------------------ common */

static int check_run(FILE *f, const struct rp_run *r)
{
    if (f == NULL || r == NULL || (r->nphase > 0 && r->phases == NULL) ||
        (r->ntenant > 0 && r->tenants == NULL))
        return -EINVAL;
    for (size_t t = 0; t < r->ntenant; t++) {
        const struct rp_series *s = &r->tenants[t];

        if (s->nphase != r->nphase || (s->nsec > 0 && s->sec == NULL) ||
            (s->nphase > 0 && s->phase == NULL))
            return -EINVAL;
    }
    return 0;
}

/* The first write error, if any, as -errno. */
static int finish(FILE *f)
{
    if (fflush(f) == EOF)
        return errno != 0 ? -errno : -EIO;
    return ferror(f) ? -EIO : 0;
}

static const char *str(const char *s)
{
    return s != NULL ? s : "";
}

void rp_cell_add(struct rp_cell *into, const struct rp_cell *c)
{
    into->offered += c->offered;
    into->sent += c->sent;
    into->ok += c->ok;
    into->s429 += c->s429;
    into->s503 += c->s503;
    into->other += c->other;
    into->conn_errors += c->conn_errors;
    into->timeouts += c->timeouts;
    into->gave_up += c->gave_up;
    into->full_hs += c->full_hs;
    into->resumed_hs += c->resumed_hs;
}

/* p50, p90, p99, p99.9 in ms; NAN when the cell has no latency. */
static void cell_ms(const struct rp_cell *c, double ms[4])
{
    uint64_t us[4];

    if (rp_hist_count(c->lat) == 0) {
        for (int i = 0; i < 4; i++)
            ms[i] = NAN;
        return;
    }
    rp_hist_quantiles(c->lat, QS, us, 4);
    for (int i = 0; i < 4; i++)
        ms[i] = (double)us[i] / 1000.0;
}

static size_t max_nsec(const struct rp_run *r)
{
    size_t n = 0;

    for (size_t t = 0; t < r->ntenant; t++)
        if (r->tenants[t].nsec > n)
            n = r->tenants[t].nsec;
    return n;
}

/* Seconds the time axis spans: the timeline, the run and its phases. */
static double run_span(const struct rp_run *r)
{
    double x = (double)max_nsec(r);

    if (isfinite(r->duration_s) && r->duration_s > x)
        x = r->duration_s;
    for (size_t k = 0; k < r->nphase; k++)
        if (isfinite(r->phases[k].end_s) && r->phases[k].end_s > x)
            x = r->phases[k].end_s;
    return x;
}

/* Phase k of every tenant (k == nphase: their totals) summed into *out;
 * out->lat is scratch, holding the merged histograms. */
static void all_tenants(const struct rp_run *r, size_t k, struct rp_cell *out,
                        struct rp_hist *scratch)
{
    memset(out, 0, sizeof(*out));
    rp_hist_reset(scratch);
    for (size_t t = 0; t < r->ntenant; t++) {
        const struct rp_series *s = &r->tenants[t];
        const struct rp_cell *c = k < r->nphase ? &s->phase[k] : &s->total;

        rp_cell_add(out, c);
        rp_hist_merge(scratch, c->lat);
    }
    out->lat = scratch;
}

typedef void (*row_cb)(void *ctx, const char *tenant, const char *phase, const struct rp_cell *c,
                       int first, int total);

/* Every row of the summary: per tenant its phases and its total, then with
 * several tenants the same for all of them together. */
static void summary_rows(const struct rp_run *r, struct rp_hist *scratch, row_cb cb, void *ctx)
{
    struct rp_cell all;

    for (size_t t = 0; t < r->ntenant; t++) {
        const struct rp_series *s = &r->tenants[t];

        for (size_t k = 0; k < r->nphase; k++)
            cb(ctx, str(s->tenant), str(r->phases[k].name), &s->phase[k], k == 0, 0);
        cb(ctx, str(s->tenant), "total", &s->total, r->nphase == 0, 1);
    }
    if (r->ntenant < 2)
        return;
    for (size_t k = 0; k <= r->nphase; k++) {
        all_tenants(r, k, &all, scratch);
        cb(ctx, ALL_TENANTS, k < r->nphase ? str(r->phases[k].name) : "total", &all, k == 0,
           k == r->nphase);
    }
}

static void fmt_started(char *buf, size_t len, time_t t)
{
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

static void fmt_duration(char *buf, size_t len, double s)
{
    if (isfinite(s))
        snprintf(buf, len, "%.1f s", s);
    else
        snprintf(buf, len, "unknown");
}

/* " 0-30 s" after a phase's name (nothing when its times are not finite). */
static void phase_span(FILE *f, const struct rp_phase_def *p, const char *dash)
{
    if (isfinite(p->start_s) && isfinite(p->end_s))
        fprintf(f, " %g%s%g s", p->start_s, dash, p->end_s);
}

/* ------------------------------------------------------------ text */

enum {
    C_TENANT,
    C_PHASE,
    C_OFFERED,
    C_SENT,
    C_OK,
    C_429,
    C_503,
    C_OTHER,
    C_CONN,
    C_TIMEOUT,
    C_GAVE_UP,
    C_P50,
    C_P90,
    C_P99,
    C_P999,
    C_FULL_HS,
    C_RESUMED_HS,
    NCOL
};

static const char *const col_name[NCOL] = {
    "tenant", "phase",  "offered",  "sent",    "2xx",       "429",
    "503",    "other",  "conn err", "timeout", "gave up",   "p50 ms",
    "p90 ms", "p99 ms", "p99.9 ms", "full hs", "resumed hs"};

/* The numeric columns of one row, as text ("-" for no latency). */
static void row_fields(const struct rp_cell *c, char f[NCOL][24])
{
    const uint64_t n[] = {c->offered, c->sent,        c->ok,       c->s429,   c->s503,
                          c->other,   c->conn_errors, c->timeouts, c->gave_up};
    double ms[4];

    for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++) /* C_OFFERED .. C_GAVE_UP */
        snprintf(f[C_OFFERED + i], 24, "%llu", (unsigned long long)n[i]);
    cell_ms(c, ms);
    for (int i = 0; i < 4; i++)
        if (isnan(ms[i]))
            snprintf(f[C_P50 + i], 24, "-");
        else
            snprintf(f[C_P50 + i], 24, "%.2f", ms[i]);
    snprintf(f[C_FULL_HS], 24, "%llu", (unsigned long long)c->full_hs);
    snprintf(f[C_RESUMED_HS], 24, "%llu", (unsigned long long)c->resumed_hs);
}

/* Characters a terminal shows for s: UTF-8 continuation bytes take none. */
static size_t text_width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

/* s with control characters as '?', padded to w on the right. */
static void put_left(FILE *f, const char *s, size_t w)
{
    for (const char *p = s; *p != '\0'; p++)
        fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, f);
    for (size_t n = text_width(s); n < w; n++)
        fputc(' ', f);
}

struct text_ctx {
    FILE *f;
    size_t w[NCOL];
    int print;
};

static void text_line(struct text_ctx *x, const char *const v[NCOL])
{
    for (int i = 0; i < NCOL; i++) {
        size_t n = text_width(v[i]);

        if (!x->print) {
            if (n > x->w[i])
                x->w[i] = n;
            continue;
        }
        if (i > 0)
            fputs("  ", x->f);
        if (i <= C_PHASE) {
            put_left(x->f, v[i], x->w[i]);
            continue;
        }
        for (; n < x->w[i]; n++)
            fputc(' ', x->f);
        fputs(v[i], x->f);
    }
    if (x->print)
        fputc('\n', x->f);
}

static void text_row(void *ctx, const char *tenant, const char *phase, const struct rp_cell *c,
                     int first, int total)
{
    char fields[NCOL][24];
    const char *v[NCOL];

    row_fields(c, fields);
    for (int i = 0; i < NCOL; i++)
        v[i] = fields[i];
    v[C_TENANT] = tenant;
    v[C_PHASE] = phase;
    text_line(ctx, v);
}

int rp_report_text(FILE *f, const struct rp_run *r)
{
    struct text_ctx x = {.f = f};
    struct rp_hist *scratch;
    char started[64], duration[32];
    int rc = check_run(f, r);

    if (rc != 0)
        return rc;
    scratch = rp_hist_new();
    if (scratch == NULL)
        return -ENOMEM;
    fmt_started(started, sizeof(started), r->started);
    fmt_duration(duration, sizeof(duration), r->duration_s);
    fputs("corral-replay report: ", f);
    put_left(f, str(r->title), 0);
    fputs("\nsource:   ", f);
    put_left(f, str(r->source), 0);
    fputs("\ntarget:   ", f);
    put_left(f, str(r->target), 0);
    fprintf(f, "\nstarted:  %s\nduration: %s\nphases:  ", started, duration);
    for (size_t k = 0; k < r->nphase; k++) {
        fputs(k > 0 ? ", " : " ", f);
        put_left(f, str(r->phases[k].name), 0);
        phase_span(f, &r->phases[k], "-");
    }
    fputs(r->nphase == 0 ? " none\n\n" : "\n\n", f);
    if (r->ntenant == 0) {
        fputs("no tenants\n", f);
    } else {
        text_line(&x, col_name); /* measure */
        summary_rows(r, scratch, text_row, &x);
        x.print = 1;
        text_line(&x, col_name);
        summary_rows(r, scratch, text_row, &x);
        fputs("\nlatency: ms from the intended send time, answered requests only "
              "(- when none)\n",
              f);
    }
    rp_hist_free(scratch);
    return finish(f);
}

/* ------------------------------------------------------------ CSV */

static void csv_field(FILE *f, const char *s)
{
    size_t n = strlen(s);

    if (strpbrk(s, ",\"\r\n") == NULL && (n == 0 || (s[0] != ' ' && s[n - 1] != ' '))) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s != '\0'; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_row(FILE *f, size_t second, const char *tenant, const struct rp_cell *c)
{
    double ms[4];

    fprintf(f, "%zu,", second);
    csv_field(f, tenant);
    fprintf(f, ",%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu",
            (unsigned long long)c->offered, (unsigned long long)c->sent, (unsigned long long)c->ok,
            (unsigned long long)c->s429, (unsigned long long)c->s503, (unsigned long long)c->other,
            (unsigned long long)c->conn_errors, (unsigned long long)c->timeouts,
            (unsigned long long)c->gave_up, (unsigned long long)c->full_hs,
            (unsigned long long)c->resumed_hs);
    cell_ms(c, ms);
    for (int i = 0; i < 4; i++)
        if (isnan(ms[i]))
            fputc(',', f);
        else
            fprintf(f, ",%.3f", ms[i]);
    fputc('\n', f);
}

int rp_report_csv(FILE *f, const struct rp_run *r)
{
    size_t n;
    int rc = check_run(f, r);

    if (rc != 0)
        return rc;
    fputs("second,tenant,offered,sent,ok,s429,s503,other,conn_errors,timeouts,gave_up,full_hs,"
          "resumed_hs,p50_ms,p90_ms,p99_ms,p999_ms\n",
          f);
    n = max_nsec(r);
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < r->ntenant; t++)
            if (i < r->tenants[t].nsec)
                csv_row(f, i, str(r->tenants[t].tenant), &r->tenants[t].sec[i]);
    return finish(f);
}

/* ------------------------------------------------------------ HTML */

static const char CSS[] =
    "body{font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",sans-serif;color:#222;"
    "max-width:1180px;margin:20px auto;padding:0 14px}\n"
    "h1{font-size:22px;margin:0 0 10px}\n"
    "h2{font-size:17px;margin:30px 0 10px;padding-bottom:3px;border-bottom:1px solid #dde1e6}\n"
    "h3{font-size:15px;margin:22px 0 2px}\n"
    "dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:0}\n"
    "dt{color:#5f6b7a}dd{margin:0}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;font-size:12.5px}\n"
    "th,td{padding:2px 6px;text-align:right;white-space:nowrap;border-bottom:1px solid #e8eaee}\n"
    "th{background:#f4f6f8;font-weight:600;white-space:normal;vertical-align:bottom}\n"
    "td{font-variant-numeric:tabular-nums}\n"
    ".l{text-align:left}\n"
    "tr.total td{font-weight:600;border-bottom:2px solid #c9ced6}\n"
    "td.t{font-weight:600;vertical-align:top;border-bottom:2px solid #c9ced6;"
    "white-space:normal;overflow-wrap:anywhere;max-width:14em}\n"
    ".stats{color:#4a5361;margin:0 0 6px}\n"
    ".pair{display:flex;flex-wrap:wrap;gap:6px 10px}\n"
    "svg{max-width:100%;height:auto}\n"
    ".note{color:#5f6b7a;font-size:12px}\n";

struct html_ctx {
    FILE *f;
    size_t span; /* rows per tenant */
};

static void html_row(void *ctx, const char *tenant, const char *phase, const struct rp_cell *c,
                     int first, int total)
{
    struct html_ctx *x = ctx;
    char fields[NCOL][24];

    row_fields(c, fields);
    fputs(total ? "<tr class=\"total\">" : "<tr>", x->f);
    if (first) {
        fprintf(x->f, "<td class=\"l t\" rowspan=\"%zu\">", x->span);
        rp_svg_text(x->f, tenant);
        fputs("</td>", x->f);
    }
    fputs("<td class=\"l\">", x->f);
    rp_svg_text(x->f, phase);
    fputs("</td>", x->f);
    for (int i = C_OFFERED; i < NCOL; i++)
        fprintf(x->f, "<td>%s</td>", fields[i]);
    fputs("</tr>\n", x->f);
}

static void html_summary(FILE *f, const struct rp_run *r, struct rp_hist *scratch)
{
    struct html_ctx x = {.f = f, .span = r->nphase + 1};

    fputs("<h2>Summary</h2>\n<div class=\"scroll\"><table>\n<thead><tr>", f);
    for (int i = 0; i < NCOL; i++)
        fprintf(f, "<th%s>%s</th>", i <= C_PHASE ? " class=\"l\"" : "", col_name[i]);
    fputs("</tr></thead>\n<tbody>\n", f);
    summary_rows(r, scratch, html_row, &x);
    fputs("</tbody></table></div>\n<p class=\"note\">Latency in ms from the intended send time "
          "(so that queueing in the client counts), answered requests only; - when none. "
          "Shed = 429 + 503.</p>\n",
          f);
}

static void html_head(FILE *f, const struct rp_run *r)
{
    char started[64], duration[32];

    fmt_started(started, sizeof(started), r->started);
    fmt_duration(duration, sizeof(duration), r->duration_s);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
          "<title>corral-replay: ",
          f);
    rp_svg_text(f, r->title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>corral-replay: ", CSS);
    rp_svg_text(f, r->title);
    fputs("</h1>\n<dl>\n<dt>source</dt><dd>", f);
    rp_svg_text(f, r->source);
    fputs("</dd>\n<dt>target</dt><dd>", f);
    rp_svg_text(f, r->target);
    fprintf(f, "</dd>\n<dt>started</dt><dd>%s</dd>\n<dt>duration</dt><dd>%s</dd>\n", started,
            duration);
    fputs("<dt>phases</dt><dd>", f);
    for (size_t k = 0; k < r->nphase; k++) {
        fputs(k > 0 ? ", " : "", f);
        rp_svg_text(f, r->phases[k].name);
        phase_span(f, &r->phases[k], "&#8211;");
    }
    fprintf(f, "%s</dd>\n<dt>tenants</dt><dd>%zu</dd>\n</dl>\n", r->nphase == 0 ? "none" : "",
            r->ntenant);
}

/* One line of totals: what was sent and what became of it. */
static void html_stats(FILE *f, const struct rp_cell *c)
{
    double sent = c->sent > 0 ? (double)c->sent : 1.0, ms[4];
    uint64_t shed = c->s429 + c->s503, err = c->other + c->conn_errors + c->timeouts;

    cell_ms(c, ms);
    fprintf(f,
            "<p class=\"stats\">offered %llu &#183; sent %llu &#183; 2xx %llu (%.1f%%) &#183; "
            "shed %llu (%.1f%%) &#183; errors %llu (%.1f%%) &#183; gave up %llu",
            (unsigned long long)c->offered, (unsigned long long)c->sent, (unsigned long long)c->ok,
            100.0 * (double)c->ok / sent, (unsigned long long)shed, 100.0 * (double)shed / sent,
            (unsigned long long)err, 100.0 * (double)err / sent, (unsigned long long)c->gave_up);
    if (!isnan(ms[0]))
        fprintf(f, " &#183; p50 %.2f ms &#183; p99 %.2f ms", ms[0], ms[2]);
    fputs("</p>\n", f);
}

struct plot {
    FILE *f;
    const struct rp_run *r;
    size_t n;              /* points per line */
    double *y;             /* 8 * n: 4 traffic lines, then 4 latency lines */
    double lat_lo, lat_hi; /* the shared latency range, ms */
    struct rp_hist *scratch;
};

/* Adds the traffic of s to the 4 lines at p->y (offered, 2xx, shed, errors). */
static void add_traffic(struct plot *p, const struct rp_series *s)
{
    for (size_t i = 0; i < s->nsec && i < p->n; i++) {
        const struct rp_cell *c = &s->sec[i];

        p->y[i] += (double)c->offered;
        p->y[p->n + i] += (double)c->ok;
        p->y[2 * p->n + i] += (double)(c->s429 + c->s503);
        p->y[3 * p->n + i] += (double)(c->other + c->conn_errors + c->timeouts);
    }
}

/* Fills the 4 latency lines (p50, p90, p99, p99.9) with s's seconds, or
 * with every tenant's merged when s is NULL; NAN where nothing answered. */
static void fill_latency(struct plot *p, const struct rp_series *s)
{
    double *y = p->y + 4 * p->n, ms[4];
    struct rp_cell all = {.lat = p->scratch};

    for (size_t i = 0; i < p->n; i++) {
        const struct rp_cell *c = &all;

        if (s != NULL && i >= s->nsec) {
            ms[0] = ms[1] = ms[2] = ms[3] = NAN;
        } else {
            if (s != NULL) {
                c = &s->sec[i];
            } else {
                rp_hist_reset(p->scratch);
                for (size_t t = 0; t < p->r->ntenant; t++)
                    if (i < p->r->tenants[t].nsec)
                        rp_hist_merge(p->scratch, p->r->tenants[t].sec[i].lat);
            }
            cell_ms(c, ms);
        }
        for (int q = 0; q < 4; q++)
            y[q * p->n + i] = ms[q];
    }
}

static void draw(struct plot *p, const char *title, int latency, int all, int w, int h)
{
    static const char *const traffic_label[4] = {"offered", "served (2xx)", "shed (429+503)",
                                                 "errors"};
    static const char *const traffic_color[4] = {"#7b8794", "#2ca02c", "#ff7f0e", "#d62728"};
    static const char *const lat_label[4] = {"p50", "p90", "p99", "p99.9"};
    static const char *const lat_color[4] = {"#1f77b4", "#17becf", "#ff7f0e", "#d62728"};
    struct rp_svg_line lines[4];
    struct rp_svg_chart c = {.title = title,
                             .width = w,
                             .height = h,
                             .npoints = p->n,
                             .x_max = run_span(p->r),
                             .nphase = p->r->nphase,
                             .phases = p->r->phases,
                             .lines = lines};
    size_t shown[4] = {0, 1, 2, 3}; /* per tenant latency: p50 and p99 only */

    if (latency && !all) {
        shown[1] = 2;
        c.nline = 2;
    } else {
        c.nline = 4;
    }
    for (size_t k = 0; k < c.nline; k++) {
        size_t q = shown[k];

        lines[k].label = latency ? lat_label[q] : traffic_label[q];
        lines[k].color = latency ? lat_color[q] : traffic_color[q];
        lines[k].dashed = !latency && q == 0;
        lines[k].y = p->y + (latency ? 4 + q : q) * p->n;
    }
    c.scale = latency ? RP_SVG_MS : RP_SVG_COUNT;
    c.y_title = latency ? "latency (log)" : "requests per second";
    if (latency) {
        c.y_lo = p->lat_lo;
        c.y_hi = p->lat_hi;
    }
    rp_svg_chart(p->f, &c);
}

/* The latency range of every chart, so that all share one y axis. */
static void latency_range(struct plot *p)
{
    p->lat_lo = INFINITY;
    p->lat_hi = 0.0;
    fill_latency(p, NULL);
    rp_svg_range(p->y + 4 * p->n, 4 * p->n, &p->lat_lo, &p->lat_hi);
    for (size_t t = 0; t < p->r->ntenant; t++) {
        fill_latency(p, &p->r->tenants[t]);
        rp_svg_range(p->y + 4 * p->n, 4 * p->n, &p->lat_lo, &p->lat_hi);
    }
    if (p->lat_hi <= 0.0) /* nothing answered: let the charts pick */
        p->lat_lo = p->lat_hi = 0.0;
}

static void html_charts(struct plot *p)
{
    const struct rp_run *r = p->r;
    char title[160];
    struct rp_cell all;

    fputs("<h2>All tenants</h2>\n", p->f);
    all_tenants(r, r->nphase, &all, p->scratch);
    html_stats(p->f, &all);
    memset(p->y, 0, 4 * p->n * sizeof(double));
    for (size_t t = 0; t < r->ntenant; t++)
        add_traffic(p, &r->tenants[t]);
    fill_latency(p, NULL);
    fputs("<div class=\"pair\">\n", p->f);
    draw(p, "All tenants: requests per second", 0, 1, 1150, 250);
    draw(p, "All tenants: latency percentiles, per second", 1, 1, 1150, 250);
    fputs("</div>\n", p->f);

    html_summary(p->f, r, p->scratch);

    fputs("<h2>Per tenant</h2>\n<p class=\"note\">Request scales are per tenant; latency charts "
          "share one log scale.</p>\n",
          p->f);
    for (size_t t = 0; t < r->ntenant; t++) {
        const struct rp_series *s = &r->tenants[t];

        fputs("<h3>", p->f);
        rp_svg_text(p->f, s->tenant);
        fputs("</h3>\n", p->f);
        html_stats(p->f, &s->total);
        memset(p->y, 0, 4 * p->n * sizeof(double));
        for (size_t i = s->nsec; i < p->n; i++) /* seconds it does not have */
            for (int q = 0; q < 4; q++)
                p->y[q * p->n + i] = NAN;
        add_traffic(p, s);
        fill_latency(p, s);
        fputs("<div class=\"pair\">\n", p->f);
        snprintf(title, sizeof(title), "%s: requests per second", str(s->tenant));
        draw(p, title, 0, 0, 570, 230);
        snprintf(title, sizeof(title), "%s: latency p50 / p99", str(s->tenant));
        draw(p, title, 1, 0, 570, 230);
        fputs("</div>\n", p->f);
    }
}

int rp_report_html(FILE *f, const struct rp_run *r)
{
    struct plot p = {.f = f, .r = r};
    int rc = check_run(f, r);

    if (rc != 0)
        return rc;
    p.n = max_nsec(r);
    p.scratch = rp_hist_new();
    p.y = malloc((p.n > 0 ? p.n : 1) * 8 * sizeof(double));
    if (p.scratch == NULL || p.y == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    html_head(f, r);
    if (r->ntenant == 0) {
        fputs("<p>No tenant in this run: there is nothing to show.</p>\n", f);
    } else {
        latency_range(&p);
        html_charts(&p);
    }
    fputs("</body>\n</html>\n", f);
    rc = finish(f);
out:
    free(p.y);
    rp_hist_free(p.scratch);
    return rc;
}
