#!/usr/bin/env python3
"""`moat report --html`'s files in headless Chromium with no network
(mgmt/tests/report_html.rs writes them).

    report_offline.py ATTACK.json ATTACK.html SCRUB.json SCRUB.html ARTIFACTS_DIR

Each page is opened from file:// with every host name unresolvable; it must
render (no CSP violation, no failed load) and show the figures of its JSON:
- attack: the peak pps and total packets of the summary, the first top
  source, the drops by reason, timeline charts with points;
- scrub: the received, passed and dropped totals, the first top source,
  the drops by reason, the passed-by-service table.
Screenshots (report_attack.png, report_scrub.png) go to ARTIFACTS_DIR.
The first failure exits 1 with the reason.
"""

import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ATTACK_JSON, ATTACK_HTML, SCRUB_JSON, SCRUB_HTML, OUT = sys.argv[1:6]


def until(what, fn, secs=10.0):
    end = time.monotonic() + secs
    last = None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # the page is mid-render: try again
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out after {secs} s waiting for {what} (last error: {last!r})")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def num(v, unit=""):
    """common.js's num(): the figure as the page prints it."""
    if v is None:
        return "–"
    a = abs(v)
    d, s = (1e9, "G") if a >= 1e9 else (1e6, "M") if a >= 1e6 else (1e3, "k") if a >= 1e3 else (1, "")
    places = 0 if d == 1 and float(v).is_integer() else 1
    # JavaScript's toFixed rounds half away from zero on the binary value,
    # as Python's format does for these magnitudes.
    # The page's cells are read as shown: without trailing spaces.
    return f"{v / d:.{places}f} {s}{unit}".strip()


def shot(d, name):
    h = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1400, min(max(h, 900), 6000))
    d.save_screenshot(os.path.join(OUT, name))
    d.set_window_size(1400, 1000)


def problems(d):
    """Console errors: CSP violations, failed loads, script errors."""
    return [e["message"] for e in d.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def summary(d):
    rows = d.find_elements(By.CSS_SELECTOR, "#summary tr")
    return {r.find_element(By.TAG_NAME, "th").text: r.find_element(By.TAG_NAME, "td").text for r in rows}


def cells(d, table):
    return [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in d.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")]


def drops_shown(d, expect):
    want = {k: num(v) for k, v in expect.items() if v > 0}
    got = {r[0]: r[1] for r in cells(d, "drops") if len(r) == 2}
    check(want, f"the JSON has no drops: {expect}")
    check(got == want, f"drops by reason: page {got}, JSON {want}")


def open_page(d, path, kind):
    d.get(pathlib.Path(path).resolve().as_uri())
    until(f"the {kind} report rendered", lambda: d.execute_script("return document.body.dataset.rendered") == kind)
    check(d.find_element(By.ID, "main").is_displayed(), "report section hidden")
    bad = problems(d)
    check(not bad, f"console errors on the {kind} report: {bad}")


def attack(d):
    r = json.load(open(ATTACK_JSON))
    open_page(d, ATTACK_HTML, "attack")
    s = summary(d)
    check(d.find_element(By.ID, "node").text == r["attack_uuid"], "attack uuid not in the header")
    check(s["peak"].startswith(num(r["peak_pps"], "pps")), f"peak: page {s['peak']!r}, JSON {r['peak_pps']}")
    check(s["total"].startswith(num(r["total_packets"], " packets")), f"total: page {s['total']!r}, JSON {r['total_packets']}")
    src = cells(d, "sources")
    check(src and src[0] == [r["top_sources"][0]["ip"], num(r["top_sources"][0]["packets"])],
          f"first top source: page {src[:1]}, JSON {r['top_sources'][:1]}")
    drops_shown(d, r["drops_by_reason"])
    n = d.execute_script("return window.moatCharts && window.moatCharts[0].data[0].length")
    check(n == len(r["timeline"]["points"]) and n >= 2, f"timeline chart has {n} points, JSON {len(r['timeline']['points'])}")
    shot(d, "report_attack.png")


def scrub(d):
    r = json.load(open(SCRUB_JSON))
    open_page(d, SCRUB_HTML, "scrub")
    s = summary(d)
    for key, field in [("received", "rx_packets"), ("passed", "passed_packets"), ("dropped", "dropped_packets")]:
        check(s[key].startswith(num(r[field], " packets")), f"{key}: page {s[key]!r}, JSON {r[field]}")
    src = cells(d, "sources")
    check(src and src[0] == [r["top_sources"][0]["ip"], num(r["top_sources"][0]["packets"])],
          f"first top source: page {src[:1]}, JSON {r['top_sources'][:1]}")
    drops_shown(d, r["drops_by_reason"])
    svc = {row[0]: row[1] for row in cells(d, "services")}
    check(svc == {k: num(v) for k, v in r["passed_by_service"].items()}, f"passed by service: {svc}")
    shot(d, "report_scrub.png")


def main():
    with tempfile.TemporaryDirectory(prefix="moat-report-chromium-") as profile:
        o = webdriver.ChromeOptions()
        for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000",
                  # No network: every host name fails to resolve.
                  "--host-resolver-rules=MAP * ~NOTFOUND",
                  "--user-data-dir=" + profile]:
            o.add_argument(a)
        o.binary_location = shutil.which("chromium")
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        d = webdriver.Chrome(options=o, service=Service(executable_path=shutil.which("chromedriver")))
        try:
            attack(d)
            scrub(d)
        finally:
            d.quit()
    print("report_offline.py: ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"report_offline.py: {e}", file=sys.stderr)
        sys.exit(1)
