// The sandbox's Slack client: renders the snapshots the emulator pushes over SSE and posts
// what the person does to /sandbox/ui/*. Everything shown is escaped before it is formatted;
// the only HTML inserted as markup comes out of mrkdwn() and plainText() below.
"use strict";

const EMOJI = {
  white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", no_entry: "⛔", no_entry_sign: "🚫",
  warning: "⚠️", hourglass: "⌛", hourglass_flowing_sand: "⏳", leftwards_arrow_with_hook: "↩️",
  pencil2: "✏️", memo: "📝", raised_hand: "✋", grey_question: "❔", question: "❓",
  exclamation: "❗", eyes: "👀", "+1": "👍", thumbsup: "👍", "-1": "👎", thumbsdown: "👎",
  tada: "🎉", rocket: "🚀", fire: "🔥", boom: "💥", zap: "⚡", bulb: "💡", lock: "🔒",
  unlock: "🔓", key: "🔑", wrench: "🔧", hammer_and_wrench: "🛠️", gear: "⚙️", robot_face: "🤖",
  wave: "👋", smile: "😄", slightly_smiling_face: "🙂", thinking_face: "🤔", heart: "❤️",
  pray: "🙏", ok_hand: "👌", raised_hands: "🙌", clipboard: "📋", red_circle: "🔴",
  large_green_circle: "🟢", large_yellow_circle: "🟡", octagonal_sign: "🛑", stopwatch: "⏱️",
  alarm_clock: "⏰", incoming_envelope: "📨", arrow_double_up: "⏫", link: "🔗", information_source: "ℹ️", wastebasket: "🗑️", arrow_down: "⬇️",
  arrow_up: "⬆️", chart_with_downwards_trend: "📉", chart_with_upwards_trend: "📈",
  package: "📦", computer: "💻", cloud: "☁️", rotating_light: "🚨", sparkles: "✨",
};
const PICKER = ["white_check_mark", "eyes", "+1", "tada", "x", "rocket", "heart", "thinking_face"];

const stored = (key) => localStorage.getItem("sandbox." + key) || "";
const remember = (key, value) => localStorage.setItem("sandbox." + key, value);

let state = null; // the last snapshot
let me = stored("user");
let current = stored("channel");
let threadTs = null;
let source = null;
let shownView = ""; // "view id:hash" of the modal on screen
let shownHome = ""; // the Home tab's blocks on screen, as JSON
const HOME = "home"; // `current` when the app's Home tab is open
const seen = {}; // channel id -> latest ts the person has looked at

// --- text ---

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Slack escapes only these three in message text.
function decodeSlack(s) {
  return s.replace(/&(amp|lt|gt);/g, (_, name) => ({ amp: "&", lt: "<", gt: ">" })[name]);
}

function emojify(html) {
  return html.replace(/:([a-z0-9_+-]+):/g, (match, name) =>
    EMOJI[name] ? `<span class="emoji" title=":${name}:">${EMOJI[name]}</span>` : match);
}

function plainText(obj) {
  const html = escapeHtml(obj && obj.text ? obj.text : "");
  return obj && obj.emoji === false ? html : emojify(html);
}

function userName(id) {
  if (state && id === state.bot.id) return state.bot.name;
  const user = state && state.users.find((u) => u.id === id);
  return user ? user.name : null;
}

function channelName(id) {
  const channel = state && state.channels.find((c) => c.id === id);
  return channel ? channel.name : (state && state.channel_names[id]) || null;
}

// `<!date^EPOCH^FORMAT>`, formatted as Slack's clients do: in the reader's own time zone.
function slackDate(target) {
  const m = /^!date\^(\d+)\^([^^]*)/.exec(target);
  if (!m) return null;
  const when = new Date(Number(m[1]) * 1000);
  const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const offset = Math.round((day(when) - day(new Date())) / 86400000);
  const pretty = { "-1": "yesterday", 0: "today", 1: "tomorrow" }[offset];
  const short = when.toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" });
  const tokens = {
    date_short_pretty: pretty || short,
    date_short: short,
    time: when.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" }),
  };
  return decodeSlack(m[2]).replace(/\{(\w+)\}/g, (all, name) => tokens[name] || all);
}

