// The dashboard: health, workers, ports, live graphs (ring buffers of the
// last 10 minutes, one point a second), attacks, services and rules.
"use strict";

const { api, el, table, num, time, chart, COLORS } = Moat;
const KEEP = 600; // points: 10 minutes at one a second

const graphs = {}; // name -> {plot, data: [[t...], [v...], ...]}
let prev = null; // the previous /stats, for rates of counters
let drops = { reasons: [], plot: null, hist: {} }; // reason -> ring of pps

function ring(a, v) {
  a.push(v);
  if (a.length > KEEP) a.shift();
}

function graph(name, title, series, opts) {
  const box = el("div", { id: "g-" + name });
  document.getElementById("graphs").append(box);
  const plot = chart(box, title, series, opts);
  graphs[name] = { plot, data: plot.data.map(() => []) };
}

function push(name, t, values) {
  const g = graphs[name];
  ring(g.data[0], t);
  values.forEach((v, i) => ring(g.data[i + 1], v));
  g.plot.setData(g.data);
}

function series(labels) {
  return labels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length] }));
}

function setupGraphs() {
  graph("pps", "Packets/s", series(["received", "passed", "dropped", "replied"]));
  graph("bps", "Bits/s", series(["received", "passed"]));
  graph("syn", "SYN/s and new flows/s (all services)", series(["SYN/s", "new flows/s"]));
  graph("proto", "Per protocol, packets/s (all services)", series(["tcp", "udp", "icmp", "other"]));
  // Replies are mostly challenges under a SYN flood (they also count
  // resets, ARP/ND answers and ICMP errors); a correct answer verifies its
  // source and is counted as the drop reason `challenge_answered`.
  graph("chal", "Challenges, packets/s", series(["replies sent", "answered correctly"]));
  const box = el("div", { id: "g-drops" });
  document.getElementById("graphs").append(box);
  drops.box = box;
}

// Stacked drops by reason: series k is the sum of reasons k.. (drawn from
// the largest down, each fill over the previous); rebuilt when a reason
// first shows up.
function pushDrops(t, rates) {
  drops.t = drops.t || [];
  ring(drops.t, t);
  for (const r of Object.keys(rates)) {
    if (!drops.hist[r]) drops.hist[r] = drops.t.slice(0, -1).map(() => 0);
    if (rates[r] > 0 && !drops.reasons.includes(r)) {
      drops.reasons.push(r);
      drops.plot?.destroy();
      drops.plot = null;
    }
  }
  for (const r of Object.keys(drops.hist)) ring(drops.hist[r], rates[r] || 0);
  const rs = drops.reasons;
  const cols = rs.map((_, k) => drops.t.map((_, i) => rs.slice(k).reduce((s, r) => s + drops.hist[r][i], 0)));
  if (!drops.plot) {
    const s = rs.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], fill: COLORS[i % COLORS.length] + "55" }));
    drops.plot = chart(drops.box, "Drops by reason, packets/s (stacked)" + (rs.length ? "" : ": none yet"), s);
  }
  drops.plot.setData([drops.t.slice(), ...cols]);
}

async function health() {
  const { data: h } = await api("../api/v1/health");
  document.getElementById("node").textContent = `${h.node} · v${h.version} · up ${Math.round(h.uptime_secs)} s`;
  const s = document.getElementById("health-status");
  s.textContent = h.status;
  s.className = h.status === "ok" ? "ok" : h.status === "degraded" ? "warn" : "bad";
  table("checks", ["check", "ok", "detail"], h.checks.map((c) => [c.name, c.ok ? "yes" : "NO", c.detail || ""]));
}

// The node in its cluster: its BGP announcement and its bus.
async function cluster() {
  const { data: c } = await api("../api/v1/cluster");
  const b = c.bgp;
  const since = b.since_unix_secs ? new Date(b.since_unix_secs * 1000).toLocaleTimeString() : "";
  const rows = [["BGP announcement", b.state, [since && `since ${since}`, b.reason].filter(Boolean).join(" · ")]];
  if (b.state !== "disabled") {
    rows.push(["BIRD", b.bird_reachable ? "reachable" : "UNREACHABLE", `${b.protocol || ""} · errors ${num(b.bird_errors)}${b.bird_last_error ? " · " + b.bird_last_error : ""}`]);
  }
  const u = c.bus;
  if (u) {
    rows.push(["bus", u.connected ? "connected" : "DISCONNECTED", `${u.name} · ${u.servers.join(", ")}${u.last_error ? " · " + u.last_error : ""}`]);
    rows.push(["verified sources", `out ${num(u.verified_out)} · in ${num(u.verified_in)}`, `dropped ${num(Object.values(u.verified_dropped).reduce((a, v) => a + v, 0))}`]);
    rows.push(["configuration", `revision ${u.config_revision}`, `applied ${num(u.config.applied)} · pending ${num(u.config.pending)} · conflicts ${num(u.config.conflicts)}`]);
  } else {
    rows.push(["bus", "none", "a lone node ([cluster] nats not set)"]);
  }
  table("cluster", ["part", "state", "detail"], rows);
}

