/* rp_svg.h - time-series line charts as inline SVG, for rp_report_html().
 *
 * A chart is a title, a legend, a y axis (linear or log, ticks labelled with
 * their unit), a time axis in seconds, the run's phases as shaded bands with
 * dashed boundaries and their names, and one line per series. A series is an
 * array of values, one per second, drawn at the middle of its second; NAN
 * is "no value" and leaves a gap (a lone value between gaps shows as a dot),
 * so that a second without answers is never drawn as a latency of 0.
 *
 * Output is plain SVG 1.1 with presentation attributes (no CSS, script or
 * external reference), well-formed XML, usable inline in HTML. Write errors
 * are left in the stream's error flag for the caller to check. */
#ifndef RP_SVG_H
#define RP_SVG_H

#include <stddef.h>
#include <stdio.h>

#include "rp_report.h"

struct rp_svg_line {
    const char *label; /* legend text (escaped) */
    const char *color; /* an SVG color such as "#1f77b4" (escaped) */
    int dashed;
    const double *y; /* npoints values; NAN = no point */
};

enum rp_svg_scale {
    RP_SVG_COUNT, /* linear from 0; ticks on whole numbers, 1.5k / 2M labels */
    RP_SVG_MS,    /* log 10; values in ms, ticks "0.1 ms" .. "10 s" */
};

struct rp_svg_chart {
    const char *title;
    const char *y_title; /* written along the y axis */
    enum rp_svg_scale scale;
    double y_lo, y_hi; /* the y range to show; 0, 0 = from the lines */
    int width, height; /* px, at least 200 x 120 (smaller is raised) */
    size_t npoints;    /* values per line; value i is drawn at x = i + 0.5 s */
    double x_max;      /* seconds on the time axis (raised to npoints) */
    size_t nphase;
    const struct rp_phase_def *phases;
    size_t nline;
    const struct rp_svg_line *lines;
};

/* Writes one <svg> element. */
void rp_svg_chart(FILE *f, const struct rp_svg_chart *c);

/* Widens [*lo, *hi] to hold the finite values > 0 of y[0..n) (for a shared
 * RP_SVG_MS range; start with *lo = +INFINITY, *hi = 0). */
void rp_svg_range(const double *y, size_t n, double *lo, double *hi);

/* Writes s (NULL = "") as HTML/XML text: & < > " ' escaped, invalid UTF-8,
 * control characters (other than tab and newline) and U+FFFE/U+FFFF replaced
 * by U+FFFD. Safe inside elements and quoted attributes. */
void rp_svg_text(FILE *f, const char *s);

/* Writes at most max_chars characters of s like rp_svg_text, ending with
 * "..." (U+2026) when cut. */
void rp_svg_text_cut(FILE *f, const char *s, size_t max_chars);

#endif