// `<…>` control sequences: mentions, channel links, user groups, special mentions, links.
function controlSequence(inner) {
  const bar = inner.indexOf("|");
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? "" : inner.slice(bar + 1);
  if (/^@[UWB][A-Z0-9]+$/.test(target)) {
    const id = target.slice(1);
    const name = userName(id) || label || id;
    const mine = id === me ? " me" : "";
    return `<span class="mention${mine}" data-user="${escapeHtml(id)}">@${escapeHtml(decodeSlack(name))}</span>`;
  }
  if (/^#[CDG][A-Z0-9]+$/.test(target)) {
    const name = channelName(target.slice(1)) || label || target.slice(1);
    return `<span class="channel-link">#${escapeHtml(decodeSlack(name))}</span>`;
  }
  if (/^!subteam\^S[A-Z0-9]+$/.test(target)) {
    const group = state && state.usergroups[target.slice(9)];
    const name = label ? decodeSlack(label).replace(/^@/, "") : group ? group.handle : target.slice(9);
    return `<span class="mention group">@${escapeHtml(name)}</span>`;
  }
  if (/^!(here|channel|everyone)$/.test(target)) {
    return `<span class="mention special">@${target.slice(1)}</span>`;
  }
  if (/^!date\^/.test(target)) return escapeHtml(slackDate(target) || decodeSlack(label || target));
  if (/^(https?:\/\/|mailto:)/i.test(target)) {
    const href = escapeHtml(decodeSlack(target));
    return `<a href="${href}" target="_blank" rel="noopener noreferrer">${escapeHtml(decodeSlack(label || target))}</a>`;
  }
  return null;
}

// Bold, italics and strike need a boundary on both sides, as in Slack: snake_case stays plain,
// and _see OPENAI_API_KEY_ is one italic span.
const BEFORE = "(^|[\\s([{'\"\\u0000*_~])";
const AFTER = "(?=$|[\\s)\\]}'\".,;:!?\\u0000*_~])";
function style(mark) {
  const m = "\\" + mark;
  const inner = `((?:[^${m}\\n]|(?<=\\w)${m}(?=\\w))*?\\S)`;
  return new RegExp(`${BEFORE}${m}(?=\\S)${inner}${m}${AFTER}`, "g");
}
const STYLES = [[style("*"), "b"], [style("_"), "i"], [style("~"), "s"]];

