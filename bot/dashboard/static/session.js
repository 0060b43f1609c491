// One session: the conversation, its runs (each cancelled run beside the run that replaced it
// and the message that caused it), links to Restate's UI, and the Stop and Reset actions.
"use strict";

(() => {
  const { el, link, api, ago, clock, num, badge } = Dash;
  const key = decodeURIComponent(location.pathname.split("/").pop());
  const base = `/api/sessions/${encodeURIComponent(key)}`;
  const short = (id) => (id ? `${id.slice(0, 4)}…${id.slice(-8)}` : "—");

  function fact(dt, dd) { return [el("dt", {}, dt), el("dd", {}, dd)]; }

  function facts(s) {
    const running = s.running;
    document.getElementById("facts").replaceChildren(
      ...fact("State", el("span", { id: "state" }, badge("s", s.state))),
      ...fact("Slack thread", s.thread_url ? link(s.thread_url, `#${s.channel_id} · ${s.thread_ts}`, { target: "_blank", rel: "noopener" }) : `${s.channel_id} · ${s.thread_ts}`),
      ...fact("Started by", `${s.started_by || "—"}, ${ago(s.created_at)}`),
      ...fact("Last activity", ago(s.updated_at)),
      ...fact("Tasks / interruptions / stops", `${s.tasks_started} / ${s.interruptions} / ${s.stops}`),
      ...fact("Running", running ? el("span", {}, link(s.runs.find((r) => r.task_id === running.task_id)?.restate_url || "", short(running.task_id)), ` · step ${running.step} · ${running.tokens} tokens`) : "nothing"),
      ...fact("Queued messages", s.queued));
    document.getElementById("stop").disabled = !running;
  }

  function turn(t) {
    const who = t.kind === "user" ? (t.user_id || "someone") : t.kind === "partial" ? "agent (interrupted, partial)" : t.kind === "error" ? "agent (failed)" : "agent";
    return el("div", { class: `turn ${t.kind}`, dataset: { kind: t.kind } },
      el("div", { class: "meta" }, who, t.ts ? ` · ${clock(Number(t.ts))}` : ""), t.text);
  }

  function runCard(r, role) {
    if (!r) return el("div", { class: "run muted" }, "not recorded");
    return el("div", { class: "run", dataset: { task: r.task_id, role } },
      el("div", { class: "head" }, el("strong", {}, role), badge("o", r.outcome || "running"),
        link(r.restate_url, short(r.task_id), { target: "_blank", rel: "noopener", title: "open in the Restate UI" })),
      el("div", { class: "muted" }, `${clock(r.started_at)} → ${clock(r.ended_at)} · ${num(r.duration_s, 1, " s")} · ${r.tokens} tokens`),
      r.trigger_text ? el("div", {}, "for: ", el("em", {}, r.trigger_text)) : "",
      el("div", { class: "steps" }, `steps: ${(r.steps || []).join(" → ") || "—"}`));
  }

  function pairs(s) {
    const byId = Object.fromEntries(s.runs.map((r) => [r.task_id, r]));
    const items = s.replacements.map((p) => el("div", { class: "pair", dataset: { cancelled: p.cancelled } },
      runCard(byId[p.cancelled], "cancelled"),
      el("div", { class: "cause" }, "interrupted by",
        el("div", { class: "msg" }, el("strong", {}, p.message_user || "a reply"), ": ", p.message_text || "(message not in history)"),
        `cancelled ${p.cancel_latency_ms === null || p.cancel_latency_ms === undefined ? "—" : num(p.cancel_latency_ms, 0, " ms")} after it reached the bot`),
      runCard(byId[p.replacement], "replacement")));
    document.getElementById("pairs").replaceChildren(...(items.length ? items : [el("p", { class: "muted" }, "No interruptions.")]));
  }

  function runs(s) {
    document.querySelector("#runs tbody").replaceChildren(...[...s.runs].reverse().map((r) => el("tr", { dataset: { task: r.task_id, outcome: r.outcome || "running" } },
      el("td", {}, link(r.restate_url, short(r.task_id), { target: "_blank", rel: "noopener" })),
      el("td", {}, badge("o", r.outcome || "running"), r.restate_status && r.restate_status !== "completed" ? ` (${r.restate_status})` : ""),
      el("td", {}, clock(r.started_at)), el("td", {}, clock(r.ended_at)),
      el("td", { class: "num" }, num(r.duration_s, 1, " s")), el("td", { class: "num" }, r.tokens),
      el("td", { class: "steps" }, ...toolSteps(r)))));
  }

  // Each tool call of a run: what it did, how long it took, how it ended.
  function toolSteps(r) {
    const tools = r.tools || [];
    if (!tools.length) return [(r.steps || []).join(" → ") || "—"];
    return tools.map((t) => el("div", { class: `tool ${t.ok ? "ok" : "failed"}`, dataset: { tool: t.name } },
      `${t.killed ? "✂" : t.ok ? "✓" : "✗"} ${t.summary} · ${num(t.seconds, 1, " s")}`,
      t.exit_code !== null && t.exit_code !== undefined ? ` · exit ${t.exit_code}` : ""));
  }

  function workspace(s) {
    const w = s.workspace;
    const box = document.getElementById("workspace");
    if (!w) { box.replaceChildren(el("p", { class: "muted" }, "No workspace yet.")); return; }
    const lines = (w.patch || "").split("\n").slice(0, 400);
    const diff = el("pre", { class: "diff", id: "diff" }, ...lines.map((line) => el("span", {
      class: line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "",
    }, `${line}\n`)));
    box.replaceChildren(
      el("div", { class: "muted" }, `${w.repo} @ ${(w.base_commit || "").slice(0, 12)}`,
        w.patch_truncated ? " · the patch was over its bound and is not shown whole" : ""),
      w.patch ? diff : el("p", { class: "muted" }, "No changes yet."));
  }

  function invocations(s) {
    document.querySelector("#invocations tbody").replaceChildren(...s.invocations.map((i) => el("tr", {},
      el("td", {}, link(i.restate_url, short(i.id), { target: "_blank", rel: "noopener" })),
      el("td", {}, i.handler), el("td", {}, i.status), el("td", {}, ago(i.created_at)))));
  }

  async function refresh() {
    let s;
    try { s = await api(base); } catch (err) {
      if (err.message === "not_found") { document.getElementById("title").textContent = "No such session (it may have been reset)"; return; }
      throw err;
    }
    document.getElementById("title").textContent = `Session ${s.channel_id} · ${s.thread_ts}`;
    facts(s);
    document.getElementById("turns").replaceChildren(...s.turns.map(turn));
    pairs(s); runs(s); workspace(s); invocations(s);
  }

  async function act(action, question) {
    if (!window.confirm(question)) return;
    const out = document.getElementById("action-result");
    out.textContent = `${action}…`;
    try {
      const res = await api(`${base}/${action}`, { method: "POST", body: JSON.stringify({ confirm: true }) });
      out.textContent = `${action}: ${res.result && res.result.stopped ? "stopped the running task" : (res.result && res.result.reason) || "done"}`;
    } catch (err) { out.textContent = `${action} failed: ${err.message}`; }
    refresh();
  }

  document.getElementById("stop").addEventListener("click", () => act("stop", "Stop the running task of this session? It will not restart until someone replies."));
  document.getElementById("reset").addEventListener("click", () => act("reset", "Reset this session? Its running task is stopped and its whole history is cleared."));
  Dash.every(2000, refresh);
})();
