// One attack's report from the API: summary, timeline with escalate/relax
// marks, top-K, countermeasures (drawn by report.js, shared with the
// offline file of `moat report --html`), and the signatures proposed and
// in force, with Activate / Remove.
"use strict";

const { api, el, table } = Moat;
const id = decodeURIComponent((/(?:^#|&)id=([^&]+)/.exec(location.hash) || [])[1] || "");

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
  MoatReport.attack(r);
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