function mrkdwn(text) {
  const held = [];
  const hold = (html) => `\u0000${held.push(html) - 1}\u0000`;
  let s = String(text || "").replace(/\u0000/g, "");
  s = s.replace(/```([\s\S]*?)```/g, (_, code) =>
    hold(`<pre class="code-block">${escapeHtml(decodeSlack(code.replace(/^\n/, "").replace(/\n$/, "")))}</pre>`));
  s = s.replace(/`([^`\n]+)`/g, (_, code) => hold(`<code>${escapeHtml(decodeSlack(code))}</code>`));
  s = s.replace(/<([^<>\n]+)>/g, (match, inner) => {
    const html = controlSequence(inner);
    return html === null ? match : hold(html);
  });
  let html = escapeHtml(decodeSlack(s));
  for (const [pattern, tag] of STYLES) {
    // Twice, so that adjacent spans sharing a boundary character both match.
    html = html.replace(pattern, `$1<${tag}>$2</${tag}>`).replace(pattern, `$1<${tag}>$2</${tag}>`);
  }
  html = emojify(html);
  html = quoteLines(html);
  while (/\u0000\d+\u0000/.test(html)) {
    html = html.replace(/\u0000(\d+)\u0000/g, (_, i) => held[Number(i)]);
  }
  return html;
}

function quoteLines(html) {
  const out = [];
  for (const line of html.split("\n")) {
    const quote = line.match(/^&gt;\s?(.*)$/);
    const last = out[out.length - 1];
    if (quote && last && last.quote) last.lines.push(quote[1]);
    else out.push({ quote: !!quote, lines: [quote ? quote[1] : line] });
  }
  let result = "";
  out.forEach((part, i) => {
    if (part.quote) result += `<blockquote>${part.lines.join("<br>")}</blockquote>`;
    else result += part.lines.join("<br>") + (i < out.length - 1 && !out[i + 1].quote ? "<br>" : "");
  });
  return result;
}

function textObject(obj) {
  if (!obj) return "";
  return obj.type === "mrkdwn" ? mrkdwn(obj.text) : plainText(obj);
}

// --- DOM helpers ---

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "html") node.innerHTML = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

function clock(ts) {
  return new Date(parseFloat(ts) * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function byTs(a, b) {
  return parseFloat(a.ts) - parseFloat(b.ts);
}

function toast(text, kind = "error") {
  const node = h("div", { class: "toast " + kind, role: "status", text });
  document.getElementById("toasts").append(node);
  setTimeout(() => node.remove(), 7000);
}

async function post(path, body) {
  let data;
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    data = await response.json().catch(() => ({ ok: false, error: `HTTP ${response.status}` }));
  } catch (err) {
    data = { ok: false, error: "the sandbox is not reachable" };
  }
  if (!data.ok) toast(data.error || "the request failed");
  return data;
}

// A delivery Slack could not get acked: Slack shows the person a warning like this.
function reportDelivery(data, what) {
  const d = data && data.delivery;
  if (d && (!d.acked || d.status !== 200)) {
    toast(`${what} failed: the app did not respond${d.error ? ` (${d.error})` : ""}`);
    return false;
  }
  return true;
}

// --- Block Kit ---

function renderBlocks(blocks, ctx) {
  return blocks.map((block) => renderBlock(block, ctx));
}

function renderBlock(block, ctx) {
  switch (block.type) {
    case "header":
      return h("div", { class: "b-header", html: plainText(block.text) });
    case "section": {
      const node = h("div", { class: "b-section" });
      const main = h("div", { class: "b-section-main" });
      if (block.text) main.append(h("div", { class: "b-text", html: textObject(block.text) }));
      if (Array.isArray(block.fields) && block.fields.length) {
        main.append(h("div", { class: "b-fields" },
          block.fields.map((f) => h("div", { class: "b-field", html: textObject(f) }))));
      }
      node.append(main);
      if (block.accessory) node.append(h("div", { class: "b-accessory" }, renderElement(block.accessory, block, ctx)));
      return node;
    }
    case "context":
      return h("div", { class: "b-context" }, (block.elements || []).map((e) =>
        e.type === "image"
          ? (safeUrl(e.image_url) ? h("img", { src: safeUrl(e.image_url), alt: e.alt_text || "" }) : null)
          : h("span", { html: textObject(e) })));
    case "divider":
      return h("hr", { class: "b-divider" });
    case "actions":
      return h("div", { class: "b-actions" }, (block.elements || []).map((e) => renderElement(e, block, ctx)));
    case "image":
      return h("figure", { class: "b-image" },
        block.title ? h("figcaption", { html: plainText(block.title) }) : null,
        safeUrl(block.image_url) ? h("img", { src: safeUrl(block.image_url), alt: block.alt_text || "" }) : null);
    case "input":
      return ctx.modal ? renderInput(block, ctx) : unsupported(`input block`);
    default:
      return unsupported(`${block.type} block`);
  }
}

function unsupported(what) {
  return h("div", { class: "b-unsupported", text: `[${what}: not shown in the sandbox]` });
}

function renderElement(element, block, ctx) {
  if (element.type === "button") return renderButton(element, block, ctx);
  if (element.type === "image" && safeUrl(element.image_url)) {
    return h("img", { class: "b-thumb", src: safeUrl(element.image_url), alt: element.alt_text || "" });
  }
  const label = element.placeholder ? element.placeholder.text : element.type;
  return h("button", { class: "b-button", disabled: true, title: `${element.type} is not emulated`, text: label + " ▾" });
}

function renderButton(element, block, ctx) {
  const style = element.style === "primary" || element.style === "danger" ? " " + element.style : "";
  const button = h("button", {
    type: "button",
    class: "b-button" + style,
    "data-action-id": element.action_id,
    html: plainText(element.text),
  });
  if (!ctx.clickable) {
    button.disabled = true;
    button.title = ctx.modal ? "buttons inside modals are not emulated" : "buttons on ephemeral messages are not emulated";
    return button;
  }
  button.addEventListener("click", async () => {
    if (element.confirm && !(await confirmDialog(element.confirm))) return;
    const link = safeUrl(element.url);
    if (link) window.open(link, "_blank", "noopener");
    button.classList.add("busy");
    button.disabled = true;
    const data = ctx.home
      ? await post("/sandbox/ui/home_click", { user: me, action_id: element.action_id, value: element.value ?? null })
      : await post("/sandbox/ui/click", {
        user: me, channel: ctx.channel, ts: ctx.ts, action_id: element.action_id, value: element.value ?? null,
      });
    if (data.ok) reportDelivery(data, `“${element.text.text}”`);
    // The message is replaced when the app updates it; until then the button works again.
    button.classList.remove("busy");
    button.disabled = false;
  });
  return button;
}

function confirmDialog(confirm) {
  return new Promise((resolve) => {
    const root = document.getElementById("confirm-root");
    const done = (answer) => {
      root.replaceChildren();
      resolve(answer);
    };
    const danger = confirm.style === "danger" ? " danger" : " primary";
    const dialog = h("div", { class: "overlay", onclick: (e) => e.target === e.currentTarget && done(false) },
      h("div", { class: "modal confirm", role: "alertdialog", "aria-modal": "true", "aria-label": confirm.title ? confirm.title.text : "Are you sure?" },
        h("header", {}, h("h2", { html: plainText(confirm.title || { text: "Are you sure?" }) })),
        h("div", { class: "modal-body", html: textObject(confirm.text) }),
        h("footer", {},
          h("button", { type: "button", class: "b-button", onclick: () => done(false), html: plainText(confirm.deny || { text: "Cancel" }) }),
          h("button", { type: "button", class: "b-button" + danger, onclick: () => done(true), html: plainText(confirm.confirm || { text: "Confirm" }) }))));
    root.replaceChildren(dialog);
    dialog.querySelector("footer .b-button:last-child").focus();
  });
}

// --- messages ---

function avatar(id, isBot) {
  const name = userName(id) || "?";
  let hue = 0;
  for (const c of id) hue = (hue * 31 + c.charCodeAt(0)) % 360;
  return h("div", {
    class: "avatar" + (isBot ? " bot" : ""),
    style: isBot ? null : `background: hsl(${hue} 45% 42%)`,
    text: name[0].toUpperCase(),
    "aria-hidden": "true",
  });
}

function renderMessage(m, ctx) {
  const node = h("div", { class: "msg" + (ctx.ephemeral ? " ephemeral" : ""), "data-testid": ctx.ephemeral ? "ephemeral" : "message", "data-ts": m.ts });
  const body = h("div", { class: "msg-body" });
  if (ctx.ephemeral) {
    body.append(h("div", { class: "only-you", text: "👁 Only visible to you" }));
  }
  const author = ctx.ephemeral ? state.bot.id : m.user;
  body.append(h("div", { class: "msg-meta" },
    h("span", { class: "author", text: userName(author) || author }),
    m.bot || ctx.ephemeral ? h("span", { class: "app-badge", text: "APP" }) : null,
    h("time", { text: clock(m.ts), title: m.ts })));
  const content = h("div", { class: "msg-content" });
  const blockCtx = { channel: ctx.channel, ts: m.ts, clickable: !ctx.ephemeral };
  if (m.blocks && m.blocks.length) content.append(...renderBlocks(m.blocks, blockCtx));
  else content.append(h("div", { class: "b-text", html: mrkdwn(m.text) }));
  if (m.edited) {
    const texts = content.querySelectorAll(".b-text");
    (texts.length ? texts[texts.length - 1] : content).append(h("span", { class: "edited", text: " (edited)" }));
  }
  body.append(content);
  if (!ctx.ephemeral) {
    if (m.reactions.length) {
      body.append(h("div", { class: "reactions" }, m.reactions.map((r) =>
        h("button", {
          type: "button",
          class: "reaction" + (r.mine ? " mine" : ""),
          title: `:${r.name}:`,
          onclick: () => react(ctx.channel, m.ts, r.name),
        }, h("span", { html: emojify(`:${escapeHtml(r.name)}:`) }), h("span", { class: "count", text: String(r.count) })))));
    }
    if (ctx.replies && ctx.replies.length) {
      const last = ctx.replies[ctx.replies.length - 1];
      const people = [...new Set(ctx.replies.map((r) => r.user))].slice(0, 4);
      body.append(h("button", { type: "button", class: "replies", onclick: () => openThread(m.ts) },
        h("span", { class: "faces" }, people.map((p) => avatar(p, p === state.bot.id))),
        h("span", { class: "count", text: `${ctx.replies.length} ${ctx.replies.length === 1 ? "reply" : "replies"}` }),
        h("span", { class: "last", text: `Last reply ${clock(last.ts)}` })));
    }
    const actions = h("div", { class: "msg-actions" },
      h("button", { type: "button", class: "icon", title: "Add reaction", "aria-label": "Add reaction", text: "☺+", onclick: (e) => picker(e.currentTarget, ctx.channel, m.ts) }),
      ctx.inThread ? null : h("button", { type: "button", class: "icon", title: "Reply in thread", "aria-label": "Reply in thread", text: "💬", onclick: () => openThread(m.ts) }));
    node.append(actions);
  }
  node.prepend(avatar(author, m.bot || ctx.ephemeral));
  node.append(body);
  return node;
}

function picker(anchor, channel, ts) {
  document.querySelectorAll(".picker").forEach((p) => p.remove());
  const box = h("div", { class: "picker" }, PICKER.map((name) =>
    h("button", { type: "button", class: "icon", title: `:${name}:`, text: EMOJI[name], onclick: () => { box.remove(); react(channel, ts, name); } })));
  anchor.parentElement.append(box);
  setTimeout(() => document.addEventListener("click", () => box.remove(), { once: true }));
}

async function react(channel, ts, name) {
  await post("/sandbox/ui/react", { user: me, channel, ts, name });
}

// Keep unchanged nodes: re-rendering everything would reset hover states, focus and scroll.
function reconcile(container, items) {
  const existing = new Map([...container.children].map((c) => [c.dataset.key, c]));
  let previous = null;
  for (const item of items) {
    let node = existing.get(item.key);
    existing.delete(item.key);
    if (!node || node.dataset.sig !== item.sig) {
      const fresh = item.build();
      fresh.dataset.key = item.key;
      fresh.dataset.sig = item.sig;
      if (node) node.replaceWith(fresh);
      node = fresh;
    }
    const wanted = previous ? previous.nextSibling : container.firstChild;
    if (wanted !== node) container.insertBefore(node, wanted);
    previous = node;
  }
  existing.forEach((node) => node.remove());
}

function renderList(container, entries, ctx, intro) {
  const nearBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 120;
  const items = intro ? [intro] : [];
  for (const entry of entries) {
    const replies = entry.replies || null;
    items.push({
      key: (entry.ephemeral ? "e" : "m") + entry.message.ts,
      sig: JSON.stringify([me, entry.message, replies && replies.map((r) => [r.ts, r.user]), ctx.inThread]),
      build: () => renderMessage(entry.message, { ...ctx, ephemeral: entry.ephemeral, replies }),
    });
  }
  reconcile(container, items);
  if (nearBottom || container.dataset.for !== ctx.key) container.scrollTop = container.scrollHeight;
  container.dataset.for = ctx.key;
}

// --- the page ---

function render() {
  if (!state) return;
  if (current !== HOME && !state.channels.some((c) => c.id === current)) {
    const ops = state.channels.find((c) => c.name === "ops");
    current = (ops || state.channels[0]).id;
  }
  const messages = current === HOME ? [] : state.messages[current] || [];
  if (threadTs && !messages.some((m) => m.ts === threadTs)) threadTs = null;
  for (const c of state.channels) {
    const list = state.messages[c.id] || [];
    const latest = list.length ? list[list.length - 1].ts : "0";
    if (!(c.id in seen) || c.id === current) seen[c.id] = latest;
  }
  renderTopbar();
  renderSidebar();
  const home = current === HOME;
  document.getElementById("messages").hidden = home;
  document.getElementById("composer").hidden = home;
  document.querySelector(".composer-hint").hidden = home;
  document.getElementById("home").hidden = !home;
  if (home) renderHome();
  else renderChannel(messages);
  renderThread(messages);
  renderModal();
}

function renderTopbar() {
  const model = document.getElementById("model");
  model.textContent = state.info.model ? `Answering: ${state.info.model}` : "";
  const select = document.getElementById("acting");
  const options = state.users.map((u) => `${u.id}:${u.name}:${u.role}`).join("|");
  if (select.dataset.options !== options) {
    select.replaceChildren(...state.users.map((u) =>
      h("option", { value: u.id, text: u.role ? `${u.name} (${u.role})` : u.name })));
    select.dataset.options = options;
  }
  select.value = me;
  const you = state.users.find((u) => u.id === me);
  document.getElementById("you").textContent = you ? `You are @${you.name}${you.role ? ` · ${you.role}` : ""}` : "";
}

function renderSidebar() {
  const entry = (c) => {
    const list = state.messages[c.id] || [];
    const unread = list.length && parseFloat(list[list.length - 1].ts) > parseFloat(seen[c.id] || "0");
    return h("li", {},
      h("button", {
        type: "button",
        class: "nav-item" + (c.id === current ? " active" : "") + (unread ? " unread" : ""),
        "data-channel": c.id,
        onclick: () => selectChannel(c.id),
      }, h("span", { class: "sigil", text: c.is_im ? "●" : "#" }), h("span", { text: c.name }), c.is_im ? h("span", { class: "app-badge", text: "APP" }) : null));
  };
  document.getElementById("apps").replaceChildren(h("li", {},
    h("button", {
      type: "button",
      class: "nav-item" + (current === HOME ? " active" : ""),
      "data-channel": HOME,
      onclick: () => selectChannel(HOME),
    }, h("span", { class: "sigil", text: "⌂" }), h("span", { text: `${state.bot.name} · Home` }))));
  document.getElementById("channels").replaceChildren(...state.channels.filter((c) => !c.is_im).map(entry));
  document.getElementById("dms").replaceChildren(...state.channels.filter((c) => c.is_im).map(entry));
}

function renderChannel(messages) {
  const channel = state.channels.find((c) => c.id === current);
  const title = channel.is_im ? channel.name : `# ${channel.name}`;
  document.getElementById("channel-name").textContent = title;
  document.querySelector("#composer textarea").placeholder = channel.is_im ? `Message ${channel.name}` : `Message #${channel.name}`;
  const roots = messages.filter((m) => !m.thread_ts);
  const entries = roots.map((m) => ({ message: m, replies: messages.filter((r) => r.thread_ts === m.ts) }));
  for (const e of state.ephemerals) {
    if (e.channel === current && !e.thread_ts) entries.push({ message: { ...e, user: state.bot.id, bot: true, reactions: [] }, ephemeral: true });
  }
  entries.sort((a, b) => byTs(a.message, b.message));
  const intro = {
    key: "intro",
    sig: current,
    build: () => h("div", { class: "intro" },
      h("h2", { text: title }),
      h("p", { text: channel.is_im
        ? `This is your direct message with ${channel.name}. Ask it anything, e.g. “list clusters”.`
        : `This is the very beginning of #${channel.name}. Mention @bot or use /ask to talk to the app.` })),
  };
  renderList(document.getElementById("messages"), entries, { channel: current, key: current, inThread: false }, intro);
}

