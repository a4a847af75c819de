// One attack's report: summary, timeline with escalate/relax marks, top-K,
// countermeasures, and the signatures proposed and in force.
"use strict";

const { api, el, table, num, time, chart, COLORS } = Moat;
const id = decodeURIComponent((/(?:^#|&)id=([^&]+)/.exec(location.hash) || [])[1] || "");

// Vertical lines at the countermeasures' times (red: escalate, green: relax).
function marks(actions) {
  return {
    hooks: {
      draw: [
        (u) => {
          const ctx = u.ctx;
          for (const a of actions) {
            const x = Math.round(u.valToPos(a.at, "x", true));
            ctx.save();
            ctx.strokeStyle = a.action === "escalate" ? "#dc2626" : "#16a34a";
            ctx.lineWidth = 2;
            ctx.setLineDash([6, 4]);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            ctx.fillStyle = ctx.strokeStyle;
            ctx.fillText(a.action, x + 4, u.bbox.top + 12);
            ctx.restore();
          }
        },
      ],
    },
  };
}

function timeline(r) {
  const pts = r.timeline.points;
  const t = pts.map((p) => p.t);
  const box = document.getElementById("timeline");
  box.replaceChildren();
  const mk = (title, keys) => {
    const d = el("div", { class: "timeline" });
    box.append(d);
    const p = chart(d, title, keys.map((k, i) => ({ label: k, stroke: COLORS[i] })), { plugins: [marks(r.countermeasures)] });
    p.setData([t, ...keys.map((k) => pts.map((x) => x[k]))]);
    return p;
  };
  window.moatCharts = [mk("Packets/s", ["pps", "drop_pps", "syn_pps", "flows_ps"]), mk("Per protocol, packets/s", ["tcp_pps", "udp_pps", "icmp_pps", "other_pps"]), mk("Bits/s", ["bps"])];
}

// Proposed signatures of this attack (with Activate / Remove), the
// escalations in force, and the node's own fingerprint rules.
async function signatures(service) {
  const { data: s } = await api("../api/v1/signatures");
  const own = new Set(s.rules.deny_tcp.concat(s.rules.deny_udp));
  const button = (rule) => {
    const on = own.has(rule);
    const b = el("button", { type: "button", class: on ? "remove" : "activate", "data-rule": rule }, on ? "Remove" : "Activate");
    b.addEventListener("click", () => toggle(rule, service).catch((e) => Moat.status(String(e))));
    return b;
  };
  const rows = [];
  for (const p of s.proposed.filter((p) => p.attack_uuid === id)) {
    for (const rule of p.rules) rows.push(["proposed", p.service, rule, own.has(rule) ? "activated (node rule)" : "not in force", button(rule)]);
  }
  for (const a of s.active) {
    for (const rule of a.deny_tcp.concat(a.deny_udp)) rows.push(["escalation", a.service, rule, "in force", ""]);
    if (a.syn_auth) rows.push(["escalation", a.service, "syn_auth = " + a.syn_auth, "in force", ""]);
  }
  for (const rule of own) {
    if (!rows.some((x) => x[2] === rule)) rows.push(["node rule", "all", rule, "in force", button(rule)]);
  }
  table("signatures", ["kind", "service", "signature", "state", ""], rows);
}

// Activates a signature (adds it to the node's fingerprint deny rules) or
// removes it, through GET and PUT /api/v1/rules with If-Match. A rule the
// API refuses as TCP is a UDP one.
async function toggle(rule, service) {
  const { data: rules, etag } = await api("../api/v1/rules");
  const fp = rules.fingerprints;
  const put = (r) =>
    api("../api/v1/rules", { method: "PUT", headers: { "Content-Type": "application/json", "If-Match": etag }, body: JSON.stringify(r) });
  if (fp.deny_tcp.includes(rule) || fp.deny_udp.includes(rule)) {
    fp.deny_tcp = fp.deny_tcp.filter((r) => r !== rule);
    fp.deny_udp = fp.deny_udp.filter((r) => r !== rule);
    await put(rules);
  } else {
    try {
      await put(Object.assign({}, rules, { fingerprints: { deny_tcp: fp.deny_tcp.concat([rule]), deny_udp: fp.deny_udp } }));
    } catch (e) {
      await put(Object.assign({}, rules, { fingerprints: { deny_tcp: fp.deny_tcp, deny_udp: fp.deny_udp.concat([rule]) } }));
    }
  }
  await signatures(service);
}

async function load() {
  if (!id) throw new Error("no attack id in the address (attack.html#id=UUID)");
  const { data: r } = await api("../api/v1/attacks/" + encodeURIComponent(id));
  document.getElementById("node").textContent = r.attack_uuid;
  const kv = [
    ["service", r.service],
    ["state", r.state],
    ["types", r.types.join(", ")],
    ["severity", r.attack_severity],
    ["triggers", r.triggers.join(", ")],
    ["start", time(r.start)],
    ["end", time(r.end)],
    ["duration", r.duration_secs + " s"],
    ["peak", num(r.peak_pps, "pps") + " · " + num(r.peak_bps, "bps")],
    ["total", num(r.total_packets, " packets") + " · " + num(r.total_bytes, "B")],
  ];
  const sum = document.getElementById("summary");
  sum.replaceChildren(...kv.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
  timeline(r);
  table("sources", ["source", "packets"], r.top_sources.map((s) => [s.ip, num(s.packets)]));
  table("fingerprints", ["kind", "fingerprint", "packets"], r.top_fingerprints.map((f) => [f.kind, f.fingerprint, num(f.packets)]));
  table("ports", ["proto", "port", "packets"], r.top_dst_ports.map((p) => [p.proto, p.port, num(p.packets)]));
  table("drops", ["reason", "packets"], Object.entries(r.drops_by_reason).filter(([, v]) => v > 0).map(([k, v]) => [k, num(v)]));
  table(
    "countermeasures",
    ["at", "action", "syn_auth", "deny_tcp", "deny_udp"],
    r.countermeasures.map((a) => [time(a.at), a.action, a.syn_auth || "", (a.deny_tcp || []).join(" "), (a.deny_udp || []).join(" ")]),
  );
  await signatures(r.service);
  return r;
}

Moat.guard(async () => {
  const r = await load();
  // An attack under way: its report and signatures change; refresh until it ends.
  if (r.end == null) {
    const every = setInterval(async () => {
      const now = await load().catch((e) => Moat.status(String(e)));
      if (now && now.end != null) clearInterval(every);
    }, 5000);
  }
});
