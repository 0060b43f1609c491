// Slack's message formatting (mrkdwn), emoji shortcodes and Block Kit text, rendered as DOM
// nodes. Nothing from a message is ever parsed as HTML: every piece of it becomes a text node,
// so a message can style itself only in the ways Slack lets it.
//
// `ctx` is what the page knows: { userName(id), channelName(id), emoji: Map(name -> char) }.

const ENTITIES = { "&lt;": "<", "&gt;": ">", "&amp;": "&" };
// Slack escapes only these three in message text; anything else stays as written.
export function unescapeSlack(s) { return String(s).replace(/&(?:lt|gt|amp);/g, (m) => ENTITIES[m]); }

export function el(tag, cls, ...children) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  e.append(...children);
  return e;
}

function link(text, href) {
  const a = el("a", "", text);
  a.href = href; a.target = "_blank"; a.rel = "noopener noreferrer";
  return a;
}

// A skin tone goes with the emoji before it, in one span, so the two show as one character.
const EMOJI_RE = /:([a-z0-9_+'-]+):(?::(skin-tone-[2-6]):)?/g;
const URL_RE = /\bhttps?:\/\/[^\s<>]+[^\s<>.,;:!?)'"]/g;

// An emoji written as characters (a whole sequence: flags, keycaps, skin tones, ZWJ families).
// Bare digits, `#`, `©` or `⏸` are not emoji here: they stay text, in the text font.
const CHAR_EMOJI_RE = /\p{RGI_Emoji}/gv;

// Text with each emoji character in a span of its own, so the page draws it in the emoji font.
function charEmojiNodes(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(CHAR_EMOJI_RE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(el("span", "emoji", m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// `:name:` as Slack shows it (`:+1::skin-tone-2:` too); a name Slack does not know stays as typed.
export function emojiNodes(text, ctx) {
  const out = [];
  let last = 0;
  EMOJI_RE.lastIndex = 0;
  for (let m; (m = EMOJI_RE.exec(text)); ) {
    const char = ctx.emoji.get(m[1]);
    if (char === undefined) { EMOJI_RE.lastIndex = m.index + m[0].length - 1; continue; }
    out.push(...charEmojiNodes(text.slice(last, m.index)));
    const span = el("span", "emoji", char + (m[2] ? ctx.emoji.get(m[2]) || "" : ""));
    span.title = m[0];
    out.push(span);
    last = m.index + m[0].length;
  }
  out.push(...charEmojiNodes(text.slice(last)));
  return out;
}

// Plain text of a message: entities decoded, bare web addresses linked, emoji shown.
function textNodes(raw, ctx) {
  const text = unescapeSlack(raw), out = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    out.push(...emojiNodes(text.slice(last, m.index), ctx), link(m[0], m[0]));
    last = m.index + m[0].length;
  }
  return [...out, ...emojiNodes(text.slice(last), ctx)];
}

// `<@U…>`, `<#C…>`, `<!here>`, `<!date^…|fallback>`, `<url|label>`: Slack's angle-bracket tokens.
function special(inner, ctx) {
  const bar = inner.indexOf("|");
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? "" : unescapeSlack(inner.slice(bar + 1));
  if (target.startsWith("@")) return el("span", "mention", "@" + (label || ctx.userName(target.slice(1))));
  if (target.startsWith("#")) return el("span", "mention", "#" + (label || ctx.channelName(target.slice(1))));
  if (target.startsWith("!")) {
    const kind = target.slice(1).split("^")[0];
    if (kind === "date") return document.createTextNode(label);
    return el("span", "mention", label || "@" + kind);
  }
  const href = unescapeSlack(target);
  if (/^(?:https?:|mailto:)/i.test(href)) return link(label || href.replace(/^mailto:/i, ""), href);
  return document.createTextNode(label || href);
}

// Code spans and tokens are cut out first (as private-use placeholders), so styles can span
// them (`*`code`*` is bold code) but never reach into them.
const TOKEN_RE = /`([^`\n]+)`|<([^<>\n]+)>/g;
const PLACEHOLDER = 0xe000;
const PLACEHOLDER_RE = /[\ue000-\uf8ff]/g;
// A style opens after a non-word character and closes before one; doubled delimiters
// (`__init__`, `**`) style nothing, as in Slack.
const STYLE_RE = /(^|[^\p{L}\p{N}*_~])([*_~])(?!\s|\2)(.+?)(?<!\s)\2(?![\p{L}\p{N}*_~])/u;
const STYLE_TAGS = { "*": "b", "_": "i", "~": "s" };

function styled(s, atoms, ctx) {
  const out = [];
  let rest = s;
  for (let m; (m = STYLE_RE.exec(rest)); ) {
    out.push(...plain(rest.slice(0, m.index + m[1].length), atoms, ctx));
    out.push(el(STYLE_TAGS[m[2]], "", ...styled(m[3], atoms, ctx)));
    rest = rest.slice(m.index + m[0].length);
  }
  return [...out, ...plain(rest, atoms, ctx)];
}

function plain(s, atoms, ctx) {
  const out = [];
  let last = 0;
  for (const m of s.matchAll(PLACEHOLDER_RE)) {
    out.push(...textNodes(s.slice(last, m.index), ctx), atoms[m[0].charCodeAt(0) - PLACEHOLDER]);
    last = m.index + 1;
  }
  return [...out, ...textNodes(s.slice(last), ctx)];
}

export function inlineNodes(line, ctx) {
  const atoms = [];
  const marked = line.replace(PLACEHOLDER_RE, "\ufffd").replace(TOKEN_RE, (_, code, token) => {
    atoms.push(code !== undefined ? el("code", "", unescapeSlack(code)) : special(token, ctx));
    return String.fromCharCode(PLACEHOLDER + atoms.length - 1);
  });
  return styled(marked, atoms, ctx);
}

const QUOTE_RE = /^(?:&gt;|>) ?(.*)$/;
const QUOTE_REST_RE = /^(?:&gt;|>){3} ?/;

// Lines of prose: `>` lines make a quote, `>>>` quotes the rest of the text.
function prose(part, ctx, into) {
  let quote = null, lineInRun = false;
  const lines = part.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i], quoted = QUOTE_RE.exec(line);
    if (QUOTE_REST_RE.test(line)) {
      line = [line.replace(QUOTE_REST_RE, ""), ...lines.slice(i + 1)].join("\n");
      const bq = el("blockquote");
      line.split("\n").forEach((l, j) => bq.append(...(j ? [el("br")] : []), ...inlineNodes(l, ctx)));
      into.append(bq);
      return;
    }
    if (quoted) {
      if (!quote) { quote = el("blockquote"); into.append(quote); lineInRun = false; }
      quote.append(...(lineInRun ? [el("br")] : []), ...inlineNodes(quoted[1], ctx));
    } else {
      if (quote) { quote = null; lineInRun = false; }
      into.append(...(lineInRun ? [el("br")] : []), ...inlineNodes(line, ctx));
    }
    lineInRun = true;
  }
}

// Slack mrkdwn as a DocumentFragment: ``` blocks first, then quotes, then inline styles.
export function mrkdwn(text, ctx) {
  const frag = document.createDocumentFragment();
  const parts = String(text ?? "").split("```");
  // An unclosed ``` is plain text, as in Slack.
  if (parts.length % 2 === 0) { const tail = parts.pop(); parts[parts.length - 1] += "```" + tail; }
  parts.forEach((part, i) => {
    if (i % 2 === 1) { frag.append(el("pre", "", unescapeSlack(part.replace(/^\n/, "").replace(/\n$/, "")))); return; }
    if (i > 0) part = part.replace(/^\n/, "");
    if (i < parts.length - 1) part = part.replace(/\n$/, "");
    prose(part, ctx, frag);
  });
  return frag;
}

// A Block Kit text object: mrkdwn formatted, plain_text as written (with emoji, as Slack shows).
export function textObject(t, ctx) {
  if (!t) return document.createDocumentFragment();
  if (t.type === "mrkdwn") return mrkdwn(t.text, ctx);
  const frag = document.createDocumentFragment();
  frag.append(...(t.emoji === false ? [t.text || ""] : emojiNodes(t.text || "", ctx)));
  return frag;
}

function section(block, ctx, button) {
  const div = el("div", "text", textObject(block.text, ctx));
  if (block.fields && block.fields.length)
    div.append(el("div", "fields", ...block.fields.map((f) => el("div", "", textObject(f, ctx)))));
  if (block.accessory && block.accessory.type === "button") {
    const b = button(block.accessory);
    b.classList.add("accessory");
    div.append(b);
  }
  return div;
}

function context(block, ctx) {
  const div = el("div", "block-context");
  (block.elements || []).forEach((e, i) => {
    if (i) div.append(" ");
    div.append(e.type === "image" ? e.alt_text || "" : el("span", "", textObject(e, ctx)));
  });
  return div;
}

const BLOCKS = {
  section,
  context,
  header: (b, ctx) => el("div", "block-header", textObject(b.text, ctx)),
  divider: () => el("hr", "block-divider"),
  markdown: (b, ctx) => el("div", "text", mrkdwn(b.text || "", ctx)),
  actions: (b, ctx, button) =>
    el("div", "block-actions", ...(b.elements || []).filter((e) => e.type === "button").map(button)),
};

// The blocks the page knows, each a node; `button(element)` makes an interactive button.
export function renderBlocks(blocks, ctx, button) {
  return (blocks || []).filter((b) => Object.hasOwn(BLOCKS, b.type))
    .map((b) => BLOCKS[b.type](b, ctx, button));
}