// The app's Home tab, as the app last published it for this person.
function renderHome() {
  document.getElementById("channel-name").textContent = `${state.bot.name} · Home`;
  const pane = document.getElementById("home");
  const shown = JSON.stringify([me, state.home]);
  if (shown === shownHome) return;
  shownHome = shown;
  pane.replaceChildren(...(state.home
    ? renderBlocks(state.home, { clickable: true, home: true })
    : [h("p", { class: "intro", text: "Opening the Home tab…" })]));
}

function renderThread(messages) {
  const pane = document.getElementById("thread");
  if (!threadTs) {
    pane.hidden = true;
    return;
  }
  pane.hidden = false;
  const channel = state.channels.find((c) => c.id === current);
  document.getElementById("thread-channel").textContent = channel.is_im ? channel.name : `#${channel.name}`;
  const entries = messages
    .filter((m) => m.ts === threadTs || m.thread_ts === threadTs)
    .map((m) => ({ message: m }));
  for (const e of state.ephemerals) {
    if (e.channel === current && e.thread_ts === threadTs) entries.push({ message: { ...e, user: state.bot.id, bot: true, reactions: [] }, ephemeral: true });
  }
  entries.sort((a, b) => byTs(a.message, b.message));
  renderList(document.getElementById("thread-messages"), entries, { channel: current, key: current + threadTs, inThread: true });
}

