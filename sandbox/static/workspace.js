// The sandbox workspace page: channels, threads, composers, shortcuts and the live feed.
// Message text is rendered by mrkdwn.js, as DOM nodes, never as HTML; files a person attaches
// and messages they forward, by shares.js.
import { el, emojiNodes, mrkdwn, renderBlocks } from "./mrkdwn.js";
import { attacher, forgetFiles, forwarder, renderFiles, renderShares } from "./shares.js";

const S = { channels: [], users: {}, bot: "U0BOT", channel: "C0GENERAL", thread: null,
            messages: new Map(), ephemerals: [], status: new Map(), pendingShortcut: null,
            uploads: null, menuFor: null, menuAnchor: null, menuList: "" };
const ctx = { userName, channelName, emoji: new Map() };
const $ = (id) => document.getElementById(id);
const COMMAND_RE = /^(\/[a-z0-9_-]+)(?:\s+([\s\S]*))?$/i;
const key = (ch, ts) => ch + "|" + ts;
const tsOrder = (a, b) => parseFloat(a.ts) - parseFloat(b.ts);
const COLORS = { U0ALICE: "#2eb67d", U0BOB: "#e01e5a" };

function userName(id) { return (S.users[id] && S.users[id].name) || id; }
function channelName(id) { const c = S.channels.find((c) => c.id === id); return c ? c.name : id; }
function currentUser() { return $("user").value; }
function link(text, href) {
  const a = el("a", "", text);
  a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer";
  return a;
}

