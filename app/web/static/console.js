// The agent console: sign in, pick a queue, claim the next item under a lease, act on it;
// and the triage view, where one click assigns an uncertain item to a queue.
import {
  $, QUEUES, ago, api, clear, clock, explain, h, number, percent, say, safeHref,
  signIn, typing, unavailable, unwarn, warn, when,
} from "./common.js";

const HEARTBEAT_WHEN_LEFT_MS = 2 * 60 * 1000;   // renew when this little of the lease is left ...
const ACTIVE_WITHIN_MS = 5 * 60 * 1000;         // ... and the agent did something recently

const state = {
  me: null,
  current: null,        // {entry, item}
  leaseTimer: null,
  lastActivity: Date.now(),
  renewing: false,
  triageCursor: null,
};

function workQueues() {
  const scope = state.me.queues;
  return QUEUES.filter((queue) => scope === null || scope === undefined || scope.includes(queue));
}

function canTriage() {
  const scope = state.me.queues;
  return state.me.role !== "viewer" && (scope === null || scope === undefined || scope.includes("triage"));
}

// ---- queue picker and depth -------------------------------------------------------------

function fillQueuePicker() {
  const select = $("queue");
  const remembered = sessionStorage.getItem("andon.queue");
  clear(select);
  for (const queue of workQueues()) select.append(h("option", { value: queue }, queue));
  if (remembered && workQueues().includes(remembered)) select.value = remembered;
  select.onchange = () => sessionStorage.setItem("andon.queue", select.value);
  if (!workQueues().length) {
    $("next").disabled = true;
    $("empty-text").textContent = "Your key has no queue in scope.";
  }
  if (state.me.role === "viewer") {
    $("next").disabled = true;
    $("empty-text").textContent = "A viewer key can read the queues but not claim from them.";
  }
}

async function refreshDepths() {
  const body = $("depths").tBodies[0];
  try {
    const rows = await api("GET", "/queues");
    const visible = new Set([...workQueues(), ...(canTriage() ? ["triage"] : [])]);
    clear(body);
    for (const row of rows.filter((r) => visible.has(r.queue))) {
      body.append(
        h("tr", { dataset: { queue: row.queue } },
          h("th", { scope: "row" }, row.queue),
          h("td", {}, number(row.open)),
          h("td", {}, number(row.claimed)),
          h("td", {}, ago(row.oldest_open_at)),
        ),
      );
      if (row.queue === "triage") $("triage-count").textContent = row.open ? String(row.open) : "";
    }
  } catch (error) {
    if (error.status === 401) return reauthenticate(error);
    clear(body).append(h("tr", {}, h("td", { colspan: 4 }, explain(error, "Loading the queues"))));
  }
}

// ---- claim and show ---------------------------------------------------------------------

async function claimNext() {
  if ($("next").disabled) return;
  const queue = $("queue").value;
  if (!queue) return;
  unwarn();
  if (state.current) {
    warn("Finish the item you hold first: resolve, re-route, dismiss or release it.");
    return;
  }
  $("next").disabled = true;
  try {
    const claimed = await api("POST", `/queues/${encodeURIComponent(queue)}/claim`);
    if (!claimed) {
      showEmpty(`The ${queue} queue is empty. Well done.`);
      say(`The ${queue} queue is empty.`);
    } else {
      show(claimed.entry, claimed.item);
      say(`Claimed an item from ${queue}.`);
    }
  } catch (error) {
    await failed(error, "Claiming");
  } finally {
    $("next").disabled = state.me.role === "viewer";
    refreshDepths();
  }
}

function showEmpty(message) {
  stopLease();
  state.current = null;
  $("item").hidden = true;
  $("empty").hidden = false;
  $("empty-text").textContent = message;
}

