/* rp_svg.c - line charts as SVG text.
 *
 * Everything is computed in one "frame": the plot box in px and the value
 * ranges on both axes; px_x() and px_y() map seconds and values into it
 * (clamped to the box, so that a line never leaves the plot). */
#include "rp_svg.h"

#include <math.h>
#include <string.h>

#define MARGIN_L 66.0
#define MARGIN_R 14.0
#define MARGIN_T 40.0
#define MARGIN_B 34.0
#define CHAR_PX 6.2    /* average width of an 11 px sans-serif character */
#define MS_FLOOR 0.001 /* 1 us: the histogram's resolution */

struct frame {
    double x0, x1, y0, y1; /* plot box: left, right, top, bottom */
    double x_max;          /* seconds at x1 */
    double lo, hi;         /* values at y1 and y0 */
    enum rp_svg_scale scale;
};

/* ------------------------------------------------------------ text */

/* Decodes one UTF-8 character at s (n bytes left, n >= 1); returns its code
 * point and stores its length, or returns -1 (length 1) for a byte that does
 * not start a valid, shortest-form, non-surrogate sequence. */
static long utf8_next(const unsigned char *s, size_t n, size_t *len)
{
    unsigned char c = s[0];
    size_t need;
    long cp, min;

    *len = 1;
    if (c < 0x80)
        return c;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        need = 2, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 3, cp = c & 0x07, min = 0x10000;
    else
        return -1;
    if (n < need + 1)
        return -1;
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *len = need + 1;
    return cp;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0, len, left = strlen(s);

    for (const unsigned char *p = (const unsigned char *)s; left > 0; p += len, left -= len, n++)
        utf8_next(p, left, &len);
    return n;
}

void rp_svg_text_cut(FILE *f, const char *s, size_t max_chars)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t left = strlen((const char *)p), len, keep = SIZE_MAX;

    if (max_chars < SIZE_MAX && utf8_chars((const char *)p) > max_chars)
        keep = max_chars > 0 ? max_chars - 1 : 0;
    for (; left > 0 && keep > 0; p += len, left -= len, keep--) {
        long cp = utf8_next(p, left, &len);

        if (cp < 0 || (cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0xfffe || cp == 0xffff)
            fputs("&#xFFFD;", f);
        else if (cp == '&')
            fputs("&amp;", f);
        else if (cp == '<')
            fputs("&lt;", f);
        else if (cp == '>')
            fputs("&gt;", f);
        else if (cp == '"')
            fputs("&quot;", f);
        else if (cp == '\'')
            fputs("&#39;", f);
        else
            fwrite(p, 1, len, f);
    }
    if (left > 0)
        fputs("&#x2026;", f);
}

void rp_svg_text(FILE *f, const char *s)
{
    rp_svg_text_cut(f, s, SIZE_MAX);
}

/* ------------------------------------------------------------ scales */

static double px_x(const struct frame *g, double s)
{
    double x = g->x0 + s / g->x_max * (g->x1 - g->x0);

    return x < g->x0 ? g->x0 : x > g->x1 ? g->x1 : x;
}

static double px_y(const struct frame *g, double v)
{
    double t;

    if (g->scale == RP_SVG_MS)
        t = v <= g->lo ? 0.0 : log10(v / g->lo) / log10(g->hi / g->lo);
    else
        t = (v - g->lo) / (g->hi - g->lo);
    t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
    return g->y1 - t * (g->y1 - g->y0);
}

/* 1, 2 or 5 times a power of ten, >= x. */
static double nice_step(double x)
{
    double p = pow(10.0, floor(log10(x)));

    if (x <= p)
        return p;
    if (x <= 2 * p)
        return 2 * p;
    if (x <= 5 * p)
        return 5 * p;
    return 10 * p;
}

void rp_svg_range(const double *y, size_t n, double *lo, double *hi)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i]) || y[i] <= 0.0)
            continue;
        if (y[i] < *lo)
            *lo = y[i];
        if (y[i] > *hi)
            *hi = y[i];
    }
}

static void y_range(const struct rp_svg_chart *c, struct frame *g, double *step)
{
    double lo = INFINITY, hi = 0.0;

    if (c->y_hi > 0.0) {
        lo = c->y_lo;
        hi = c->y_hi;
    } else {
        for (size_t k = 0; k < c->nline; k++)
            rp_svg_range(c->lines[k].y, c->npoints, &lo, &hi);
    }
    if (c->scale == RP_SVG_COUNT) {
        *step = hi > 0.0 ? nice_step(hi / 5.0) : 1.0;
        if (*step < 1.0)
            *step = 1.0;
        g->lo = 0.0;
        g->hi = hi > 0.0 ? ceil(hi / *step - 1e-9) * *step : *step;
        return;
    }
    if (!(lo > 0.0) || !isfinite(lo) || !(hi >= lo)) { /* no latency at all */
        lo = 1.0;
        hi = 1000.0;
    }
    if (lo < MS_FLOOR)
        lo = MS_FLOOR;
    g->lo = pow(10.0, floor(log10(lo) + 1e-9));
    g->hi = pow(10.0, ceil(log10(hi > g->lo ? hi : g->lo) - 1e-9));
    if (g->hi <= g->lo * 1.5)
        g->hi = g->lo * 10.0;
    *step = 10.0;
}

