#!/usr/bin/env python3
"""scrape.py - GET /metrics from corral's admin port as a scraper that is
slow to start reading, for check_metrics.c. Python 3 standard library
only (http.client, which checks chunked framing).

  scrape.py PORT VERSION PAUSE_S

Sends GET /metrics over HTTP/VERSION (1.1 or 1.0) to 127.0.0.1:PORT,
waits PAUSE_S seconds before it reads anything, then reads the answer to
its end. One line on stdout:
  complete BYTES framing      the body ended as its framing says
  incomplete BYTES framing    the framing says it was cut short
framing: "chunked" or "close" (delimited by the connection's end).
Exit 0 when it ran, 2 when it could not connect or got no answer.
"""
import http.client
import sys
import time


def main(argv):
    port, version, pause = int(argv[1]), argv[2], float(argv[3])
    http.client.HTTPConnection._http_vsn_str = "HTTP/" + version
    http.client.HTTPConnection._http_vsn = 11 if version == "1.1" else 10
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request("GET", "/metrics")
        time.sleep(pause)
        r = c.getresponse()
    except (OSError, http.client.HTTPException) as e:
        sys.stderr.write("scrape: %s\n" % e)
        return 2
    framing = "chunked" if r.chunked else "close"
    try:
        body = r.read()
        print("complete %d %s" % (len(body), framing))
    except http.client.IncompleteRead as e:
        print("incomplete %d %s" % (len(e.partial), framing))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