function show(entry, item) {
  state.current = { entry, item };
  $("empty").hidden = true;
  const article = $("item");
  article.hidden = false;
  article.dataset.entryId = entry.id;
  article.dataset.itemId = item.id;

  $("item-queue").textContent = entry.queue;
  $("item-channel").textContent = item.channel;
  $("item-kind").textContent = item.kind;
  $("item-created").textContent = when(item.created_at);
  $("item-created").setAttribute("datetime", item.created_at);
  $("item-title").textContent = item.title || `${item.kind} from ${authorName(item.author)}`;
  $("item-text").textContent = item.text;
  const link = $("item-url");
  const href = safeHref(item.url);
  link.hidden = !href;
  if (href) link.setAttribute("href", href);
  else link.removeAttribute("href");

  $("item-author").textContent = authorName(item.author);
  $("item-reach").textContent =
    item.author && item.author.followers !== null && item.author.followers !== undefined
      ? `${number(item.author.followers)} followers`
      : "unknown";
  $("item-metrics").textContent = metricsText(item.metrics);
  showSentiment(item.sentiment);
  const route = item.route;
  $("item-route").textContent = route ? `${route.queue}${route.triage ? " (uncertain: triage)" : ""}` : "not classified";
  $("item-confidence").textContent = route ? percent(route.confidence) : "–";
  $("item-priority").textContent =
    entry.priority !== undefined && entry.priority !== null ? number(entry.priority, 2) : "–";
  $("item-reason").textContent = route ? route.reason : "";
  scoreBars($("item-scores"), route ? route.scores : {}, route ? route.queue : null);
  breakdown($("item-breakdown"), entry.priority_breakdown || {});

  fillReroute(entry.queue);
  $("sentiment-label").value = item.sentiment ? item.sentiment.label : "neutral";
  for (const id of ["note", "reroute-reason", "sentiment-reason", "dismiss-reason"]) $(id).value = "";
  setActionsEnabled(true);
  startLease(entry.lease_expires_at);
  loadThread(item);
  showDuplicates(item);
  $("item-title").setAttribute("tabindex", "-1");
  $("item-title").focus();
}

function authorName(author) {
  if (!author) return "unknown";
  const handle = author.handle ? `@${author.handle.replace(/^@/, "")}` : null;
  if (author.display_name && handle) return `${author.display_name} (${handle})`;
  return author.display_name || handle || author.id || "unknown";
}

function metricsText(metrics) {
  const parts = [];
  for (const name of ["votes", "likes", "reposts", "replies", "comments"]) {
    if (metrics && typeof metrics[name] === "number") parts.push(`${number(metrics[name])} ${name}`);
  }
  return parts.length ? parts.join(" · ") : "none";
}

function showSentiment(sentiment) {
  const node = clear($("item-sentiment"));
  if (!sentiment) {
    node.textContent = "not scored";
    return;
  }
  node.append(
    h("span", { class: `chip sentiment-${sentiment.label}` }, sentiment.label),
    ` ${sentiment.compound >= 0 ? "+" : ""}${number(sentiment.compound, 2)}`,
  );
}

function scoreBars(list, scores, best) {
  clear(list);
  const ranked = Object.entries(scores || {}).sort((a, b) => b[1] - a[1]);
  for (const [queue, score] of ranked) {
    const bar = h("span", { class: `bar q-${queue}` });
    bar.style.width = `${Math.max(2, Math.round(score * 100))}%`;
    list.append(
      h("li", { class: queue === best ? "best" : "" },
        h("span", { class: "bar-label" }, queue),
        h("span", { class: "bar-track", "aria-hidden": "true" }, bar),
        h("span", { class: "bar-value" }, percent(score)),
      ),
    );
  }
}

function breakdown(list, parts) {
  clear(list);
  const entries = Object.entries(parts);
  if (!entries.length) return;
  list.append(h("li", { class: "breakdown-title" }, "Priority from:"));
  for (const [name, value] of entries) {
    list.append(h("li", {}, `${name} ${typeof value === "number" ? number(value, 2) : String(value)}`));
  }
}

function fillReroute(current) {
  const select = clear($("reroute-queue"));
  for (const queue of QUEUES.filter((q) => q !== current)) select.append(h("option", { value: queue }, queue));
}