function button(element, msg) {
  const b = el("button", element.style || "", (element.text && element.text.text) || element.action_id);
  b.type = "button";
  b.dataset.actionId = element.action_id;
  b.addEventListener("click", (ev) => { ev.stopPropagation(); clickAction(msg, element); });
  return b;
}
function reactions(msg) {
  return el("div", "reactions", ...msg.reactions.map((re) => {
    const r = el("span", "reaction", ...emojiNodes(":" + re.name + ":", ctx), " " + re.count);
    r.title = ":" + re.name + ": by " + (re.users || []).map(userName).join(", ");
    return r;
  }));
}
function messageContent(msg, opts) {
  // Apps' messages show their blocks (text is the notification fallback); people's, their text.
  const blocks = msg.bot_id || opts.eph ? renderBlocks(msg.blocks, ctx, (b) => button(b, msg)) : [];
  const content = blocks.length ? el("div", "", ...blocks) : el("div", "text", mrkdwn(msg.text, ctx));
  // Slack marks a person's edits; an app's updates (streamed answers, progress) go unmarked.
  if (msg.edited && !msg.bot_id) content.append(" ", el("span", "edited", "(edited)"));
  return content;
}
function renderMessage(msg, opts) {
  const isBot = !!msg.bot_id;
  const row = el("div", "msg" + (isBot ? " bot" : "") + (opts.eph ? " eph" : "") + (opts.clickable ? " clickable" : ""));
  const name = isBot ? "agent" : userName(msg.user);
  const av = el("div", "avatar", isBot ? el("span", "emoji", "🤖") : name.slice(0, 1).toUpperCase());
  av.style.background = isBot ? "#1264a3" : (COLORS[msg.user] || "#616061");
  const time = new Date(parseFloat(msg.ts) * 1000).toLocaleTimeString();
  const body = el("div", "body", el("div", "meta", el("b", "", name), (isBot ? "APP · " : "") + time +
    (opts.eph ? " · Only visible to you" : "")), messageContent(msg, opts));
  renderShares(msg, ctx, body);
  renderFiles(msg, body);
  if (msg.reactions && msg.reactions.length) body.appendChild(reactions(msg));
  if (opts.clickable && msg.reply_count)
    body.appendChild(el("div", "replies", msg.reply_count + (msg.reply_count === 1 ? " reply" : " replies")));
  row.append(av, body);
  if (!opts.eph) {
    const more = el("button", "more", "⋯");
    more.type = "button"; more.title = "More actions"; more.dataset.key = key(msg.channel, msg.ts);
    more.setAttribute("aria-haspopup", "menu");
    more.addEventListener("click", (ev) => { ev.stopPropagation(); openMenu(more, msg); });
    row.appendChild(more);
  }
  if (opts.clickable) row.addEventListener("click", () => openThread(msg.ts));
  return row;
}
function myEphemerals(where) {
  return S.ephemerals.filter((e) => e.channel === S.channel && e.user === currentUser() && where(e))
    .map((e) => ({ ...e, bot_id: "B", eph: true }));
}
// Messages and the user's ephemerals, in the order they were posted, as Slack shows them.
function timeline(list, messages, ephemerals, opts) {
  const rows = [...messages, ...ephemerals].sort(tsOrder)
    .map((m) => renderMessage(m, m.eph ? { eph: true } : opts));
  stickToBottom(list, () => list.replaceChildren(...rows));
}
function stickToBottom(list, fn) {
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  fn();
  if (atBottom) list.scrollTop = list.scrollHeight;
}
function renderHeader(ch) {
  $("channel-title").textContent = ch ? ch.display_name : S.channel;
  // The channel's purpose (Slack's conversation object), as Slack's header shows it.
  const purpose = (ch && ch.purpose && ch.purpose.value) || "";
  $("channel-purpose").replaceChildren(mrkdwn(purpose, ctx));
  $("channel-purpose").title = purpose;
  for (const b of document.querySelectorAll("button.chan")) b.classList.toggle("active", b.dataset.id === S.channel);
}
function renderChannel() {
  const ch = S.channels.find((c) => c.id === S.channel);
  renderHeader(ch);
  const list = $("channel-list");
  timeline(list, [...S.messages.values()].filter((m) => m.channel === S.channel && !m.is_reply),
           myEphemerals((e) => !e.in_thread), { clickable: true });
  if (!list.children.length) list.replaceChildren(el("div", "empty", "No messages yet. Say hello, or mention @agent."));
  const dmBlocked = ch && ch.is_im && ch.user !== currentUser();
  $("channel-input").disabled = dmBlocked;
  $("channel-form").querySelector("button[type=submit]").disabled = dmBlocked;
  channelFiles.disable(dmBlocked);
  $("channel-input").placeholder = dmBlocked ? "This DM is between alice and the agent." :
    "Message " + (ch ? ch.display_name : "");
  renderThread();
}
function renderThread() {
  $("thread-pane").classList.toggle("open", !!S.thread);
  if (!S.thread) return;
  timeline($("thread-list"), [...S.messages.values()].filter((m) => m.channel === S.channel && m.thread_ts === S.thread),
           myEphemerals((e) => e.in_thread && e.thread_ts === S.thread), {});
  const st = S.status.get(key(S.channel, S.thread));
  $("thread-status").textContent = st ? "agent " + st : "";
}
function renderLimits(limits) {
  const e = $("limits");
  e.textContent = "429s: " + limits.rate_limited + (limits.enabled ? "" : " (limits off)");
  e.classList.toggle("hit", limits.rate_limited > 0);
}
function renderPulls(data) {
  // The sandbox GitHub's pull requests; each opens its own page there.
  const pulls = (data && data.pulls) || [], box = $("pulls");
  box.replaceChildren(...pulls.map((p) => {
    const a = link("#" + p.number + " " + p.title, p.html_url);
    a.title = p.repository + ": " + p.head + " → " + p.base;
    a.appendChild(el("span", "pull-meta", (p.draft && p.state === "open" ? "draft" : p.state) + " · " + p.head));
    return a;
  }));
  if (!pulls.length) box.appendChild(el("div", "none", "None yet"));
}
function toast(text) {
  const t = $("toast"); t.textContent = text; t.style.display = "block";
  clearTimeout(toast.h); toast.h = setTimeout(() => { t.style.display = "none"; }, 2500);
}
async function api(path, body) {
  const res = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}
