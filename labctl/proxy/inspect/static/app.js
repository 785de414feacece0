// The inspector page: polls the admin API once a second and updates the tables in place (no reload,
// no build step). Every value is inserted as text (never as HTML): payloads come from any client.
"use strict";

const state = { lastSeq: 0, lastViolationSeq: 0, selected: null, payloads: [], failures: 0 };
const MAX_ROWS = 100;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells, cls) {
  const tr = el("tr", null, cls);
  for (const c of cells) {
    if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); }
    else tr.appendChild(el("td", c));
  }
  return tr;
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + " → HTTP " + r.status);
  return r.json();
}

function verdictCell(v) { return el("span", v, v === "ok" ? "ok" : "violation"); }

function fmtNum(n) {
  if (typeof n !== "number") return String(n);
  return Number.isInteger(n) ? n.toLocaleString("en") : String(Number(n.toFixed(4)));
}

function attrsText(attrs) {
  return Object.entries(attrs || {}).map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(", ");
}

function renderPayloadRows() {
  const tbody = document.querySelector("#payloads tbody");
  tbody.replaceChildren();
  if (!state.payloads.length) {
    tbody.appendChild(row(["waiting for the first export…"], "empty")).firstChild.colSpan = 7;
    return;
  }
  const onlyBad = document.getElementById("only-violations").checked;
  for (const p of state.payloads) {
    if (onlyBad && p.verdict === "ok") continue;
    const tr = row([p.seq, p.time, p.signal, p.protocol, p.items + (p.rejected ? " (" + p.rejected + " violating)" : ""),
      verdictCell(p.verdict), (p.names || []).join(", ")], "clickable payload" + (p._new ? " new" : ""));
    tr.dataset.seq = p.seq;
    if (state.selected === p.seq) tr.classList.add("selected");
    tr.addEventListener("click", () => showPayload(p.seq));
    tbody.appendChild(tr);
    p._new = false;
  }
}

async function showPayload(seq) {
  state.selected = seq;
  renderPayloadRows();
  let p;
  try { p = await getJSON("/api/payloads/" + seq); } catch (e) { return; }
  const detail = document.getElementById("detail");
  detail.hidden = false;
  document.getElementById("detail-title").textContent =
    "Payload #" + p.seq + " — " + p.signal + " over " + p.protocol + ", " + p.items + " items, verdict " + p.verdict;
  document.getElementById("detail-meta").textContent =
    "from " + (p.peer || "?") + ", " + p.bytes + " bytes, " + (p.content_type || "") +
    (p.records_truncated ? ", " + p.records_truncated + " more records not kept" : "") +
    (p.message ? " — " + p.message : "");
  const tbody = document.querySelector("#records tbody");
  tbody.replaceChildren();
  for (const r of p.records) {
    const viol = el("div");
    for (const v of r.violations) {
      const line = el("div", v.rule + ": " + v.message);
      line.appendChild(el("div", v.path, "mono"));
      viol.appendChild(line);
    }
    const value = r.value === null || r.value === undefined ? (r.body ?? "") :
      (typeof r.value === "object" ? JSON.stringify(r.value) : r.value);
    tbody.appendChild(row([r.name, value, el("span", attrsText(r.attributes), "mono"), verdictCell(r.verdict), viol],
      "record"));
  }
}

// Claude Code reports active time by type (user typing, cli work); show both, not one unexplained sum.
function activeTime(s) {
  const by = s.active_time_by_type || {};
  return fmtNum(by.user || 0) + " / " + fmtNum(by.cli || 0);
}