async function loadThread(item) {
  const list = clear($("thread"));
  if (!item.thread_id) {
    list.append(h("li", { class: "muted" }, "Not part of a thread."));
    return;
  }
  try {
    const page = await api("GET", `/items?thread_id=${encodeURIComponent(item.thread_id)}&limit=20`);
    const others = page.items.filter((other) => other.id !== item.id && other.thread_id === item.thread_id);
    if (!others.length) list.append(h("li", { class: "muted" }, "No other messages in this thread yet."));
    for (const other of others.reverse()) list.append(miniItem(other));
  } catch (error) {
    list.append(h("li", { class: "muted" }, explain(error, "Loading the thread")));
  }
}

async function showDuplicates(item) {
  const list = clear($("dupes"));
  if (!("dedupe_group_id" in item)) {
    unavailable(list, "Duplicate detection");
    return;
  }
  if (item.dedupe_group_id === null || item.dedupe_group_id === undefined) {
    list.append(h("li", { class: "muted" }, "No duplicates found."));
    return;
  }
  try {
    const page = await api("GET", `/items?dedupe_group_id=${encodeURIComponent(item.dedupe_group_id)}&limit=20`);
    const others = page.items.filter((other) => other.id !== item.id);
    if (item.dedupe_reason) list.append(h("li", { class: "muted" }, `Grouped as ${item.dedupe_reason} duplicates; the demand counts once.`));
    if (!others.length) list.append(h("li", { class: "muted" }, "No other items in the group."));
    for (const other of others) list.append(miniItem(other));
  } catch (error) {
    list.append(h("li", { class: "muted" }, explain(error, "Loading the duplicates")));
  }
}

function miniItem(other) {
  return h("li", {},
    h("span", { class: "mini-meta" }, `${other.channel || ""} · ${authorName(other.author)} · ${when(other.created_at)}`),
    h("span", { class: "mini-text" }, other.text || other.title || ""),
  );
}

// ---- the lease --------------------------------------------------------------------------

function startLease(expiresAt) {
  stopLease();
  state.current.expiresAt = expiresAt ? new Date(expiresAt).getTime() : null;
  tick();
  state.leaseTimer = setInterval(tick, 1000);
}

function stopLease() {
  clearInterval(state.leaseTimer);
  state.leaseTimer = null;
}

function tick() {
  const current = state.current;
  const label = $("lease-left");
  if (!current || !current.expiresAt) {
    label.textContent = "–";
    return;
  }
  const left = current.expiresAt - Date.now();
  if (left <= 0) {
    label.textContent = "expired";
    $("lease").classList.add("expired");
    stopLease();
    setActionsEnabled(false);
    warn("The lease expired and the item went back to the queue. Take the next item.");
    state.current = null;
    return;
  }
  const minutes = Math.floor(left / 60000);
  const seconds = Math.floor((left % 60000) / 1000);
  label.textContent = `${minutes}:${String(seconds).padStart(2, "0")}`;
  $("lease").classList.toggle("low", left < HEARTBEAT_WHEN_LEFT_MS);
  label.setAttribute("aria-label", `${minutes} minutes ${seconds} seconds left on the lease`);
  if (left < HEARTBEAT_WHEN_LEFT_MS && Date.now() - state.lastActivity < ACTIVE_WITHIN_MS) heartbeat(true);
}

async function heartbeat(automatic = false) {
  const current = state.current;
  if (!current || state.renewing) return;
  state.renewing = true;
  try {
    const entry = await api("POST", `/entries/${current.entry.id}/heartbeat`);
    current.entry = { ...current.entry, ...entry };
    current.expiresAt = new Date(entry.lease_expires_at).getTime();
    $("lease").classList.remove("low", "expired");
    tick();
    if (!automatic) say(`Lease extended until ${clock(entry.lease_expires_at)}.`);
  } catch (error) {
    await failed(error, "Extending the lease");
  } finally {
    state.renewing = false;
  }
}

function setActionsEnabled(enabled) {
  for (const control of $("item").querySelectorAll(".actions button, .actions input, .actions select, .actions textarea, #heartbeat")) {
    control.disabled = !enabled;
  }
}

// ---- actions ----------------------------------------------------------------------------