function selectChannel(id) {
  current = id;
  threadTs = null;
  remember("channel", id);
  render();
  if (id === HOME) openHome();
  else document.querySelector("#composer textarea").focus();
}

// Opening the tab is what makes the app publish it (app_home_opened), as in Slack.
async function openHome() {
  const data = await post("/sandbox/ui/home", { user: me });
  if (data.ok) reportDelivery(data, "Opening the Home tab");
}

function openThread(ts) {
  threadTs = ts;
  render();
  document.querySelector("#thread-composer textarea").focus();
}

// --- modals ---

function renderModal() {
  const root = document.getElementById("modal-root");
  const v = state.view;
  if (!v) {
    root.replaceChildren();
    shownView = "";
    return;
  }
  const key = `${v.id}:${v.view.hash}`;
  if (key === shownView) return;
  // An update of the same modal keeps what the person typed, as Slack does.
  const typed = shownView.startsWith(v.id + ":") ? typedValues(root) : {};
  shownView = key;
  const view = v.view;
  const close = () => closeModal(v.id);
  const modal = h("div", { class: "modal", role: "dialog", "aria-modal": "true", "aria-label": view.title.text, "data-testid": "modal" },
    h("header", {},
      h("h2", { html: plainText(view.title) }),
      h("button", { type: "button", class: "icon", "aria-label": "Close", text: "✕", onclick: close })),
    h("div", { class: "modal-body" }, renderBlocks(view.blocks || [], { modal: true, clickable: false, typed })),
    h("div", { class: "modal-error", role: "alert", hidden: true }),
    h("footer", {},
      h("button", { type: "button", class: "b-button", onclick: close, html: plainText(view.close || { text: "Cancel" }) }),
      view.submit ? h("button", { type: "submit", class: "b-button primary", html: plainText(view.submit) }) : null));
  const form = h("form", { class: "overlay", novalidate: true }, modal);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitModal(v.id, modal);
  });
  root.replaceChildren(form);
  const first = modal.querySelector("[data-control]");
  if (first) first.focus();
}

