// One session: the conversation, its runs (each cancelled run beside the run that replaced it
// and the message that caused it, the steering messages where each run took them in), its
// repository and model, its approvals, its branch and pull request, links to Restate's UI,
// and the Stop and Reset actions.
"use strict";

(() => {
  const { el, link, api, ago, clock, when, num, badge, nameOf, person, place } = Dash;
  const key = decodeURIComponent(location.pathname.split("/").pop());
  const base = `/api/sessions/${encodeURIComponent(key)}`;
  const short = (id) => (id ? `${id.slice(0, 4)}…${id.slice(-8)}` : "—");
  // Restate records every cancellation as a failed invocation (409): said beside its links.
  const CANCELLED_IN_RESTATE = "Restate's UI shows this run as a cancelled invocation (“Failed 409”): the expected record of an interruption or a stop";
  let names = {};

  function restateLink(r) {
    const cut = r.outcome === "cancelled" || r.outcome === "stopped";
    return link(r.restate_url, short(r.task_id), { target: "_blank", rel: "noopener", title: cut ? CANCELLED_IN_RESTATE : "open in the Restate UI" });
  }

  // "#general · thread by alice, 14:02"; the ids stay on the line below and in the tooltip.
  function heading(s) {
    const title = `${nameOf(names, "channels", s.channel_id)} · thread by ${s.started_by ? nameOf(names, "users", s.started_by) : "someone"}, ${when(Number(s.thread_ts))}`;
    const h1 = document.getElementById("title");
    h1.textContent = title;
    h1.title = s.key;
    document.getElementById("ids").textContent = `channel ${s.channel_id} · thread ${s.thread_ts}${s.started_by ? ` · started by ${s.started_by}` : ""}`;
    document.title = `${title} · Agent dashboard`;
  }

  function fact(dt, dd) { return [el("dt", {}, dt), el("dd", {}, dd)]; }

  function facts(s) {
    const running = s.running;
    document.getElementById("facts").replaceChildren(
      ...fact("State", el("span", { id: "state" }, badge("s", s.state))),
      ...fact("Slack thread", s.thread_url ? link(s.thread_url, `${nameOf(names, "channels", s.channel_id)}, ${when(Number(s.thread_ts))} ↗`, { target: "_blank", rel: "noopener", title: `${s.channel_id} · ${s.thread_ts}` }) : place(names, s.channel_id)),
      ...fact("Started by", el("span", {}, person(names, s.started_by, "—"), `, ${ago(s.created_at)}`)),
      ...fact("Last activity", ago(s.updated_at)),
      ...fact("Repository", el("span", { id: "repo" }, s.setup.repo || "the default", s.setup.repo_picked ? " (picked in the first mention)" : "")),
      ...fact("Model", el("span", { id: "model" }, s.setup.model || "the default model")),
      ...fact("Tasks / interruptions / stops", `${s.tasks_started} / ${s.interruptions} / ${s.stops}`),
      ...fact("Running", running ? el("span", {}, link(s.runs.find((r) => r.task_id === running.task_id)?.restate_url || "", short(running.task_id), { title: "open in the Restate UI" }), ` · step ${running.step} · ${running.tokens} tokens`) : "nothing"),
      ...fact("Queued messages", s.queued));
    document.getElementById("stop").disabled = !running;
  }

  function turn(t) {
    const who = t.kind === "user" ? person(names, t.user_id) : t.label || "agent";
    const steered = t.steered_run ? ` · steering message for run ${t.steered_run}` : "";
    return el("div", { class: `turn ${t.kind}`, dataset: { kind: t.kind } },
      el("div", { class: "meta" }, who, t.ts ? ` · ${clock(Number(t.ts))}` : "", steered), t.text);
  }

  function ship(s) {
    const p = s.ship;
    const pr = p.pr_url ? link(p.pr_url, p.pr_number ? `pull request #${p.pr_number}` : p.pr_url, { target: "_blank", rel: "noopener", id: "pr-link" }) : (p.pr_text || "none yet");
    const now = p.under_way ? "a ship is under way" : p.wanted_by ? `asked for by ${nameOf(names, "users", p.wanted_by)}; starts when the run ends` : "nothing under way";
    document.getElementById("ship").replaceChildren(
      ...fact("Branch", el("code", { id: "branch" }, p.branch || "none yet")),
      ...fact("Pull request", pr),
      ...fact("Last ship", el("span", { id: "ship-outcome" }, p.last_outcome || (p.ships ? "—" : "never shipped"))),
      ...fact("Now", el("span", { id: "ship-now" }, now)));
  }

  function approvals(s) {
    const rows = s.approvals.map((a) => el("tr", { dataset: { kind: a.kind || "unknown", outcome: a.outcome } },
      el("td", {}, a.at ? clock(a.at) : "—"),
      el("td", {}, a.asked_by),
      el("td", {}, a.budget_pause ? el("strong", {}, "budget pause") : a.kind_label, a.what ? el("div", {}, el("code", {}, a.what)) : ""),
      el("td", {}, el("span", { class: `badge a-${a.outcome}` }, a.outcome_label), a.by_user ? [" by ", person(names, a.by_user)] : "")));
    const none = el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No requests for approval answered."));
    document.querySelector("#approvals tbody").replaceChildren(...(rows.length ? rows : [none]));
  }

  function runCard(r, role, number) {
    if (!r) return el("div", { class: "run muted" }, "not recorded");
    return el("div", { class: "run", dataset: { task: r.task_id, role } },
      el("div", { class: "head" }, el("strong", {}, role === "replacement" ? `run ${number}, the replacement` : `run ${number}`),
        badge("o", r.outcome || "running", r.outcome_label), restateLink(r)),
      el("div", { class: "muted" }, `${clock(r.started_at)} → ${clock(r.ended_at)} · ${num(r.duration_s, 1, " s")} · ${r.tokens} tokens`),
      r.trigger_text ? el("div", {}, "for: ", el("em", {}, r.trigger_text)) : "",
      el("div", { class: "steps" }, `steps: ${(r.steps || []).join(" → ") || "—"}`));
  }

  function pairs(s) {
    const byId = Object.fromEntries(s.runs.map((r) => [r.task_id, r]));
    const numbers = Object.fromEntries(s.runs.map((r, i) => [r.task_id, i + 1]));
    const items = s.replacements.map((p) => el("div", { class: "pair", dataset: { cancelled: p.cancelled } },
      runCard(byId[p.cancelled], "cancelled", numbers[p.cancelled]),
      el("div", { class: "cause" }, "interrupted by",
        el("div", { class: "msg" }, el("strong", {}, person(names, p.message_user, "a reply")), ": ", p.message_text || "(message not in history)"),
        `cancelled ${p.cancel_latency_ms === null || p.cancel_latency_ms === undefined ? "—" : num(p.cancel_latency_ms, 0, " ms")} after it reached the bot`),
      runCard(byId[p.replacement], "replacement", numbers[p.replacement])));
    document.getElementById("pairs").replaceChildren(...(items.length ? items : [el("p", { class: "muted" }, "No interruptions.")]));
  }

  function runs(s) {
    const numbered = s.runs.map((r, i) => [i + 1, r]);
    document.querySelector("#runs tbody").replaceChildren(...numbered.reverse().map(([n, r]) => el("tr", { dataset: { task: r.task_id, outcome: r.outcome || "running" } },
      el("td", {}, `run ${n} · `, restateLink(r)),
      el("td", { class: "outcome" }, badge("o", r.outcome || "running", r.outcome_label), r.restate_note ? ` (${r.restate_note})` : ""),
      el("td", {}, clock(r.started_at)), el("td", {}, clock(r.ended_at)),
      el("td", { class: "num" }, num(r.duration_s, 1, " s")), el("td", { class: "num" }, r.tokens),
      el("td", { class: "steps" }, ...toolSteps(r)))));
  }

  // Each tool call of a run: what it did, how long it took, how it ended; and each steering
  // message after the tool calls it came after (or at the end while the run has not said).
  function toolSteps(r) {
    const tools = r.tools || [];
    const steering = r.steering || [];
    if (!tools.length && !steering.length) return [(r.steps || []).join(" → ") || "—"];
    const placed = (at) => steering.filter((m) => m.after_tools !== null && m.after_tools !== undefined && Math.min(m.after_tools, tools.length) === at).map(steer);
    const unplaced = steering.filter((m) => m.after_tools === null || m.after_tools === undefined).map(steer);
    return [...placed(0), ...tools.flatMap((t, i) => [el("div", { class: `tool ${t.ok ? "ok" : "failed"}`, dataset: { tool: t.name } },
      `${t.killed ? "✂" : t.ok ? "✓" : "✗"} ${t.summary} · ${num(t.seconds, 1, " s")}`,
      t.exit_code !== null && t.exit_code !== undefined ? ` · exit ${t.exit_code}` : ""), ...placed(i + 1)]), ...unplaced];
  }

  function steer(m) {
    const where = m.status === "waiting" ? "waiting for the run to read it" : m.after_tools === null || m.after_tools === undefined ? "taken in (where shows when the run ends)" : "taken in here";
    return el("div", { class: "steer", dataset: { ts: m.ts || "", status: m.status } },
      "↪ ", el("strong", {}, person(names, m.user_id)), ": ", m.text, el("span", { class: "muted" }, ` · ${where}${m.ts ? ` · sent ${clock(Number(m.ts))}` : ""}`));
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
    names = s.names || {};
    heading(s);
    facts(s);
    const cut = s.runs.some((r) => r.outcome === "cancelled" || r.outcome === "stopped");
    document.getElementById("restate-note").classList.toggle("hidden", !cut);
    document.getElementById("turns").replaceChildren(...s.turns.map(turn));
    ship(s); approvals(s); pairs(s); runs(s); workspace(s); invocations(s);
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
