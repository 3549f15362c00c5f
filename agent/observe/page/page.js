// capture-agent diagnostics page. Every value from the server goes through textContent (a camera's
// name comes from its USB descriptors: it is not ours to trust). Frames arrive as JPEG bytes in JSON
// and become data: URLs in memory; nothing is stored.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function badge(text, ok) {
  return el("span", text, "badge " + (ok === true ? "ok" : ok === false ? "bad" : "unknown"));
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function kv(key, value) {
  const tr = el("tr");
  tr.append(el("th", key));
  const td = el("td");
  if (value instanceof Node) td.append(value); else td.textContent = value;
  tr.append(td);
  return tr;
}

function num(v, digits) {
  return (v === null || v === undefined) ? "—" : Number(v).toFixed(digits);
}

// -- live view -------------------------------------------------------------------------------------
const METRICS = [
  ["ipd_px", "IPD (px)", 1], ["yaw_deg", "yaw (°)", 1], ["pitch_deg", "pitch (°)", 1], ["roll_deg", "roll (°)", 1],
  ["mean_gray", "mean gray level", 0], ["gray_share", "face in gray range", 2],
  ["depth_face_completeness", "depth completeness, face", 3], ["depth_core_completeness", "depth completeness, eyes/nose/mouth", 3],
  ["lux", "illuminance (lux)", 0], ["sharpness", "sharpness", 1],
];

function showLive(d) {
  for (const kind of ["color", "depth", "ir"]) {
    if (d.images[kind]) $(kind).src = "data:image/jpeg;base64," + d.images[kind];
    const s = (d.streams.streams || {})[kind];
    $(kind + "-caption").textContent = ({color: "colour + quality overlay", depth: "depth (aligned, colour map)", ir: "IR (aligned)"})[kind] +
      (s ? ` · ${s.resolution} · ${num(s.fps, 1)} fps · ${s.dropped} dropped` : "");
  }
  const q = d.quality;
  $("prompt").textContent = q.ok ? "✓ this frameset passes the gate" :
    (q.prompt ? `${q.prompt.en} · ${q.prompt.zh} (${q.prompt.code})` : "no prompt");
  $("progress-bar").style.width = q.progress + "%";
  const rows = [kv("faces found", q.faces_found), kv("sync skew (ms)", num(d.streams.skew_ms, 2))];
  for (const [k, label, digits] of METRICS) if (k in q.metrics) rows.push(kv(label, num(q.metrics[k], digits)));
  fill($("quality-metrics").tBodies[0], rows);
  $("failing").replaceChildren(...q.failing.map((c) => el("li", `§${c.clause} ${c.name}: ${c.value === null ? "—" : num(c.value, 3)} (needs ${c.limit})`)));
}

function showCamera(cam) {
  const b = $("camera-state");
  b.textContent = "camera: " + cam.state + (cam.error ? ` (${cam.error.code})` : "");
  b.className = "badge " + (cam.state === "streaming" ? "ok" : cam.state === "error" ? "bad" : "unknown");
}

async function liveLoop() {
  let after = 0;
  for (;;) {
    try {
      const r = await fetch(`/api/live?after=${after}`, {cache: "no-store", credentials: "same-origin"});
      if (!r.ok) { await sleep(2000); continue; }
      const d = await r.json();
      showCamera(d.camera);
      if (d.seq) { after = d.seq; showLive(d); }
    } catch (e) {
      await sleep(2000);
    }
  }
}

// -- status: device, agent, checklist, sessions ----------------------------------------------------
function showDevice(dev) {
  if (!dev) return;
  fill($("device-facts").tBodies[0], [
    kv("device", `${dev.name} (${dev.backend})`), kv("serial", dev.serial), kv("USB id", dev.usb_id), kv("USB bus", dev.bus),
    kv("link", badge(dev.link.text, dev.link.ok)), kv("per-frame metadata", badge(dev.metadata.text, dev.metadata.ok)),
    kv("firmware", badge(`${dev.firmware.version}: ${dev.firmware.verdict}`, dev.firmware.ok)),
    kv("firmware detail", dev.firmware.detail || "—"), kv("streams", dev.streams.join(", ")), kv("note", dev.note || "—"),
  ]);
}

function showAgent(agent) {
  const rows = [];
  for (const [k, v] of Object.entries(agent || {})) rows.push(kv(k, typeof v === "object" ? badge(v.text, v.ok) : v));
  fill($("agent-facts").tBodies[0], rows);
}

function showChecklist(c) {
  const st = $("checklist-state");
  st.textContent = c.state;
  const failed = c.rows.filter((r) => r.result === "FAIL").length;
  st.className = "badge " + (c.state !== "done" ? "unknown" : failed ? "bad" : "ok");
  $("rerun").disabled = c.state === "running";
  fill($("checklist").tBodies[0], c.rows.map((r) => {
    const tr = el("tr");
    tr.dataset.result = r.result;
    const res = el("td");
    res.append(el("span", r.result, "badge " + r.result.replace(" ", "-")));
    tr.append(res, el("td", "§" + r.clause), el("td", r.check), el("td", r.value), el("td", r.requirement),
              el("td", r.next_step || "", "next"));
    return tr;
  }));
}

function showSessions(s) {
  $("sessions-note").textContent = s.note || "";
  fill($("sessions").tBodies[0], (s.rows || []).map((r) => {
    const t = r.timings_ms || {};
    const tr = el("tr");
    tr.dataset.outcome = r.outcome;
    tr.append(el("td", r.started), el("td", r.purpose), el("td", r.channel), el("td", r.outcome), el("td", r.reason || "—"),
              el("td", r.verdict || "—"), el("td", r.challenge || "—"), el("td", r.prompt || "—"),
              el("td", r.ended_in), el("td", num(t.quality, 0)), el("td", num(t.challenge_window, 0)),
              el("td", num(t.liveness, 0)), el("td", num(t.submit, 0)), el("td", num(t.total ?? t.elapsed, 0)),
              el("td", r.within_budget === null ? "—" : r.within_budget ? "within" : "over"));
    return tr;
  }));
}

async function statusLoop() {
  for (;;) {
    let wait = 10000;
    try {
      const r = await fetch("/api/status", {cache: "no-store", credentials: "same-origin"});
      if (r.ok) {
        const d = await r.json();
        showDevice(d.device);
        showAgent(d.agent);
        showChecklist(d.checklist);
        showSessions(d.sessions || {});
        if (d.checklist.state === "running" || !d.device) wait = 1000;
      }
    } catch (e) { wait = 2000; }
    await sleep(wait);
  }
}

function sleep(ms) { return new Promise((res) => setTimeout(res, ms)); }

async function rerun() {
  $("rerun").disabled = true;
  await fetch("/api/checklist", {method: "POST", cache: "no-store", credentials: "same-origin", headers: {"X-Diagnostics": "1"}});
}

document.addEventListener("DOMContentLoaded", () => {
  $("rerun").addEventListener("click", rerun);
  liveLoop();
  statusLoop();
});