async function act(path, body, done) {
  const current = state.current;
  if (!current) return;
  unwarn();
  setActionsEnabled(false);
  try {
    const result = await api("POST", `/entries/${current.entry.id}/${path}`, body);
    done(result);
  } catch (error) {
    setActionsEnabled(Boolean(state.current));
    await failed(error, "That action");
  }
}

function finish(message) {
  showEmpty("Done. Press Next item for the next one.");
  say(message);
  refreshDepths();
  $("next").focus();
}

function bindActions() {
  $("resolve-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const note = $("note").value.trim();
    if (!note) {
      warn("Write a resolution note: what was done for the customer.");
      $("note").focus();
      return;
    }
    act("resolve", { note }, () => finish("Resolved."));
  });
  $("reroute-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const queue = $("reroute-queue").value;
    const reason = $("reroute-reason").value.trim();
    if (!reason) {
      warn("Say why the item belongs elsewhere: the model learns from it.");
      $("reroute-reason").focus();
      return;
    }
    act("reroute", { queue, reason }, () => finish(`Re-routed to ${queue}. The model will learn from it.`));
  });
  $("sentiment-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const label = $("sentiment-label").value;
    const reason = $("sentiment-reason").value.trim() || null;
    act("sentiment", { label, reason }, () => {
      const item = state.current.item;
      item.sentiment = { label, compound: item.sentiment ? item.sentiment.compound : 0 };
      showSentiment(item.sentiment);
      setActionsEnabled(true);
      say(`Sentiment corrected to ${label}.`);
    });
  });
  $("dismiss-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = $("dismiss-reason").value.trim();
    if (!reason) {
      warn("Say why the item is dismissed (spam, noise, duplicate).");
      $("dismiss-reason").focus();
      return;
    }
    act("dismiss", { reason }, () => finish("Dismissed."));
  });
  $("release").addEventListener("click", () => act("release", undefined, () => finish("Released back to the queue.")));
  $("heartbeat").addEventListener("click", () => heartbeat(false));
  $("queue-form").addEventListener("submit", (event) => {
    event.preventDefault();
    claimNext();
  });
}

async function failed(error, action) {
  warn(explain(error, action));
  if (error.status === 401) return reauthenticate(error);
  if (error.status === 409 && state.current) {
    // The lease is gone (expired and taken, or resolved elsewhere): nothing left to act on.
    stopLease();
    state.current = null;
    $("item").hidden = true;
    $("empty").hidden = false;
    $("empty-text").textContent = "This item is no longer yours. Press Next item.";
  }
  return undefined;
}

async function reauthenticate(error) {
  state.me = await signIn({ why: explain(error) });
  return undefined;
}

// ---- triage -----------------------------------------------------------------------------

async function loadTriage(more = false) {
  const list = $("triage-list");
  if (!more) {
    clear(list);
    state.triageCursor = null;
  }
  let url = "/items?queue=triage&limit=25";
  if (more && state.triageCursor) url += `&cursor=${encodeURIComponent(state.triageCursor)}`;
  try {
    const page = await api("GET", url);
    for (const item of page.items) list.append(triageRow(item));
    state.triageCursor = page.next_cursor;
    $("triage-more").hidden = !page.next_cursor;
    $("triage-empty").hidden = list.children.length > 0;
  } catch (error) {
    if (error.status === 401) return reauthenticate(error);
    warn(explain(error, "Loading triage"));
  }
  return undefined;
}

function triageRow(item) {
  const scores = (item.route && item.route.scores) || {};
  const ranked = QUEUES.map((queue) => [queue, scores[queue] ?? 0]).sort((a, b) => b[1] - a[1]);
  const buttons = ranked.map(([queue, score], index) =>
    h("button", {
      type: "button",
      class: `guess q-${queue}${index < 2 ? " top" : ""}`,
      dataset: { queue },
      "aria-label": `Send to ${queue} (model score ${percent(score)})`,
      onclick: () => assign(item, queue, row),
    }, h("span", { class: "guess-queue" }, queue), h("span", { class: "guess-score" }, percent(score))),
  );
  const row = h("li", { class: "card triage-item", dataset: { itemId: item.id } },
    h("p", { class: "mini-meta" },
      `${item.channel} · ${authorName(item.author)} · ${when(item.created_at)}`,
      item.sentiment ? ` · ${item.sentiment.label}` : "",
    ),
    item.title ? h("h3", {}, item.title) : null,
    h("p", { class: "text" }, item.text),
    item.route ? h("p", { class: "reason" }, `Model: ${item.route.reason}`) : null,
    h("div", { class: "guesses", role: "group", "aria-label": "Assign to queue" }, buttons),
  );
  return row;
}