function renderInput(block, ctx) {
  const element = block.element || {};
  const id = `input-${block.block_id}`;
  const box = h("div", { class: "b-input", "data-block-id": block.block_id, "data-action-id": element.action_id, "data-type": element.type });
  box.append(h("label", { for: id },
    h("span", { html: plainText(block.label) }),
    block.optional ? h("span", { class: "optional", text: " (optional)" }) : null));
  const previous = ctx.typed[`${block.block_id}/${element.action_id}`];
  let control;
  if (element.type === "plain_text_input") {
    control = h(element.multiline ? "textarea" : "input", {
      id, "data-control": true,
      rows: element.multiline ? 4 : null,
      placeholder: element.placeholder ? element.placeholder.text : null,
      maxlength: element.max_length || null,
    });
    control.value = previous ?? element.initial_value ?? "";
  } else if (element.type === "static_select") {
    const option = (o) => h("option", { value: o.value, text: o.text.text });
    control = h("select", { id, "data-control": true },
      h("option", { value: "", text: element.placeholder ? element.placeholder.text : "Choose an option" }),
      (element.options || []).map(option),
      (element.option_groups || []).map((g) => h("optgroup", { label: g.label.text }, g.options.map(option))));
    control.options_ = [...(element.options || []), ...(element.option_groups || []).flatMap((g) => g.options)];
    control.value = previous ?? (element.initial_option ? element.initial_option.value : "");
  } else {
    return h("div", { class: "b-input" }, box.firstChild, unsupported(`${element.type} input`));
  }
  box.append(control);
  if (block.hint) box.append(h("div", { class: "hint", html: plainText(block.hint) }));
  box.append(h("div", { class: "field-error", role: "alert", hidden: true }));
  return box;
}