function toSlackText(text) {
  // Slack clients escape &, < and > in what people type; only real mentions stay as <@U…>.
  const escaped = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return escaped.replace(/(^|[^\w@])@agent\b/gi, "$1<@" + S.bot + ">");
}
function clearInput(input) { input.value = ""; fitHeight(input); }
async function send(input, threadTs, attached) {
  const text = input.value.trim(), files = attached.files();
  // As in Slack, a message may be only its files.
  if (!text && !files.length) return;
  // Like Slack, a composer line starting with a slash command runs the command instead (the
  // files stay in the composer).
  const cmd = COMMAND_RE.exec(text);
  if (cmd) {
    if (await runCommand(cmd[1].toLowerCase(), cmd[2] || "", threadTs)) clearInput(input);
    return;
  }
  try {
    await api("/_sandbox/messages", { channel: S.channel, user: currentUser(), text: toSlackText(text),
                                      thread_ts: threadTs || null, files });
    clearInput(input);
    attached.clear();
  } catch (err) { toast("Could not post: " + err.message); }
}
async function runCommand(command, text, threadTs) {
  try {
    const r = await api("/_sandbox/command", { command, text: toSlackText(text.trim()), user: currentUser(),
                                               channel: S.channel, thread_ts: threadTs || null });
    if (r.outcome !== "ok") toast(command + " failed: the app answered " + (r.status ?? r.outcome));
    return true;
  } catch (err) { toast(command + " failed: " + err.message); return false; }
}
function openMenu(anchor, msg) {
  const menu = $("msg-menu");
  const r = anchor.getBoundingClientRect();
  S.menuFor = msg; S.menuAnchor = anchor; S.menuList = anchor.closest(".list").id;
  menu.hidden = false;
  menu.style.top = Math.min(r.bottom + 2, innerHeight - menu.offsetHeight - 8) + "px";
  menu.style.left = Math.max(8, r.right - 180) + "px";
  menu.querySelector("button").focus();
}
function closeMenu(refocus) {
  const menu = $("msg-menu");
  if (menu.hidden) return;
  menu.hidden = true;
  if (refocus && menuAnchor()) menuAnchor().focus();
}
// The ⋯ button the menu was opened from: lists are drawn anew on every change, so by now it may
// be another button for the same message.
function menuAnchor() {
  const a = S.menuAnchor;
  if (!a || a.isConnected) return a;
  const list = $(S.menuList);
  return list && list.querySelector('button.more[data-key="' + CSS.escape(a.dataset.key) + '"]');
}
function moveInMenu(ev) {
  // A menu's items take the arrow keys, as ARIA's menu pattern has it.
  if (ev.key !== "ArrowDown" && ev.key !== "ArrowUp") return;
  ev.preventDefault();
  const items = [...$("msg-menu").querySelectorAll("button")], at = items.indexOf(document.activeElement);
  items[(at + (ev.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
}
async function runShortcut(msg, callbackId) {
  // The app answers a shortcut with an ephemeral in the message's thread; remember where, so
  // the answer shows where the user clicked (see showShortcutAnswer).
  S.pendingShortcut = { channel: msg.channel, thread: msg.thread_ts || msg.ts, user: currentUser() };
  try {
    const r = await api("/_sandbox/shortcut", { user: currentUser(), channel: msg.channel,
                                                message_ts: msg.ts, callback_id: callbackId });
    if (r.outcome !== "ok") toast("Shortcut failed: the app answered " + (r.status ?? r.outcome));
  } catch (err) { toast("Shortcut failed: " + err.message); }
}
function showShortcutAnswer(e) {
  // An answer inside a thread that is not open would go unseen: open that thread. (One for a
  // thread without replies already shows in the channel, beside the message.)
  const p = S.pendingShortcut;
  if (!p || p.channel !== e.channel || p.user !== e.user || p.thread !== e.thread_ts) return;
  S.pendingShortcut = null;
  if (e.in_thread && S.channel === e.channel && S.thread !== e.thread_ts) openThread(e.thread_ts);
}
async function clickAction(msg, element) {
  try {
    const r = await api("/_sandbox/action", { user: currentUser(), channel: msg.channel,
                                              message_ts: msg.ts, action_id: element.action_id });
    toast("Clicked “" + ((element.text && element.text.text) || element.action_id) + "”: bot answered " +
          (r.status ?? r.outcome));
  } catch (err) { toast("Click failed: " + err.message); }
}
async function openThread(ts) {
  S.thread = ts;
  history.replaceState(null, "", "#channel=" + S.channel + "&thread=" + ts);
  const data = await api("/_sandbox/messages?channel=" + encodeURIComponent(S.channel) +
                         "&thread_ts=" + encodeURIComponent(ts));
  for (const m of data.messages) S.messages.set(key(m.channel, m.ts), m);
  renderThread();
  $("thread-input").focus();
}
function selectChannel(id) {
  S.channel = id; S.thread = null;
  history.replaceState(null, "", "#channel=" + id);
  renderChannel();
}
async function loadEmoji() {
  // Without the emoji data, shortcodes stay as text rather than the page failing.
  const data = await api("/_sandbox/emoji").catch(() => ({ emoji: {} }));
  ctx.emoji = new Map(Object.entries(data.emoji));
}
// Events that arrive while a load is under way: its snapshot may predate them, so they are
// applied again once it lands (applying one twice changes nothing).
let arrivedDuringLoad = null;
async function load() {
  const arrived = arrivedDuringLoad = [];
  const [users, chans, eph, limits, pulls, config] = await Promise.all([
    api("/_sandbox/users"), api("/_sandbox/channels"), api("/_sandbox/ephemerals"), api("/_sandbox/limits"),
    api("/_sandbox/pulls").catch(() => ({ pulls: [] })), api("/_sandbox/config"),
    ctx.emoji.size ? null : loadEmoji()]);
  renderLimits(limits);
  S.uploads = { max_upload_bytes: config.max_upload_bytes, max_uploads: config.max_uploads };
  $("install").value = config.org_wide || "";
  renderPulls(pulls);
  S.bot = users.bot_user_id;
  for (const u of users.users) S.users[u.id] = u;
  const sel = $("user");
  if (!sel.options.length) for (const u of users.users.filter((u) => !u.is_bot)) sel.add(new Option(u.name, u.id));
  S.channels = chans.channels;
  S.messages.clear();
  for (const c of S.channels) for (const m of c.messages) S.messages.set(key(m.channel, m.ts), m);
  S.ephemerals = eph.ephemerals;
  if (arrivedDuringLoad === arrived) arrivedDuringLoad = null;
  for (const [type, data] of arrived) apply(type, data);
  $("channels").replaceChildren(...S.channels.map((c) => {
    const b = el("button", "chan", c.display_name); b.dataset.id = c.id;
    b.addEventListener("click", () => selectChannel(c.id));
    return b;
  }));
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("channel")) S.channel = hash.get("channel");
  renderChannel();
  if (hash.get("thread")) await openThread(hash.get("thread"));
}
function apply(type, data) {
  if (data.message) S.messages.set(key(data.message.channel, data.message.ts), data.message);
  if (type === "message_deleted") S.messages.delete(key(data.channel, data.ts));
  if (type === "ephemeral_posted" && !S.ephemerals.some((e) => e.ts === data.ephemeral.ts))
    S.ephemerals.push(data.ephemeral);
}
function onEvent(type, data) {
  if (type === "rate_limits") { renderLimits(data); return; }
  if (type === "pulls") { renderPulls(data); return; }
  if (arrivedDuringLoad) arrivedDuringLoad.push([type, data]);
  apply(type, data);
  if (type === "assistant_status") S.status.set(key(data.channel, data.thread_ts), data.status);
  if (type === "message_posted" && data.message.bot_id && data.message.is_reply)
    S.status.delete(key(data.message.channel, data.message.thread_ts));
  if (type === "reset") { forgetFiles(); load(); return; }
  renderChannel();
  if (type === "ephemeral_posted") showShortcutAnswer(data.ephemeral);
}
function connect() {
  const es = new EventSource("/_sandbox/events");
  // Catch up on what happened between the first load and the feed opening (or a reconnect).
  es.onopen = () => {
    load().then(() => { $("conn").textContent = "live"; }).catch(() => {});
  };
  es.onerror = () => { $("conn").textContent = "reconnecting…"; };
  for (const t of ["message_posted", "message_updated", "message_deleted", "reaction_added",
                   "reaction_removed", "ephemeral_posted", "assistant_status", "rate_limits", "pulls", "reset"])
    es.addEventListener(t, (ev) => onEvent(t, JSON.parse(ev.data)));
}
// The composer grows with what is typed, up to its CSS max-height, as Slack's does.
function fitHeight(input) {
  input.style.height = "auto";
  input.style.height = input.scrollHeight + (input.offsetHeight - input.clientHeight) + "px";
}
// What shares.js may use of the page.
const page = { api, toast, toSlackText, currentUser, ctx, channels: () => S.channels,
               limits: () => S.uploads, fallbackFocus: () => $("channel-input") };
function composer(formId, inputId, threadFn) {
  const form = $(formId), input = $(inputId), attached = attacher(form, page);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); send(input, threadFn(), attached); });
  input.addEventListener("input", () => fitHeight(input));
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); send(input, threadFn(), attached); }
  });
  return attached;
}
const channelFiles = composer("channel-form", "channel-input", () => null);
composer("thread-form", "thread-input", () => S.thread);
const openForward = forwarder(page);
$("command-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const cmd = COMMAND_RE.exec($("command-input").value.trim());
  if (!cmd) { toast("A slash command starts with /, e.g. /agent-status"); return; }
  runCommand(cmd[1].toLowerCase(), cmd[2] || "", null);
});
for (const item of $("msg-menu").querySelectorAll("button[data-callback]"))
  item.addEventListener("click", () => { if (S.menuFor) runShortcut(S.menuFor, item.dataset.callback); });
$("forward-item").addEventListener("click", () => { if (S.menuFor) openForward(S.menuFor, menuAnchor); });
$("msg-menu").addEventListener("keydown", moveInMenu);
document.addEventListener("click", () => closeMenu(false));
document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeMenu(true); });
$("thread-close").addEventListener("click", () => { S.thread = null; renderThread(); });
$("user").addEventListener("change", renderChannel);
$("install").addEventListener("change", async () => {
  const org = $("install").value || null;
  try {
    const res = await api("/_sandbox/install", { org_wide: org });
    toast(res.org_wide ? "Installed org-wide in " + res.org_wide : "Installed in this workspace");
  } catch (err) { toast("Install change failed: " + err.message); }
});
load().then(connect).catch((err) => { $("conn").textContent = "error: " + err.message; });