async function assign(item, queue, row) {
  if (!item.entry) {
    warn("This item has no open entry; it cannot be assigned from here.");
    return;
  }
  unwarn();
  for (const button of row.querySelectorAll("button")) button.disabled = true;
  try {
    await api("POST", `/entries/${item.entry.id}/reroute`, { queue, reason: "triage" });
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    say(`Sent to ${queue}. Recorded as a label for the model.`);
    $("triage-empty").hidden = $("triage-list").children.length > 0;
    if (next) next.querySelector("button").focus();
    refreshDepths();
  } catch (error) {
    for (const button of row.querySelectorAll("button")) button.disabled = false;
    warn(explain(error, "Assigning"));
    if (error.status === 409) row.remove();
    if (error.status === 401) await reauthenticate(error);
  }
}

// ---- tabs and keys ----------------------------------------------------------------------

function selectTab(name) {
  const work = name === "work";
  $("tab-work").setAttribute("aria-selected", String(work));
  $("tab-triage").setAttribute("aria-selected", String(!work));
  $("tab-work").tabIndex = work ? 0 : -1;
  $("tab-triage").tabIndex = work ? -1 : 0;
  $("panel-work").hidden = !work;
  $("panel-triage").hidden = work;
  if (!work) loadTriage();
  if (window.location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
}

function bindTabs() {
  $("tab-work").addEventListener("click", () => selectTab("work"));
  $("tab-triage").addEventListener("click", () => selectTab("triage"));
  for (const tab of [$("tab-work"), $("tab-triage")]) {
    tab.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      const other = tab.id === "tab-work" ? $("tab-triage") : $("tab-work");
      if (other.hidden) return;
      other.click();
      other.focus();
    });
  }
  $("triage-more").addEventListener("click", () => loadTriage(true));
}

function bindKeys() {
  const note = () => state.current && $("note").focus();
  const keys = {
    n: claimNext,
    h: () => heartbeat(false),
    r: note,
    e: () => state.current && $("reroute-queue").focus(),
    s: () => state.current && $("sentiment-label").focus(),
    d: () => state.current && $("dismiss-reason").focus(),
    l: () => state.current && $("release").click(),
    t: () => !$("tab-triage").hidden && selectTab($("panel-work").hidden ? "work" : "triage"),
    "?": () => {
      const help = $("shortcuts");
      help.open = !help.open;
      help.querySelector("summary").focus();
    },
  };
  document.addEventListener("keydown", (event) => {
    state.lastActivity = Date.now();
    if (typing(event)) {
      if (event.key === "Escape") event.target.blur();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.form) {
        event.preventDefault();
        event.target.form.requestSubmit();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const action = keys[event.key.toLowerCase()] || keys[event.key];
    if (!action || $("app").hidden) return;
    if ($("panel-work").hidden && !["t", "?"].includes(event.key.toLowerCase())) return;
    event.preventDefault();
    action();
  });
  for (const type of ["pointerdown", "input"]) {
    document.addEventListener(type, () => { state.lastActivity = Date.now(); }, { passive: true });
  }
}

async function main() {
  bindActions();
  bindTabs();
  bindKeys();
  state.me = await signIn({ why: "Sign in with your API key to work a queue." });
  if (!state.me) return;
  $("app").hidden = false;
  fillQueuePicker();
  $("tab-triage").hidden = !canTriage();
  refreshDepths();
  selectTab(window.location.hash === "#triage" && canTriage() ? "triage" : "work");
  if (!$("next").disabled) $("next").focus();
}

main().catch((error) => warn(explain(error, "Starting the console")));

