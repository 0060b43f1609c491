// Shared helpers of the dashboard pages. Every piece of user text is put into the page with
// textContent (never innerHTML), so nothing a Slack user writes can run here.
"use strict";

const Dash = (() => {
  /** Build an element: el("td", {class: "num"}, "text", child, ...). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** A link only to http(s) URLs; anything else becomes plain text. */
  function link(href, text, attrs) {
    if (typeof href !== "string" || !/^https?:\/\//.test(href) && !href.startsWith("/")) {
      return document.createTextNode(text);
    }
    return el("a", { href, ...(attrs || {}) }, text);
  }

  async function api(path, options) {
    const response = await fetch(path, {
      credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      ...(options || {}),
    });
    if (response.status === 401) {
      window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      throw new Error("signed out");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  function ago(seconds) {
    if (!seconds) return "—";
    const d = Date.now() / 1000 - seconds;
    if (d < 5) return "just now";
    if (d < 60) return `${Math.round(d)} s ago`;
    if (d < 3600) return `${Math.round(d / 60)} min ago`;
    if (d < 86400) return `${Math.round(d / 3600)} h ago`;
    return new Date(seconds * 1000).toLocaleString();
  }

  function clock(seconds) {
    return seconds ? new Date(seconds * 1000).toLocaleTimeString() : "—";
  }

  /** Hours and minutes, with the day when it is not today: "14:02", "3 Nov, 14:02". */
  function when(seconds) {
    if (!seconds) return "—";
    const d = new Date(seconds * 1000);
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (d.toDateString() === new Date().toDateString()) return time;
    return `${d.toLocaleDateString([], { day: "numeric", month: "short" })}, ${time}`;
  }

  /** A person's or a channel's name from the page's `names` (its Slack id in the tooltip),
   * or the id itself while Slack has not named it. */
  function nameOf(names, kind, id) {
    return (names && names[kind] && names[kind][id]) || id;
  }
  function person(names, id, nobody) {
    if (!id) return nobody || "someone";
    return el("span", { class: "name", title: id, dataset: { id } }, nameOf(names, "users", id));
  }
  function place(names, id) {
    if (!id) return "—";
    return el("span", { class: "name", title: id, dataset: { id } }, nameOf(names, "channels", id));
  }

  function num(value, digits, unit) {
    if (value === null || value === undefined) return "—";
    return `${Number(value).toFixed(digits)}${unit || ""}`;
  }

  /** A coloured label: `value` picks the colour, `text` (else `value`) is what it says. */
  function badge(kind, value, text) {
    return value ? el("span", { class: `badge ${kind}-${value}` }, text || value) : "—";
  }

  /** Run `fn` now and every `ms` ms while the page is visible; errors show in `banner`. */
  function every(ms, fn) {
    const banner = document.getElementById("banner");
    async function tick() {
      try {
        if (!document.hidden) await fn();
        if (banner) banner.classList.add("hidden");
      } catch (err) {
        if (banner) { banner.textContent = `Could not refresh: ${err.message}`; banner.classList.remove("hidden"); }
      }
      setTimeout(tick, ms);
    }
    tick();
  }

  // Sign out only where there is a sign-in: without a token the dashboard is open (to this
  // machine only), and signing out would sign you straight back in.
  async function showOperator() {
    const who = document.getElementById("who");
    if (!who) return;
    let me;
    try { me = await api("/api/me"); } catch (_) { return; /* shown on refresh */ }
    who.textContent = me.sign_in ? `signed in as ${me.operator}` : "open on this machine, no sign-in";
    const signOut = document.getElementById("sign-out");
    if (signOut) signOut.classList.toggle("hidden", !me.sign_in);
  }

  document.addEventListener("DOMContentLoaded", showOperator);
  return { el, link, api, ago, clock, when, num, badge, every, nameOf, person, place };
})();
