// `moat report --html`: the report embedded in the page (no network), shown
// by the same renderer as the dashboard's attack page.
"use strict";

(() => {
  const r = JSON.parse(document.getElementById("report").textContent);
  const kind = MoatReport.kind(r);
  const main = document.getElementById("main");
  if (kind === "attack") {
    MoatReport.attack(r);
    MoatReport.attackSignatures(r);
  } else if (kind === "scrub") {
    MoatReport.scrub(r);
  } else {
    document.getElementById("status").textContent = "not a Moat report";
  }
  main.hidden = false;
  document.body.dataset.rendered = kind || "none";
})();