function renderSessions(sessions) {
  const tbody = document.querySelector("#sessions tbody");
  tbody.replaceChildren();
  if (!sessions.length) {
    tbody.appendChild(row(["no session yet: send data with labctl emit"], "empty")).firstChild.colSpan = 11;
    return;
  }
  for (const s of sessions.slice(0, MAX_ROWS)) {
    const t = s.tokens || {};
    const e = s.edit_decisions || {};
    const tr = row([s.session_id, s.user || "", [t.input || 0, t.output || 0, t.cacheRead || 0, t.cacheCreation || 0].map(fmtNum).join(" / "),
      fmtNum(s.cost_usd), fmtNum(s.lines_added) + " / " + fmtNum(s.lines_removed), fmtNum(s.commits), fmtNum(s.pull_requests),
      activeTime(s), fmtNum(e.accept || 0) + " / " + fmtNum(e.reject || 0), s.api_requests + " / " + s.api_errors,
      s.last_seen], "session");
    tr.dataset.session = s.session_id;
    tbody.appendChild(tr);
  }
}

function renderAlerts(snap) {
  const ul = document.getElementById("alerts");
  ul.replaceChildren();
  const alerts = snap.alerts || [];
  if (!alerts.length) {
    const rules = (snap.rules || []).map(r => r.name + " (" + r.kind + " > " + r.threshold + " " + r.unit + ")");
    ul.appendChild(el("li", rules.length ? "no alert firing; rules: " + rules.join(", ") : "no alert rules configured", "empty"));
    return;
  }
  for (const a of alerts) {
    const li = el("li", (a.state === "firing" ? "FIRING " : "resolved ") + a.message + " (since " + a.since + ")", a.state);
    li.dataset.alert = a.name;
    ul.appendChild(li);
  }
}

function prependViolations(list) {
  const tbody = document.querySelector("#violations tbody");
  if (list.length && tbody.querySelector(".empty")) tbody.replaceChildren();
  for (const v of list.slice().reverse()) {
    tbody.insertBefore(row([v.time, "#" + v.payload_id, v.rule, v.name, el("span", v.path, "mono"), v.message], "violation-row new"),
      tbody.firstChild);
  }
  while (tbody.children.length > MAX_ROWS) tbody.removeChild(tbody.lastChild);
}

async function tick() {
  try {
    const o = await getJSON("/api/overview");
    document.getElementById("contract-name").textContent = (o.contract && o.contract.name) || "none";
    document.getElementById("mode").textContent = o.mode || "?";
    document.getElementById("upstream").textContent = (o.upstream && o.upstream.state) || "none";
    document.getElementById("requests").textContent = o.requests;
    let ok = 0, bad = 0;
    for (const [k, n] of Object.entries(o.items || {})) { if (k.endsWith(":ok")) ok += n; else bad += n; }
    document.getElementById("items-ok").textContent = ok;
    document.getElementById("items-bad").textContent = bad;
    if (o.last_seq !== state.lastSeq) {
      const r = await getJSON("/api/payloads?limit=" + MAX_ROWS + "&after=" + (o.last_seq < state.lastSeq ? 0 : state.lastSeq));
      for (const p of r.payloads) p._new = true;
      state.payloads = (o.last_seq < state.lastSeq ? r.payloads : r.payloads.concat(state.payloads)).slice(0, MAX_ROWS);
      state.lastSeq = r.last_seq;
      renderPayloadRows();
    }
    if (o.last_violation_seq !== state.lastViolationSeq) {
      const v = await getJSON("/api/violations?limit=" + MAX_ROWS + "&after=" + state.lastViolationSeq);
      prependViolations(v.violations);
      state.lastViolationSeq = v.last_seq;
    }
    renderSessions((await getJSON("/api/sessions")).sessions);
    renderAlerts(await getJSON("/api/alerts"));
    const live = document.getElementById("live");
    live.textContent = "live · updated " + new Date().toLocaleTimeString();
    live.classList.remove("stale");
    state.failures = 0;
  } catch (e) {
    state.failures += 1;
    const live = document.getElementById("live");
    live.textContent = "cannot reach the proxy (" + e.message + "), retrying…";
    live.classList.add("stale");
  }
}

document.getElementById("only-violations").addEventListener("change", renderPayloadRows);
tick();
setInterval(tick, 1000);
