#!/usr/bin/env python3
"""The dashboard in headless Chromium, against a running `moat run` with an
attack phase (mgmt/tests/ui.rs starts it).

    dashboard.py BASE_URL TOKEN ARTIFACTS_DIR

Checks, in order (the first failure exits 1 with the reason):
- without a token: the login form, no data, no CSP violation; the form
  takes the token; a wrong token brings the form back;
- with #token=...: the token leaves the address bar, health and workers
  are shown, the live graphs get points (uPlot's data);
- the attack shows in the page at most 3 s after the API first lists it;
- its report page: timeline charts with points, top sources;
- Activate on a proposed signature puts it in /api/v1/signatures' rules,
  Remove takes it out;
- the API page lists the operations.
Screenshots (login.png, dashboard.png, attack.png, api.png) go to
ARTIFACTS_DIR.
"""

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

BASE, TOKEN, OUT = sys.argv[1], sys.argv[2], sys.argv[3]


def api(path):
    req = urllib.request.Request(BASE + path, headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def until(what, fn, secs=20.0):
    end = time.monotonic() + secs
    last = None
    while time.monotonic() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # the page is mid-update: try again
            last = e
        time.sleep(0.2)
    raise AssertionError(f"timed out after {secs} s waiting for {what} (last error: {last!r})")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def shot(d, name):
    # The whole page: the window as tall as the document.
    h = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1400, min(max(h, 900), 6000))
    d.save_screenshot(os.path.join(OUT, name))
    d.set_window_size(1400, 1000)


def csp_errors(d):
    return [e["message"] for e in d.get_log("browser") if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]


def main():
    # A fresh profile, removed at the end.
    with tempfile.TemporaryDirectory(prefix="moat-ui-chromium-") as profile:
        browse(profile)


def browse(profile):
    o = webdriver.ChromeOptions()
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1400,1000",
              "--user-data-dir=" + profile]:
        o.add_argument(a)
    # Found on PATH (never downloaded: Selenium Manager is not asked).
    o.binary_location = shutil.which("chromium")
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=o, service=Service(executable_path=shutil.which("chromedriver")))
    try:
        run(d)
    finally:
        d.quit()


