#!/usr/bin/env python3
"""grafana_check.py DASHBOARD METRICS RULES - checks corral's Grafana dashboard.

DASHBOARD is etc/grafana-corral.json, METRICS a scrape of the real binary's
/metrics, RULES a file this writes. The dashboard must be what Grafana's
import takes as is: a schemaVersion, a ${DS_PROMETHEUS} datasource input
that every panel, target and variable uses, panels with a gridPos and
targets. Every metric an expression or variable names must be one the
binary exposes (a family of METRICS, or its _bucket/_sum/_count), and
every expression must be PromQL that `promtool check rules` parses (each
becomes a recording rule, with the dashboard's variables filled in).
Exit 0 when all holds; otherwise each problem on stderr and exit 1."""
import json
import re
import subprocess
import sys


def main():
    dash_path, metrics_path, rules_path = sys.argv[1:4]
    problems = []
    with open(dash_path) as f:
        dash = json.load(f)
    exposed = set()
    with open(metrics_path) as f:
        for line in f:
            if line.startswith("# TYPE "):
                name, kind = line.split()[2:4]
                exposed.add(name)
                if kind == "histogram":
                    exposed.update(name + s for s in ("_bucket", "_sum", "_count"))
    if len(exposed) < 20:
        problems.append("only %d families in %s" % (len(exposed), metrics_path))

    if not isinstance(dash.get("schemaVersion"), int):
        problems.append("no integer schemaVersion")
    for key in ("title", "uid", "panels"):
        if not dash.get(key):
            problems.append("no " + key)
    inputs = [i for i in dash.get("__inputs", []) if i.get("name") == "DS_PROMETHEUS"]
    if not inputs or inputs[0].get("type") != "datasource" or inputs[0].get("pluginId") != "prometheus":
        problems.append("no DS_PROMETHEUS datasource input of plugin prometheus")

    def ds_ok(where, ds):
        if not (isinstance(ds, dict) and ds.get("uid") == "${DS_PROMETHEUS}" and ds.get("type") == "prometheus"):
            problems.append("%s: datasource %r is not ${DS_PROMETHEUS}" % (where, ds))

    exprs = []  # (where, expr)
    names = []  # (where, text) whose metric names are checked
    ids = set()
    for p in dash.get("panels", []):
        where = "panel %r" % p.get("title")
        if p.get("id") in ids:
            problems.append(where + ": duplicate id")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")):
            problems.append(where + ": no gridPos")
        ds_ok(where, p.get("datasource"))
        if not p.get("targets"):
            problems.append(where + ": no targets")
        for t in p.get("targets", []):
            ds_ok(where, t.get("datasource"))
            if not t.get("expr") or not t.get("refId"):
                problems.append(where + ": a target without expr or refId")
                continue
            exprs.append((where, t["expr"]))
            names.append((where, t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        ds_ok("variable " + v.get("name", "?"), v.get("datasource"))
        names.append(("variable " + v.get("name", "?"), v.get("definition", "")))

    for where, text in names:
        found = re.findall(r"\b(corral_[a-z0-9_]+)", text)
        if not found:
            problems.append("%s: %r names no corral metric" % (where, text))
        for m in found:
            if m not in exposed:
                problems.append("%s: %s is not exposed by /metrics" % (where, m))

    # every expr as a recording rule, the variables filled in
    with open(rules_path, "w") as f:
        f.write("groups:\n  - name: dashboard\n    rules:\n")
        for i, (where, e) in enumerate(exprs):
            e = e.replace("$__rate_interval", "1m").replace("$tenant", ".*")
            if "$" in e:
                problems.append("%s: unknown variable in %r" % (where, e))
            f.write("      - record: corral:dashboard:%d\n        expr: %s\n" % (i, json.dumps(e)))
    r = subprocess.run(["promtool", "check", "rules", rules_path], capture_output=True, text=True,
                       timeout=20)
    if r.returncode != 0:
        problems.append("promtool check rules: exit %d: %s%s" % (r.returncode, r.stdout, r.stderr))

    for p in problems:
        print("grafana_check: " + p, file=sys.stderr)
    print("grafana_check: %d expressions, %d problems" % (len(exprs), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