/* ------------------------------------------------------------ axes */

static void fmt_count(char *buf, size_t len, double v)
{
    if (v >= 1e6)
        snprintf(buf, len, "%gM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, len, "%gk", v / 1e3);
    else
        snprintf(buf, len, "%g", v);
}

static void fmt_ms(char *buf, size_t len, double v)
{
    if (v >= 1000.0)
        snprintf(buf, len, "%g s", v / 1000.0);
    else
        snprintf(buf, len, "%g ms", v);
}

/* A tick on the y axis at v; with a grid line across the plot when grid,
 * labelled when label. */
static void y_tick(FILE *f, const struct frame *g, double v, int grid, int label)
{
    double y = px_y(g, v);
    char buf[32];

    if (grid)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e6ea\"/>",
                g->x0, y, g->x1, y);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>",
            g->x0 - (grid ? 4 : 2), y, g->x0, y);
    if (!label)
        return;
    if (g->scale == RP_SVG_MS)
        fmt_ms(buf, sizeof(buf), v);
    else
        fmt_count(buf, sizeof(buf), v);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", g->x0 - 6, y + 4,
            buf);
}

static void y_axis(FILE *f, const struct frame *g, double step)
{
    if (g->scale == RP_SVG_COUNT) {
        for (double v = 0.0; v <= g->hi * (1 + 1e-9); v += step)
            y_tick(f, g, v, 1, 1);
        return;
    }
    /* log: a grid line per decade, labelled while there is room; 2 and 5
     * labelled too when the range is short; small ticks for the rest */
    double decades = round(log10(g->hi / g->lo));
    double per_decade = (g->y1 - g->y0) / decades;
    int every = per_decade >= 14.0 ? 1 : 2;
    int i = 0;

    for (double d = g->lo; d <= g->hi * 1.0001; d *= 10.0, i++) {
        y_tick(f, g, d, 1, i % every == 0);
        if (d * 1.5 > g->hi)
            break;
        for (int m = 2; m <= 9; m++) {
            int major = (m == 2 || m == 5) && decades <= 2;

            if (major || per_decade >= 40.0)
                y_tick(f, g, d * m, major, major);
        }
    }
}

static void fmt_time(char *buf, size_t len, double s, double step, double x_max)
{
    long t = lround(s);

    if (x_max <= 180.0 || t == 0)
        snprintf(buf, len, "%lds", t);
    else if (fmod(step, 60.0) == 0.0)
        snprintf(buf, len, "%ldm", t / 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

static void x_axis(FILE *f, const struct frame *g)
{
    static const double steps[] = {1,   2,   5,    10,   15,   30,    60,    120,   300,
                                   600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400};
    double max_ticks = (g->x1 - g->x0) / 64.0, step = steps[0];
    char buf[32];

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        step = steps[i];
        if (g->x_max / step <= max_ticks)
            break;
    }
    if (g->x_max / step > max_ticks) /* longer than days: any round step */
        step = nice_step(g->x_max / max_ticks);
    for (double s = 0.0; s <= g->x_max + 1e-9; s += step) {
        double x = px_x(g, s);

        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>", x,
                g->y1, x, g->y1 + 4);
        fmt_time(buf, sizeof(buf), s, step, g->x_max);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, g->y1 + 16,
                buf);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#555\">%s</text>\n",
            (g->x0 + g->x1) / 2, g->y1 + 30, "time since start");
}

/* ------------------------------------------------------------ phases */