def run(d):
    t0 = time.monotonic()
    # 1. No token: the login form and nothing else.
    d.get(BASE + "/ui/")
    until("the login form", lambda: d.find_element(By.ID, "login").is_displayed())
    check(not d.find_element(By.ID, "main").is_displayed(), "data section shown without a token")
    check(d.find_element(By.ID, "checks").text == "", "health checks filled in without a token")
    shot(d, "login.png")
    # The login form takes the token.
    d.find_element(By.ID, "login-token").send_keys(TOKEN)
    d.find_element(By.CSS_SELECTOR, "#login button").click()
    until("health checks after the login form", lambda: len(d.find_elements(By.CSS_SELECTOR, "#checks tbody tr")) >= 1)
    check(not d.find_element(By.ID, "login").is_displayed(), "login form still shown")
    # A wrong token: back to the form, with the reason.
    d.execute_script("sessionStorage.setItem('moat.token', 'wrong-token-0123456789abc')")
    d.refresh()
    until("the refusal", lambda: "refused" in d.find_element(By.ID, "login-msg").text)
    check(not d.find_element(By.ID, "main").is_displayed(), "data section shown with a wrong token")
    d.execute_script("sessionStorage.clear()")

    # 2. With the token in the fragment.
    d.get(BASE + "/ui/#token=" + TOKEN)
    until("the token to leave the address bar", lambda: "token" not in d.current_url)
    check(d.execute_script("return sessionStorage.getItem('moat.token')") == TOKEN, "token not in sessionStorage")
    until("health checks", lambda: len(d.find_elements(By.CSS_SELECTOR, "#checks tbody tr")) >= 1)
    until("the workers table", lambda: len(d.find_elements(By.CSS_SELECTOR, "#workers tbody tr")) >= 1)
    # A lone node without [bgp]: the cluster table says so.
    until("the cluster table", lambda: "disabled" in d.find_element(By.ID, "cluster").text
          and "lone node" in d.find_element(By.ID, "cluster").text)
    n = until("5 points in every graph", lambda: min(
        d.execute_script("return [graphs.pps, graphs.bps, graphs.syn, graphs.proto, graphs.chal, graphs.svc, graphs.svcbps].map(g => g.plot.data[0].length)") +
        [d.execute_script("return drops.plot ? drops.plot.data[0].length : 0")]) >= 5 and
        d.execute_script("return graphs.pps.plot.data[1].filter(v => v > 0).length"))
    check(d.execute_script("return graphs.svc.plot.series.map(s => s.label).slice(1)") == ["web"], "no per-service series")
    until("per-service packets/s", lambda: d.execute_script("return graphs.svc.plot.data[1].filter(v => v > 0).length"))
    print(f"graphs: {n} points with received pps > 0", flush=True)

    # 3. The attack: the API lists it, then the page within 3 s.
    active = until("the API to list an attack under way", lambda: api("/api/v1/attacks")["active"], secs=40)
    uuid = active[0]["attack_uuid"]
    seen_api = time.monotonic()
    sel = f"a.attack[href$='{uuid}']"
    until("the attack in the page", lambda: d.find_element(By.CSS_SELECTOR, sel), secs=5)
    lag = time.monotonic() - seen_api
    start = next(r["start"] for r in api("/api/v1/attacks")["reports"] if r["attack_uuid"] == uuid)
    since = time.time() - start
    print(f"attack {uuid}: in the page {lag:.1f} s after the API listed it, {since:.1f} s after its start", flush=True)
    check(lag <= 3.0, f"the attack took {lag:.1f} s to show")
    check(since <= 8.0, f"the attack showed {since:.1f} s after its start")
    check("under way" in d.find_element(By.ID, "attacks").text, "the attack is not marked under way")
    time.sleep(3)  # a few seconds of the attack in the graphs
    check(d.execute_script("return drops.plot.series.length") > 1, "no drop reason in the stacked drops graph")
    # The escalation to challenge-ack: challenges go out.
    check(d.execute_script("return graphs.chal.plot.data[1].filter(v => v > 0).length") > 0, "no challenges in the challenges graph")
    shot(d, "dashboard.png")

    # 4. Its report page.
    # The table is redrawn every second: find the link afresh.
    until("a click on the attack", lambda: d.find_element(By.CSS_SELECTOR, sel).click() or True)
    until("the report page", lambda: "attack.html#id=" + uuid in d.current_url)
    until("timeline charts with 2 points", lambda: d.execute_script("return window.moatCharts && window.moatCharts[0].data[0].length") >= 2)
    srcs = until("top sources", lambda: len(d.find_elements(By.CSS_SELECTOR, "#sources tbody tr td:first-child")) >= 1 and
                 d.find_elements(By.CSS_SELECTOR, "#sources tbody tr td:first-child"))
    check(srcs[0].text.count(".") == 3 or ":" in srcs[0].text, f"top source {srcs[0].text!r} is no address")
    check("escalate" in d.find_element(By.ID, "countermeasures").text, "no escalate countermeasure")

    # 5. Activate a proposed signature, then remove it.
    btn = until("an Activate button", lambda: d.find_element(By.CSS_SELECTOR, "#signatures button.activate"), secs=15)
    rule = btn.get_attribute("data-rule")
    before = api("/api/v1/signatures")["rules"]
    check(rule not in before["deny_tcp"] + before["deny_udp"], f"{rule} already a node rule")
    btn.click()
    until(f"{rule} in /api/v1/signatures' rules",
          lambda: rule in sum(api("/api/v1/signatures")["rules"].values(), []), secs=10)
    until("the Remove button", lambda: d.find_element(By.CSS_SELECTOR, f"#signatures button.remove[data-rule='{rule}']"))
    print(f"activated {rule}", flush=True)
    shot(d, "attack.png")
    d.find_element(By.CSS_SELECTOR, f"#signatures button.remove[data-rule='{rule}']").click()
    until(f"{rule} gone from /api/v1/signatures' rules",
          lambda: rule not in sum(api("/api/v1/signatures")["rules"].values(), []), secs=10)

    # 6. The API page.
    d.get(BASE + "/ui/api.html")
    until("the operations", lambda: "/api/v1/stats" in d.find_element(By.ID, "ops").text)
    check("Stats" in d.find_element(By.ID, "schemas").text, "no Stats schema")
    shot(d, "api.png")

    errs = csp_errors(d)
    check(not errs, f"CSP violations: {errs}")
    print(f"dashboard test passed in {time.monotonic() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
