// The mesoslite web UI: renders /events (server-sent events carrying /state's document).
"use strict";

const $ = (id) => document.getElementById(id);

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function res(map) {
  return Object.entries(map || {}).map(([k, v]) =>
    typeof v === "number" ? `${k}:${+v.toFixed(2)}` : `${k}:${v}`).join(" ");
}

function when(t) {
  return t ? new Date(t * 1000).toLocaleString() : "";
}

// Fill table `id` with `rows` (arrays of HTML cells) under `heads`.
function table(id, heads, rows) {
  const head = `<tr>${heads.map((h) => `<th>${h}</th>`).join("")}</tr>`;
  const body = rows.length
    ? rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")
    : `<tr><td class="empty" colspan="${heads.length}">none</td></tr>`;
  $(id).innerHTML = head + body;
}

const tag = (cls, text) => `<span class="${esc(cls)}">${esc(text)}</span>`;

function render(s) {
  const m = s.master;
  $("master").textContent = m.leading
    ? `leader ${m.address} (${m.id})`
    : `standby ${m.address}; leader: ${m.leader || "unknown"}`;
  table("masters", ["address", "id", "role"], s.masters.map((x) =>
    [esc(x.address), esc(x.id), x.leading ? "leader" : "standby"]));
  table("agents", ["hostname", "id", "state", "total", "used", "tasks", "attributes"],
    s.agents.map((a) => [esc(a.hostname), `<code>${esc(a.id)}</code>`, tag(a.status, a.status),
      esc(res(a.total)), esc(res(a.used)), a.task_count, esc(res(a.attributes))]));
  table("frameworks", ["name", "id", "roles", "state", "dominant share", "allocated", "tasks"],
    s.frameworks.map((f) => [esc(f.name), `<code>${esc(f.id)}</code>`, esc(f.roles.join(",")),
      tag(f.status, f.status), (100 * f.dominant_share).toFixed(1) + "%", esc(res(f.allocated)),
      f.task_count]));
  table("roles", ["role", "weight", "guarantee", "limit", "allocated", "frameworks"],
    s.roles.map((r) => [esc(r.role), r.weight, esc(res(r.guarantee)),
      r.limit ? esc(res(r.limit)) : "none", esc(res(r.allocated)), r.framework_count]));
  table("jobs", ["name", "type", "state", "instances", "last runs", "next run"],
    s.jobs.map((j) => [esc(j.name), esc(j.type), tag(j.state, j.state),
      `${j.instances.filter((i) => i.state === "RUNNING").length}/${j.instances_wanted}`,
      esc(j.runs.slice(-3).map((r) => r.state).join(", ")), esc(when(j.next_run_at))]));
  const counts = Object.entries(s.task_counts || {});
  const total = counts.reduce((n, [, c]) => n + c, 0);
  const shown = s.tasks.filter((t) => !t.terminal).length;
  $("task-counts").textContent = `${total} not ended` +
    (counts.length ? ": " + counts.map(([state, c]) => `${c} ${state}`).join(", ") : "") +
    (shown < total ? ` (the ${shown} latest updated shown)` : "");
  const tasks = [...s.tasks].sort((a, b) => (a.terminal - b.terminal) || (b.updated_at - a.updated_at));
  table("tasks", ["id", "name", "state", "agent", "command", "output"],
    tasks.map((t) => {
      const base = `/tasks/${encodeURIComponent(t.id)}`;
      const q = `?framework_id=${encodeURIComponent(t.framework_id)}`;
      const links = ["stdout", "stderr"].map((n) =>
        `<a href="${base}/${n}${q}&follow=1" target="_blank">${n}</a>`).join(" ");
      return [`<code>${esc(t.id)}</code>`, esc(t.name), tag(t.state, t.state),
        `<code>${esc(t.agent_id)}</code>`, `<code>${esc(t.command)}</code>`, links];
    }));
}

function connect() {
  const live = $("live");
  const source = new EventSource("/events");
  source.addEventListener("state", (e) => {
    live.textContent = "live";
    live.className = "live on";
    render(JSON.parse(e.data));
  });
  source.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
  };
}

connect();
