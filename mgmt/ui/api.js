// The OpenAPI document, rendered: operations and schemas.
"use strict";

const { api, el, table } = Moat;

function type(s) {
  if (!s) return "";
  if (s.$ref) return s.$ref.split("/").pop();
  if (s.type === "array") return type(s.items) + "[]";
  if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).map(type).join(" | ");
  if (s.allOf) return s.allOf.map(type).join(" & ");
  return [].concat(s.type || "object").join(" | ") + (s.format ? " (" + s.format + ")" : "");
}

Moat.guard(async () => {
  const { data: doc } = await api("../api/v1/openapi.json");
  document.getElementById("node").textContent = doc.info.title + " " + doc.info.version;
  const rows = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (!op.responses) continue;
      const body = op.requestBody ? type(Object.values(op.requestBody.content)[0].schema) : "";
      const resp = Object.entries(op.responses).map(([c, r]) => c + (r.content ? " " + type(Object.values(r.content)[0].schema) : "")).join(", ");
      rows.push([el("code", {}, method.toUpperCase()), el("code", {}, path), op.summary || op.description || "", body, resp]);
    }
  }
  table("ops", ["method", "path", "description", "request body", "responses"], rows);
  const box = document.getElementById("schemas");
  for (const [name, s] of Object.entries(doc.components?.schemas || {})) {
    const t = el("table", { id: "schema-" + name });
    box.append(el("h3", {}, name), s.description ? el("p", {}, s.description) : "", t);
    const req = new Set(s.required || []);
    const props = Object.entries(s.properties || {});
    table(t.id, ["field", "type", "required", "description"], props.length ? props.map(([k, p]) => [k, type(p), req.has(k) ? "yes" : "", p.description || ""]) : [["", type(s), "", s.enum ? "one of " + s.enum.join(", ") : ""]]);
  }
});