static void phases(FILE *f, const struct frame *g, const struct rp_svg_chart *c)
{
    for (size_t k = 0; k < c->nphase; k++) {
        const struct rp_phase_def *p = &c->phases[k];
        double a, b, room;

        if (!isfinite(p->start_s) || !isfinite(p->end_s) || p->end_s <= p->start_s)
            continue;
        a = px_x(g, p->start_s);
        b = px_x(g, p->end_s);
        fputs("<g><title>phase ", f);
        rp_svg_text(f, p->name);
        fprintf(f, ": %g s to %g s</title>", p->start_s, p->end_s);
        if (k % 2 == 1)
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f2f4f7\"/>",
                    a, g->y0, b - a, g->y1 - g->y0);
        if (p->start_s > 0.0 && a < g->x1)
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#8a94a3\" "
                    "stroke-dasharray=\"4 3\"/>",
                    a, g->y0, a, g->y1);
        room = (b - a - 6.0) / (CHAR_PX * 10.0 / 11.0); /* 10 px font */
        if (room >= 2.0) {
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#4a5361\">", a + 3,
                    g->y0 + 11);
            rp_svg_text_cut(f, p->name, (size_t)room);
            fputs("</text>", f);
        }
        fputs("</g>\n", f);
    }
}

/* ------------------------------------------------------------ lines */

static void line(FILE *f, const struct frame *g, const struct rp_svg_line *l, size_t n)
{
    int open = 0;

    fputs("<path fill=\"none\" stroke=\"", f);
    rp_svg_text(f, l->color);
    fprintf(f, "\" stroke-width=\"1.6\" stroke-linejoin=\"round\" stroke-linecap=\"round\"%s d=\"",
            l->dashed ? " stroke-dasharray=\"5 3\"" : "");
    for (size_t i = 0; i < n; i++) {
        double v = l->y[i];

        if (!isfinite(v)) {
            open = 0;
            continue;
        }
        /* a lone point (next one missing) is a zero-length segment: the
         * round cap draws it as a dot */
        fprintf(f, "%c%.1f %.1f", open ? 'L' : 'M', px_x(g, (double)i + 0.5), px_y(g, v));
        if (!open && (i + 1 == n || !isfinite(l->y[i + 1])))
            fputs("h0", f);
        open = 1;
    }
    fputs("\"/>\n", f);
}

static void legend(FILE *f, const struct frame *g, const struct rp_svg_chart *c)
{
    double x = g->x0;

    for (size_t k = 0; k < c->nline; k++) {
        const struct rp_svg_line *l = &c->lines[k];

        fprintf(
            f, "<line x1=\"%.1f\" y1=\"28\" x2=\"%.1f\" y2=\"28\" stroke-width=\"2.5\"%s stroke=\"",
            x, x + 18, l->dashed ? " stroke-dasharray=\"5 3\"" : "");
        rp_svg_text(f, l->color);
        fprintf(f, "\"/><text x=\"%.1f\" y=\"32\">", x + 23);
        rp_svg_text(f, l->label);
        fputs("</text>\n", f);
        x += 23 + CHAR_PX * (double)utf8_chars(l->label != NULL ? l->label : "") + 16;
    }
}

static int has_values(const struct rp_svg_chart *c)
{
    for (size_t k = 0; k < c->nline; k++)
        for (size_t i = 0; i < c->npoints; i++)
            if (isfinite(c->lines[k].y[i]))
                return 1;
    return 0;
}

void rp_svg_chart(FILE *f, const struct rp_svg_chart *c)
{
    int w = c->width < 200 ? 200 : c->width, h = c->height < 120 ? 120 : c->height;
    struct frame g = {.x0 = MARGIN_L, .x1 = w - MARGIN_R, .y0 = MARGIN_T, .y1 = h - MARGIN_B};
    double step;

    g.scale = c->scale;
    g.x_max = c->x_max > (double)c->npoints ? c->x_max : (double)c->npoints;
    if (!(g.x_max >= 1.0))
        g.x_max = 1.0;
    y_range(c, &g, &step);

    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\" fill=\"#222\" "
            "role=\"img\">\n<title>",
            w, h, w, h);
    rp_svg_text(f, c->title);
    fputs("</title>\n", f);
    fputs("<text x=\"8\" y=\"15\" font-size=\"13\" font-weight=\"bold\">", f);
    rp_svg_text(f, c->title);
    fputs("</text>\n", f);
    legend(f, &g, c);
    phases(f, &g, c);
    y_axis(f, &g, step);
    x_axis(f, &g);
    fprintf(f,
            "<text transform=\"translate(13 %.1f) rotate(-90)\" text-anchor=\"middle\" "
            "fill=\"#555\">",
            (g.y0 + g.y1) / 2);
    rp_svg_text(f, c->y_title);
    fputs("</text>\n", f);
    for (size_t k = 0; k < c->nline; k++)
        line(f, &g, &c->lines[k], c->npoints);
    if (!has_values(c))
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" "
                "fill=\"#8a94a3\">no data</text>\n",
                (g.x0 + g.x1) / 2, (g.y0 + g.y1) / 2);
    fprintf(f, "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\" stroke=\"#333\"/>\n</svg>\n", g.x0,
            g.y0, g.y1, g.x1);
}