async function stats() {
  const { data: s } = await api("../api/v1/stats");
  const t = Date.now() / 1000;
  const r = s.rates;
  push("pps", t, [r.rx_pps, r.passed_pps, r.dropped_pps, r.replies_pps]);
  push("bps", t, [r.rx_bps, r.passed_bps]);
  const sum = (k) => Object.values(s.services).reduce((a, v) => a + (v.rates ? v.rates[k] : 0), 0);
  push("syn", t, [sum("syn_pps"), sum("flows_ps")]);
  push("proto", t, [sum("tcp_pps"), sum("udp_pps"), sum("icmp_pps"), sum("other_pps")]);
  // Per service (the services of the first answer; a service added later
  // shows in the table below).
  const names = graphs.svc ? graphs.svc.names : Object.keys(s.services);
  if (!graphs.svc) {
    graph("svc", "Per service, packets/s", series(names));
    graph("svcbps", "Per service, bits/s", series(names));
    graphs.svc.names = names;
  }
  const svc = (k) => names.map((n) => s.services[n]?.rates?.[k] ?? null);
  push("svc", t, svc("pps"));
  push("svcbps", t, svc("bps"));
  const dt = prev ? Math.max(0.001, s.uptime_secs - prev.uptime_secs) : 1;
  const rates = {};
  for (const [k, v] of Object.entries(s.drops_by_reason)) rates[k] = prev ? Math.max(0, v - prev.drops_by_reason[k]) / dt : 0;
  pushDrops(t, rates);
  push("chal", t, [r.replies_pps, rates.challenge_answered || 0]);
  const wrate = {};
  for (const w of s.per_worker) {
    const p = prev?.per_worker.find((x) => x.worker === w.worker);
    wrate[w.worker] = p ? (w.rx_packets - p.rx_packets) / dt / 1e6 : null;
  }
  prev = s;
  table(
    "workers",
    ["worker", "Mpps in", "received", "passed", "dropped", "replies", "busy polls"],
    s.per_worker.map((w) => [w.worker, wrate[w.worker] == null ? "–" : wrate[w.worker].toFixed(3), num(w.rx_packets), num(w.passed_packets), num(w.dropped_packets), num(w.replies), num(w.busy_polls)]),
  );
  table("ports", ["port", "rx packets", "tx packets", "tx dropped"], Object.entries(s.ports).map(([n, p]) => [n, num(p.rx_packets), num(p.tx_packets), num(p.tx_dropped)]));
  table(
    "service-rates",
    ["service", "pps", "bps", "SYN/s", "new flows/s", "tcp", "udp", "icmp", "dropped pps", "passed (total)"],
    Object.entries(s.services).map(([n, v]) => {
      const f = v.rates || {};
      return [n, num(f.pps), num(f.bps), num(f.syn_pps), num(f.flows_ps), num(f.tcp_pps), num(f.udp_pps), num(f.icmp_pps), num(f.drop_pps), num(v.passed_packets)];
    }),
  );
}

async function attacks() {
  let a;
  try {
    ({ data: a } = await api("../api/v1/attacks"));
  } catch (e) {
    if (e instanceof Moat.Unauthorized) throw e;
    table("attacks", ["attacks"], [["detection is off"]]);
    return;
  }
  const live = new Set(a.active.map((x) => x.attack_uuid));
  table(
    "attacks",
    ["service", "types", "severity", "peak pps", "peak bps", "start", "end", "state"],
    a.reports.map((r) => [
      el("a", { href: "attack.html#id=" + encodeURIComponent(r.attack_uuid), class: "attack" }, r.service),
      r.types.join(", "),
      r.attack_severity,
      num(r.peak_pps),
      num(r.peak_bps),
      time(r.start),
      time(r.end),
      live.has(r.attack_uuid) ? el("span", { class: "bad" }, "under way") : r.state,
    ]),
  );
}

async function config() {
  const [{ data: sv }, { data: rules }] = await Promise.all([api("../api/v1/services"), api("../api/v1/rules")]);
  table(
    "services",
    ["name", "vip", "origin", "allow", "syn_auth", "on_attack"],
    sv.map((s) => [s.name, s.vip, s.origin, s.allow.join(" "), s.syn_auth, JSON.stringify(s.on_attack)]),
  );
  table(
    "rules",
    ["rule", "value"],
    [
      ["acl.allow", rules.acl.allow.join(" ")],
      ["acl.deny", rules.acl.deny.join(" ")],
      ["fingerprints.deny_tcp", rules.fingerprints.deny_tcp.join(" ")],
      ["fingerprints.deny_udp", rules.fingerprints.deny_udp.join(" ")],
      ["global_pps", rules.global_pps],
    ],
  );
}

async function tick() {
  try {
    await Promise.all([stats(), health(), attacks(), cluster()]);
    Moat.status("");
  } catch (e) {
    if (e instanceof Moat.Unauthorized) return location.reload();
    Moat.status(String(e));
  }
}

Moat.guard(async () => {
  setupGraphs();
  await Promise.all([stats(), health(), attacks(), config(), cluster()]);
  setInterval(tick, 1000);
  setInterval(() => config().catch(() => {}), 10000);
});