function typedValues(root) {
  const typed = {};
  root.querySelectorAll(".b-input[data-block-id]").forEach((box) => {
    const control = box.querySelector("[data-control]");
    if (control) typed[`${box.dataset.blockId}/${box.dataset.actionId}`] = control.value;
  });
  return typed;
}

// state.values as Slack sends it: block_id -> action_id -> the element's state; empty inputs
// are null, as in Slack.
function viewValues(modal) {
  const values = {};
  const problems = {};
  modal.querySelectorAll(".b-input[data-block-id]").forEach((box) => {
    const { blockId, actionId, type } = box.dataset;
    const control = box.querySelector("[data-control]");
    const optional = box.querySelector(".optional") !== null;
    let entry;
    let empty;
    if (type === "plain_text_input") {
      entry = { type, value: control.value === "" ? null : control.value };
      empty = control.value.trim() === "";
    } else {
      const chosen = control.options_.find((o) => o.value === control.value);
      entry = { type, selected_option: chosen ? { text: chosen.text, value: chosen.value } : null };
      empty = !chosen;
    }
    if (empty && !optional) problems[blockId] = "Please complete this required field.";
    values[blockId] = { [actionId]: entry };
  });
  return { values, problems };
}

function showErrors(modal, errors) {
  const general = modal.querySelector(".modal-error");
  general.hidden = true;
  const unplaced = [];
  modal.querySelectorAll(".field-error").forEach((e) => { e.hidden = true; });
  for (const [blockId, text] of Object.entries(errors || {})) {
    const box = [...modal.querySelectorAll(".b-input")].find((b) => b.dataset.blockId === blockId);
    const slot = box && box.querySelector(".field-error");
    if (slot) {
      slot.textContent = text;
      slot.hidden = false;
    } else {
      unplaced.push(text);
    }
  }
  if (unplaced.length) {
    general.textContent = unplaced.join(" ");
    general.hidden = false;
  }
}

