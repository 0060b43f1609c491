// Files and forwarded messages on the sandbox page: shared files as cards with a preview, and,
// offered as Slack's client offers them, an attach button with removable file chips in each
// composer and a "Forward message" dialog from a message's ⋯ menu; forwarded messages show as
// cards. Both post through the control API (`POST /_sandbox/messages`, `files` or `forward`).
//
// `page` is what the workspace page lends: { api, toast, toSlackText, currentUser, ctx,
// channels(), limits(), fallbackFocus() }.
import { el, mrkdwn, renderBlocks } from "./mrkdwn.js";

function fileSize(n) {
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
  return (n / 1024 / 1024).toFixed(1) + " MB";
}

const PREVIEW_LINES = 40;
// Files' text, fetched once; the previews open (see fileCard).
const fileText = new Map(), openPreviews = new Set();

export function forgetFiles() { fileText.clear(); openPreviews.clear(); }

function anchor(text, href, download) {
  const a = el("a", "", text);
  a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer";
  if (download) a.setAttribute("download", "");
  a.addEventListener("click", (ev) => ev.stopPropagation());
  return a;
}

function isTextFile(f) {
  return /^text\//.test(f.mimetype || "") || f.mimetype === "application/json";
}
function lineClass(line) {
  // Diff colouring: file headers first, since "+++"/"---" also start with +/-.
  if (/^(diff |index |\+\+\+ |--- )/.test(line)) return "meta";
  if (line.startsWith("@@")) return "hunk";
  if (line.startsWith("+")) return "add";
  if (line.startsWith("-")) return "del";
  return "";
}
function fillPreview(pre, text) {
  const all = text.split("\n");
  if (all.length && all[all.length - 1] === "") all.pop();
  pre.replaceChildren(...all.slice(0, PREVIEW_LINES).map((l) => el("span", lineClass(l), l || " ")));
  if (all.length > PREVIEW_LINES)
    pre.appendChild(el("span", "more-lines", "… " + (all.length - PREVIEW_LINES) + " more lines"));
}
async function loadPreview(f, pre) {
  if (!fileText.has(f.id)) {
    pre.replaceChildren(el("span", "more-lines", "loading…"));
    try {
      const res = await fetch("/_sandbox/files/" + encodeURIComponent(f.id) + "/content");
      if (!res.ok) throw new Error(res.statusText);
      fileText.set(f.id, await res.text());
    } catch (err) { pre.replaceChildren(el("span", "more-lines", "preview failed: " + err.message)); return; }
  }
  fillPreview(pre, fileText.get(f.id));
}
function fileCard(msg, f) {
  const card = el("div", "file");
  card.addEventListener("click", (ev) => ev.stopPropagation());
  const content = "/_sandbox/files/" + encodeURIComponent(f.id) + "/content";
  card.appendChild(el("div", "file-head", el("span", "file-icon emoji", isTextFile(f) ? "📄" : "📦"),
    el("span", "file-name", f.title || f.name),
    el("span", "file-meta", (f.pretty_type || f.filetype || "file") + " · " + fileSize(f.size || 0)),
    anchor("Open", content), anchor("Download", content + "?download=1", true)));
  if (f.title && f.title !== f.name) card.appendChild(el("div", "file-meta", f.name));
  if (isTextFile(f)) {
    const details = el("details"), pre = el("pre", "preview"), id = msg.channel + "|" + msg.ts + "|" + f.id;
    details.append(el("summary", "", "Preview (first " + PREVIEW_LINES + " lines)"), pre);
    // Pages re-render on every change; remember which previews are open so they stay open.
    details.open = openPreviews.has(id);
    if (details.open) loadPreview(f, pre);
    details.addEventListener("toggle", () => {
      if (details.open) { openPreviews.add(id); loadPreview(f, pre); } else openPreviews.delete(id);
    });
    card.appendChild(details);
  }
  return card;
}
export function renderFiles(msg, into) {
  if (msg.files && msg.files.length) into.appendChild(el("div", "files", ...msg.files.map((f) => fileCard(msg, f))));
}

// Why a chosen file cannot go with the message ("" if it can). The bounds are the control API's
// own (`/_sandbox/config`), checked here so a refused file is never read or posted.
function refusal(file, queued, limits) {
  if (!limits) return "The page is still loading; attach " + file.name + " again in a moment.";
  if (queued >= limits.max_uploads) return "A message takes at most " + limits.max_uploads + " files.";
  if (file.size > limits.max_upload_bytes)
    return file.name + " is too large: a file may be at most " + fileSize(limits.max_upload_bytes) + ".";
  return "";
}

function chip(file, remove) {
  const x = el("button", "", "✕");
  x.type = "button"; x.title = "Remove";
  x.setAttribute("aria-label", "Remove " + file.name);
  x.addEventListener("click", remove);
  return el("span", "chip", el("span", "file-icon emoji", "📄"), el("span", "file-name", file.name),
            el("span", "file-meta", fileSize(file.size)), x);
}

