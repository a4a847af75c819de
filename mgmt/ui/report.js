// Renders a report object into its page: an attack report (the dashboard's
// attack page, and `moat report --html`'s offline file) or a `moat scrub`
// report (offline file only). No API call here: the caller hands the
// object over, fetched from the API or read from the page's embedded
// <script type="application/json" id="report"> block.
"use strict";

const MoatReport = (() => {
  const { el, table, num, time, chart, COLORS } = Moat;

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

  function kv(id, rows) {
    document.getElementById(id).replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
  }

  function drops(byReason) {
    table("drops", ["reason", "packets"], Object.entries(byReason).filter(([, v]) => v > 0).map(([k, v]) => [k, num(v)]));
  }

  // An attack report (GET /api/v1/attacks/{uuid}): everything but the
  // signatures table, which the live page fills from the API.
  function attack(r) {
    document.getElementById("node").textContent = r.attack_uuid;
    kv("summary", [
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
    ]);
    timeline(r);
    table("sources", ["source", "packets"], r.top_sources.map((s) => [s.ip, num(s.packets)]));
    table("fingerprints", ["kind", "fingerprint", "packets"], r.top_fingerprints.map((f) => [f.kind, f.fingerprint, num(f.packets)]));
    table("ports", ["proto", "port", "packets"], r.top_dst_ports.map((p) => [p.proto, p.port, num(p.packets)]));
    drops(r.drops_by_reason);
    table(
      "countermeasures",
      ["at", "action", "syn_auth", "deny_tcp", "deny_udp"],
      r.countermeasures.map((a) => [time(a.at), a.action, a.syn_auth || "", (a.deny_tcp || []).join(" "), (a.deny_udp || []).join(" ")]),
    );
  }

  // The signatures an offline attack report knows of: the fingerprint
  // rules its countermeasures put in force.
  function attackSignatures(r) {
    const rows = [];
    for (const a of r.countermeasures.filter((a) => a.action === "escalate")) {
      for (const rule of (a.deny_tcp || []).concat(a.deny_udp || [])) {
        if (!rows.some((x) => x[2] === rule)) rows.push(["countermeasure", r.service, rule, "in force from " + time(a.at)]);
      }
    }
    table("signatures", ["kind", "service", "signature", "state"], rows);
  }

  // A `moat scrub` report: totals, drops by reason, passed by service,
  // top sources and fingerprints, proposed signatures.
  function scrub(r) {
    document.getElementById("node").textContent = r.input;
    kv("summary", [
      ["input", r.input],
      ["duration", r.duration_secs.toFixed(3) + " s"],
      ["received", num(r.rx_packets, " packets") + " · " + num(r.rx_bytes, "B")],
      ["passed", num(r.passed_packets, " packets")],
      ["dropped", num(r.dropped_packets, " packets")],
      ["replies", num(r.replies, " packets")],
      ["MSS clamped", num(r.mss_clamped, " SYNs")],
    ]);
    drops(r.drops_by_reason);
    table("services", ["service", "passed"], Object.entries(r.passed_by_service).map(([k, v]) => [k, num(v)]));
    table("sources", ["source", "packets"], r.top_sources.map((s) => [s.ip, num(s.packets)]));
    table("fingerprints", ["kind", "fingerprint", "packets"], r.top_fingerprints.map((f) => [f.kind, f.fingerprint, num(f.packets)]));
    table("signatures", ["kind", "fingerprint", "packets"], r.proposed_signatures.map((f) => [f.kind, f.fingerprint, num(f.packets)]));
  }

  // Which report `r` is: "attack", "scrub", or null.
  function kind(r) {
    if (r && typeof r === "object" && typeof r.attack_uuid === "string" && r.timeline) return "attack";
    if (r && typeof r === "object" && typeof r.rx_packets === "number" && r.drops_by_reason && r.passed_by_service) return "scrub";
    return null;
  }

  return { attack, attackSignatures, scrub, kind };
})();
