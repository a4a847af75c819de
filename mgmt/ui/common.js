// Shared by the dashboard's pages: the token, API calls, small DOM helpers.
"use strict";

const Moat = (() => {
  const KEY = "moat.token";

  // The token from "#token=..." (then removed from the address bar), else
  // from sessionStorage.
  function token() {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
      const rest = location.hash
        .replace(/(^#|&)token=[^&]+/, "$1")
        .replace(/^#&/, "#")
        .replace(/&$/, "")
        .replace(/^#$/, "");
      history.replaceState(null, "", location.pathname + location.search + rest);
    }
    return sessionStorage.getItem(KEY);
  }

  class Unauthorized extends Error {}

  async function api(path, opts = {}) {
    const headers = Object.assign({ Authorization: "Bearer " + token() }, opts.headers || {});
    const r = await fetch(path, Object.assign({}, opts, { headers, cache: "no-store" }));
    if (r.status === 401) throw new Unauthorized("401");
    const body = r.headers.get("content-type") || "";
    const data = body.includes("json") ? await r.json() : await r.text();
    if (!r.ok && r.status !== 503) throw new Error(path + ": " + r.status + " " + (data.detail || data.title || ""));
    return { data, etag: r.headers.get("etag"), status: r.status };
  }

  // Shows the login form (and hides the data) when there is no token or
  // the API refused it; `start` runs once a token is in place.
  function guard(start) {
    const form = document.getElementById("login");
    const main = document.getElementById("main");
    const show = (msg) => {
      main.hidden = true;
      form.hidden = false;
      document.getElementById("login-msg").textContent = msg || "";
    };
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, document.getElementById("login-token").value.trim());
      location.reload();
    });
    document.getElementById("logout")?.addEventListener("click", () => {
      sessionStorage.removeItem(KEY);
      location.reload();
    });
    // A token pasted into the address bar of an open page.
    addEventListener("hashchange", () => /token=/.test(location.hash) && location.reload());
    if (!token()) return show("");
    form.hidden = true;
    main.hidden = false;
    start().catch((e) => {
      if (e instanceof Unauthorized) {
        sessionStorage.removeItem(KEY);
        show("The API refused that token.");
      } else {
        status(String(e));
      }
    });
  }

  function status(msg) {
    const s = document.getElementById("status");
    if (s) s.textContent = msg;
  }

  // el("td", {class: "x"}, "text", child...)
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : String(k ?? ""));
    return e;
  }

  // Replaces the table `id`'s body with `rows` (arrays of cells).
  function table(id, head, rows) {
    const t = document.getElementById(id);
    t.replaceChildren(
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))),
    );
    if (!rows.length) t.tBodies[0].append(el("tr", {}, el("td", { colspan: head.length, class: "none" }, "none")));
  }

  function num(v, unit = "") {
    if (v == null || Number.isNaN(v)) return "–";
    const a = Math.abs(v);
    const [d, s] = a >= 1e9 ? [1e9, "G"] : a >= 1e6 ? [1e6, "M"] : a >= 1e3 ? [1e3, "k"] : [1, ""];
    return (v / d).toFixed(d === 1 && Number.isInteger(v) ? 0 : 1) + " " + s + unit;
  }

  function time(secs) {
    return secs ? new Date(secs * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "–";
  }

  // A uPlot chart in `parent`: `series` [{label, stroke, fill?}].
  function chart(parent, title, series, opts = {}) {
    const w = Math.max(300, parent.clientWidth || 460);
    return new uPlot(
      Object.assign(
        {
          title,
          width: w,
          height: 200,
          series: [{}].concat(series.map((s) => Object.assign({ width: 1.5, value: (u, v) => num(v) }, s))),
          axes: [{}, { size: 60, values: (u, vals) => vals.map((v) => num(v)) }],
          scales: { x: { time: true } },
        },
        opts,
      ),
      [[]].concat(series.map(() => [])),
      parent,
    );
  }

  const COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

  return { token, api, guard, status, el, table, num, time, chart, COLORS, Unauthorized };
})();