// One composer's attach button, file picker and chips: chosen files wait there, each removable,
// until the message is sent. The sandbox shares text: a file is read as UTF-8 text.
export function attacher(form, page) {
  const pick = form.querySelector("input[type=file]"), button = form.querySelector("button.attach");
  const chips = form.querySelector(".chips");
  let files = [], notes = [];
  function render() {
    const note = el("p", "attach-note", notes.join(" "));
    note.setAttribute("role", "alert");
    chips.replaceChildren(...files.map((f) => chip(f, () => remove(f))), ...(notes.length ? [note] : []));
  }
  function remove(file) {
    files = files.filter((f) => f !== file); notes = [];
    render(); button.focus();
  }
  async function add(chosen) {
    notes = [];
    for (const file of chosen) {
      let why = refusal(file, files.length, page.limits());
      const content = why ? "" : await file.text();
      if (!why && content.includes("\0")) why = file.name + " is not a text file: only text can be attached here.";
      if (why) notes.push(why); else files.push({ name: file.name, size: file.size, content });
    }
    render();
  }
  button.addEventListener("click", () => pick.click());
  pick.addEventListener("change", () => {
    const chosen = [...pick.files];
    pick.value = "";  // so choosing the same file again is a change too
    add(chosen);
  });
  return {
    files: () => files.map((f) => ({ name: f.name, content: f.content })),
    clear() { files = []; notes = []; render(); },
    disable(off) { button.disabled = off; },
  };
}

function inertButton(element) {
  const b = el("button", element.style || "", (element.text && element.text.text) || element.action_id);
  b.type = "button"; b.disabled = true;
  return b;
}

// A forwarded message as Slack shows it: its author, its text (an app's, its blocks), and where
// it was posted, linked.
function shareCard(att, ctx) {
  const blocks = ((att.message_blocks || [])[0] || {}).message || {};
  const shown = renderBlocks(blocks.blocks, ctx, inertButton);
  const author = att.author_id ? ctx.userName(att.author_id) : att.author_name || "";
  const footer = el("div", "share-footer", att.footer || "");
  if (att.ts) footer.append(" · " + new Date(parseFloat(att.ts) * 1000).toLocaleString());
  if (att.from_url) footer.append(" · ", anchor("View message", att.from_url));
  return el("div", "share", el("div", "share-author", author),
            shown.length ? el("div", "", ...shown) : el("div", "text", mrkdwn(att.text || "", ctx)), footer);
}

export function renderShares(msg, ctx, into) {
  const shares = (msg.attachments || []).filter((a) => a.is_share);
  if (shares.length) into.appendChild(el("div", "shares", ...shares.map((a) => shareCard(a, ctx))));
}

// The "Forward message" dialog: a destination (a channel, or the DM for its member) and an
// optional comment. Returns `open(msg, opener)`; when it closes, focus goes back to `opener()`.
export function forwarder(page) {
  const $ = (id) => document.getElementById(id);
  const dialog = $("forward-dialog"), form = $("forward-form"), to = $("forward-to");
  const comment = $("forward-comment"), error = $("forward-error");
  const submit = form.querySelector("button[type=submit]");
  let source = null, opener = null;
  function destinations() {
    const choose = new Option("Choose a channel or DM", "");
    choose.disabled = true;
    const options = page.channels().map((c) => {
      const o = new Option(c.display_name, c.id);
      o.disabled = !!c.is_im && c.user !== page.currentUser();
      return o;
    });
    to.replaceChildren(choose, ...options);
    to.value = "";
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const channel = page.channels().find((c) => c.id === to.value);
    submit.disabled = true;
    try {
      await page.api("/_sandbox/messages", {
        channel: to.value, user: page.currentUser(), text: page.toSlackText(comment.value.trim()),
        forward: { channel: source.channel, ts: source.ts } });
      dialog.close();
      page.toast("Forwarded to " + (channel ? channel.display_name : to.value));
    } catch (err) { error.textContent = "Could not forward: " + err.message; }
    finally { submit.disabled = false; }
  });
  $("forward-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => { ((opener && opener()) || page.fallbackFocus()).focus(); });
  return function open(msg, from) {
    source = msg; opener = from;
    destinations();
    comment.value = ""; error.textContent = "";
    const where = page.channels().find((c) => c.id === msg.channel);
    $("forward-preview").replaceChildren(shareCard({
      author_id: msg.user, text: msg.text,
      message_blocks: msg.bot_id ? [{ message: { blocks: msg.blocks } }] : [],
      footer: where && where.is_im ? "Direct message" : msg.is_reply ? "Posted in a thread" :
        "Posted in " + (where ? where.display_name : msg.channel),
      ts: msg.ts }, page.ctx));
    dialog.showModal();
    to.focus();
  };
}