async function submitModal(viewId, modal) {
  const { values, problems } = viewValues(modal);
  showErrors(modal, problems);
  if (Object.keys(problems).length) return;
  const submit = modal.querySelector("footer [type=submit]");
  submit.disabled = true;
  submit.classList.add("busy");
  const data = await post("/sandbox/ui/submit", { user: me, view_id: viewId, values });
  submit.disabled = false;
  submit.classList.remove("busy");
  if (!data.ok) return;
  const d = data.delivery;
  if (!d.acked || d.status !== 200) {
    showErrors(modal, { "": "We had some trouble connecting. Try again?" });
  } else if (data.errors) {
    showErrors(modal, data.errors);
  }
}

async function closeModal(viewId) {
  const data = await post("/sandbox/ui/close", { user: me, view_id: viewId });
  if (data.ok && data.delivery) reportDelivery(data, "Closing the modal");
}

// --- composer ---

function composer(form, threadOf) {
  const input = form.querySelector("textarea");
  const grow = () => {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 200) + "px";
  };
  input.addEventListener("input", grow);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || !state) return;
    const body = { user: me, channel: current, text };
    const thread = threadOf();
    if (thread && !text.startsWith("/")) body.thread_ts = thread;
    input.value = "";
    grow();
    const data = await post("/sandbox/ui/say", body);
    if (!data.ok) input.value = text;
    else if (data.delivery) reportDelivery(data, text.split(/\s/)[0]);
  });
}

// --- live updates ---

function connect() {
  if (source) source.close();
  const live = document.getElementById("live");
  source = new EventSource(`/sandbox/ui/events?user=${encodeURIComponent(me)}`);
  source.addEventListener("open", () => {
    live.textContent = "live";
    live.className = "live on";
  });
  source.addEventListener("error", () => {
    live.textContent = "reconnecting…";
    live.className = "live";
  });
  source.addEventListener("state", (e) => {
    state = JSON.parse(e.data);
    if (state.me !== me) {
      me = state.me;
      remember("user", me);
    }
    render();
  });
}

function actAs(user) {
  me = user;
  remember("user", me);
  shownView = "";
  connect();
  if (current === HOME) openHome();
}

document.addEventListener("DOMContentLoaded", () => {
  composer(document.getElementById("composer"), () => null);
  composer(document.getElementById("thread-composer"), () => threadTs);
  document.getElementById("acting").addEventListener("change", (e) => actAs(e.target.value));
  document.getElementById("thread-close").addEventListener("click", () => {
    threadTs = null;
    render();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state && state.view && !document.getElementById("confirm-root").children.length) {
      closeModal(state.view.id);
    }
  });
  // A permalink (/archives/…) lands here with the message's channel and thread.
  const asked = new URLSearchParams(location.search);
  if (asked.get("channel")) {
    current = asked.get("channel");
    threadTs = asked.get("thread");
    history.replaceState(null, "", "/");
  }
  connect();
  if (current === HOME) openHome();
});
