// The overview: live counts, percentiles and the outcomes chart, refreshed every few seconds.
"use strict";

(() => {
  const { api, num } = Dash;
  const COLORS = { completed: "#15803d", cancelled: "#d97706", stopped: "#6b7280", failed: "#b91c1c" };
  let chart = null;

  function set(id, text) { document.getElementById(id).textContent = text; }

  function ms(value) { return value === null || value === undefined ? "—" : value >= 1000 ? num(value / 1000, 2, " s") : num(value, 0, " ms"); }
  function secs(value) { return value === null || value === undefined ? "—" : value < 1 ? num(value * 1000, 0, " ms") : num(value, 1, " s"); }

  function label(slot, bucket) {
    const d = new Date(slot * 1000);
    return bucket < 60 ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
      : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function width(seconds) {
    return seconds < 60 ? `${seconds} s` : seconds < 3600 ? `${seconds / 60} min` : `${seconds / 3600} h`;
  }

  function span(seconds) {
    if (seconds >= 86400) return "the last day";
    if (seconds >= 7200) return `the last ${Math.round(seconds / 3600)} hours`;
    return `the last ${Math.round(seconds / 60)} minutes`;
  }

  function draw(data) {
    const labels = data.chart.slots.map((s) => label(s, data.chart.bucket_s));
    const datasets = Object.entries(data.chart.series).map(([outcome, values]) => ({
      label: data.chart.labels[outcome] || outcome,
      data: values, backgroundColor: COLORS[outcome], stack: "runs",
    }));
    if (typeof Chart === "undefined") {
      set("chart-note", "The chart library is not installed (run `make install`).");
      return;
    }
    if (chart === null) {
      chart = new Chart(document.getElementById("chart"), {
        type: "bar",
        data: { labels, datasets },
        options: {
          animation: false, maintainAspectRatio: false,
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
          plugins: { legend: { position: "bottom" } },
        },
      });
    } else {
      chart.data.labels = labels;
      chart.data.datasets.forEach((ds, i) => { ds.data = datasets[i].data; });
      chart.update("none");
    }
  }

  function fill(d) {
    const o = d.outcomes;
    set("t-active", d.sessions_active); set("t-sessions", `of ${d.sessions} sessions`);
    set("t-running", d.tasks_running);
    set("t-int-hour", o.cancelled.hour); set("t-int-day", `${o.cancelled.day} in the last day`);
    set("t-stop-hour", o.stopped.hour); set("t-stop-day", `${o.stopped.day} in the last day`);
    set("t-fail-hour", o.failed.hour); set("t-fail-day", `${o.failed.day} in the last day`);
    set("t-done-hour", o.completed.hour); set("t-done-day", `${o.completed.day} in the last day`);
    set("t-lat", ms(d.interruption_latency_ms.p50)); set("t-lat95", `p95 ${ms(d.interruption_latency_ms.p95)}`);
    set("t-dur", secs(d.task_duration_s.p50)); set("t-dur95", `p95 ${secs(d.task_duration_s.p95)}`);
    set("t-ttft", secs(d.first_token_s.p50)); set("t-ttft95", `p95 ${secs(d.first_token_s.p95)}`);
    set("updated", new Date(d.generated_at * 1000).toLocaleTimeString());
    set("span", `showing ${span(d.chart.span_s)}, ${width(d.chart.bucket_s)} a bar`);
    draw(d);
  }

  // The window fits the data unless one is chosen; a choice stays in the URL for a reload.
  const select = document.getElementById("window");
  const asked = new URLSearchParams(location.search).get("window");
  if ([...select.options].some((o) => o.value === asked)) select.value = asked;
  async function refresh() { fill(await api(`/api/overview?window=${encodeURIComponent(select.value)}`)); }
  select.addEventListener("change", () => {
    history.replaceState(null, "", select.value === "auto" ? location.pathname : `?window=${select.value}`);
    if (chart) { chart.destroy(); chart = null; }
    refresh();
  });
  Dash.every(3000, refresh);
})();
