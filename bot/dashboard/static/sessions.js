// The sessions list: one row per Slack thread, filtered, searched, sorted and paginated by the
// server; the filters live in the URL so a view can be shared and survives a reload.
"use strict";

(() => {
  const { el, link, api, ago, badge, nameOf, person, place } = Dash;
  const form = document.getElementById("filters");
  const tbody = document.querySelector("#sessions tbody");
  const params = new URLSearchParams(location.search);
  let page = Number(params.get("page") || 1);
  let total = 0;
  const PER_PAGE = 25;

  for (const name of ["state", "q", "order"]) if (params.get(name)) form.elements[name].value = params.get(name);

  function query() {
    const q = new URLSearchParams();
    for (const name of ["state", "channel", "q", "order"]) {
      const value = form.elements[name].value || params.get(name) || "";
      if (value) q.set(name, value);
    }
    q.set("page", page); q.set("per_page", PER_PAGE);
    return q;
  }

  // The channel filter by name (its value stays the id); a name Slack gives later replaces the id.
  function channels(list, names) {
    const select = form.elements.channel;
    const current = select.value || params.get("channel") || "";
    const known = new Map([...select.options].map((o) => [o.value, o]));
    for (const c of list) {
      const option = known.get(c) || select.appendChild(el("option", { value: c, title: c }));
      option.textContent = nameOf(names, "channels", c);
    }
    select.value = current;
  }

  function row(s, names) {
    const href = `/sessions/${encodeURIComponent(s.key)}`;
    return el("tr", { dataset: { key: s.key, state: s.state } },
      el("td", {}, el("a", { href }, s.title || s.thread_ts), " ",
        s.thread_url ? link(s.thread_url, "Slack ↗", { target: "_blank", rel: "noopener" }) : ""),
      el("td", { class: "channel" }, place(names, s.channel_id)),
      el("td", { class: "started-by" }, person(names, s.started_by, "—")),
      el("td", { class: "state" }, badge("s", s.state)),
      el("td", { class: "num" }, s.turns),
      el("td", { class: "num" }, s.tasks_started),
      el("td", { class: "num" }, s.interruptions),
      el("td", {}, badge("o", s.last_outcome, s.last_outcome_label)),
      el("td", { title: s.updated_at ? new Date(s.updated_at * 1000).toLocaleString() : "" }, ago(s.updated_at)));
  }

  async function refresh() {
    const q = query();
    const data = await api(`/api/sessions?${q}`);
    total = data.total;
    channels(data.channels, data.names);
    tbody.replaceChildren(...(data.sessions.length ? data.sessions.map((s) => row(s, data.names))
      : [el("tr", {}, el("td", { colspan: 9, class: "muted" }, "No sessions match."))]));
    const pages = Math.max(1, Math.ceil(total / PER_PAGE));
    document.getElementById("page-info").textContent = `page ${page} of ${pages} · ${total} sessions`;
    document.getElementById("prev").disabled = page <= 1;
    document.getElementById("next").disabled = page >= pages;
    history.replaceState(null, "", `?${q}`);
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault(); page = 1;
    for (const name of [...params.keys()]) params.delete(name);
    refresh();
  });
  document.getElementById("prev").addEventListener("click", () => { page = Math.max(1, page - 1); refresh(); });
  document.getElementById("next").addEventListener("click", () => { page += 1; refresh(); });
  Dash.every(3000, refresh);
})();
