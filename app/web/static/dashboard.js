// The demand dashboard: the signal as charts, with time-range and queue/channel filters that
// live in the address bar (a filtered view can be shared as a link).
import {
  $, ALL_QUEUES, api, clear, explain, forgetKey, h, number, percent, say, safeHref, signIn, unavailable,
  unwarn, warn, when,
} from "./common.js";
import { splitBars, stackedColumns, valueBars } from "./charts.js";

const RANGES = { "24h": 1, "7d": 7, "30d": 30, "90d": 90, "365d": 365 };
const SENTIMENTS = [
  { key: "negative", name: "negative", cls: "s-negative" },
  { key: "neutral", name: "neutral", cls: "s-neutral" },
  { key: "positive", name: "positive", cls: "s-positive" },
];

const state = { signal: null, filters: null, loading: 0 };

function readFilters() {
  const params = new URLSearchParams(window.location.search);
  const range = params.get("range") in RANGES ? params.get("range") : "30d";
  const bucket = ["hour", "day", "week"].includes(params.get("bucket")) ? params.get("bucket") : "auto";
  const queues = params.getAll("queue").filter((q) => ALL_QUEUES.includes(q));
  return { range, bucket, queues: queues.length ? queues : [...ALL_QUEUES], channel: params.get("channel") || "" };
}

function writeFilters(filters) {
  const params = new URLSearchParams();
  if (filters.range !== "30d") params.set("range", filters.range);
  if (filters.bucket !== "auto") params.set("bucket", filters.bucket);
  if (filters.queues.length !== ALL_QUEUES.length) for (const q of filters.queues) params.append("queue", q);
  if (filters.channel) params.set("channel", filters.channel);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
}

function bucketFor(filters) {
  if (filters.bucket !== "auto") return filters.bucket;
  const days = RANGES[filters.range];
  if (days <= 2) return "hour";
  return days <= 90 ? "day" : "week";
}

function buildFilterForm(filters) {
  $("range").value = filters.range;
  $("bucket").value = filters.bucket;
  const fieldset = $("queue-filter");
  for (const queue of ALL_QUEUES) {
    const id = `q-${queue}`;
    const box = h("input", { type: "checkbox", id, name: "queue", value: queue });
    box.checked = filters.queues.includes(queue);
    fieldset.append(h("span", { class: "check" }, box, h("label", { for: id }, h("span", { class: `swatch q-${queue}`, "aria-hidden": "true" }), queue)));
  }
  $("filters").addEventListener("change", () => {
    const queues = [...document.querySelectorAll("#queue-filter input:checked")].map((box) => box.value);
    if (!queues.length) {
      warn("Pick at least one queue.");
      return;
    }
    state.filters = {
      range: $("range").value,
      bucket: $("bucket").value,
      queues,
      channel: $("channel").value,
    };
    writeFilters(state.filters);
    load();
  });
  $("filters").addEventListener("submit", (event) => event.preventDefault());
}

function query(filters, extra = {}) {
  const to = new Date();
  const from = new Date(to.getTime() - RANGES[filters.range] * 86400000);
  const params = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), ...extra });
  if (filters.queues.length !== ALL_QUEUES.length) for (const q of filters.queues) params.append("queue", q);
  if (filters.channel) params.append("channel", filters.channel);
  return params;
}

async function load(retried = false) {
  const filters = state.filters;
  const ticket = ++state.loading;
  unwarn();
  document.body.dataset.loading = "true";
  try {
    const bucket = bucketFor(filters);
    const [signal, channels] = await Promise.all([
      api("GET", `/signal?${query(filters, { bucket })}`),
      api("GET", `/signal?${query({ ...filters, channel: "" }, { bucket: "week", group_by: "channel" })}`),
    ]);
    if (ticket !== state.loading) return;
    state.signal = signal;
    fillChannels(channels, filters.channel);
    drawSignal();
    await Promise.all([loadSpikes(filters), loadThemes(filters), loadIdeas(filters)]);
    say(`Dashboard updated: ${describe(filters)}.`);
  } catch (error) {
    if (error.status === 401 && !retried) {
      forgetKey();
      await signIn({ why: "The dashboard needs a key with at least the viewer role." });
      return load(true);
    }
    warn(explain(error, "Loading the signal"));
  } finally {
    if (ticket === state.loading) {
      document.body.dataset.loading = "false";
      document.body.dataset.ready = "true";
    }
  }
  return undefined;
}

function describe(filters) {
  const range = $("range").selectedOptions[0].textContent.toLowerCase();
  const queues = filters.queues.length === ALL_QUEUES.length ? "all queues" : filters.queues.join(", ");
  return `${range}, ${queues}, ${filters.channel || "all channels"}`;
}

function fillChannels(bySignal, selected) {
  const select = $("channel");
  const names = [...new Set(bySignal.series.map((p) => p.channel).filter(Boolean))].sort();
  if (selected && !names.includes(selected)) names.push(selected);
  clear(select).append(h("option", { value: "" }, "all channels"));
  for (const name of names) select.append(h("option", { value: name }, name));
  select.value = selected;
}

function tickLabel(date, bucket) {
  if (bucket === "hour") return date.toLocaleTimeString(undefined, { hour: "2-digit" });
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

function bucketLabel(date, bucket) {
  if (bucket === "hour") return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  if (bucket === "week") return `week of ${date.toLocaleDateString(undefined, { dateStyle: "medium" })}`;
  return date.toLocaleDateString(undefined, { dateStyle: "medium" });
}

function drawSignal() {
  const signal = state.signal;
  if (!signal) return;
  const queues = state.filters.queues;
  const keys = queues.map((q) => ({ key: q, name: q }));
  const byBucket = new Map();
  for (const point of signal.series) {
    const slot = byBucket.get(point.bucket_start) || {};
    slot[point.queue] = (slot[point.queue] || 0) + point.count;
    byBucket.set(point.bucket_start, slot);
  }
  const buckets = [...byBucket.entries()]
    .sort((a, b) => new Date(a[0]) - new Date(b[0]))
    .map(([start, values]) => {
      const date = new Date(start);
      return { label: bucketLabel(date, signal.bucket), tick: tickLabel(date, signal.bucket), values };
    });

  const totals = signal.totals;
  const count = Object.values(totals).reduce((sum, t) => sum + t.count, 0);
  const negative = Object.values(totals).reduce((sum, t) => sum + t.negative, 0);
  const demand = Object.values(totals).reduce((sum, t) => sum + t.demand, 0);
  $("kpi-count").textContent = number(count);
  $("kpi-negative").textContent = count ? percent(negative / count) : "–";
  $("kpi-demand").textContent = number(demand, 1);

  const volume = $("volume-chart");
  if (!buckets.length) {
    clear(volume).append(h("p", { class: "muted", "data-state": "empty" }, "No items in this range."));
  } else {
    stackedColumns(volume, {
      buckets, keys, label: `Items per ${signal.bucket} and queue: ${number(count)} in total`,
    });
  }
  legend($("volume-legend"), keys.map((k) => ({ cls: `q-${k.key}`, name: k.name })));
  volumeTable(buckets, keys);

  const rows = queues.filter((q) => totals[q]).map((q) => ({ name: q, key: q, parts: totals[q], value: totals[q].demand }));
  if (!rows.length) {
    clear($("mix-chart")).append(h("p", { class: "muted" }, "No items in this range."));
    clear($("demand-chart")).append(h("p", { class: "muted" }, "No items in this range."));
  } else {
    splitBars($("mix-chart"), { rows, parts: SENTIMENTS, label: "Sentiment mix per queue" });
    valueBars($("demand-chart"), { rows: [...rows].sort((a, b) => b.value - a.value), label: "Weighted demand per queue" });
  }
  legend($("mix-legend"), SENTIMENTS.map((p) => ({ cls: p.cls, name: p.name })));
}

function legend(list, entries) {
  clear(list);
  for (const entry of entries) {
    list.append(h("li", {}, h("span", { class: `swatch ${entry.cls}`, "aria-hidden": "true" }), entry.name));
  }
}

function volumeTable(buckets, keys) {
  const table = h("table", { class: "data" },
    h("caption", { class: "visually-hidden" }, "Items per bucket and queue"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), keys.map((k) => h("th", { scope: "col" }, k.name)))),
    h("tbody", {}, buckets.map((b) => h("tr", {}, h("th", { scope: "row" }, b.label), keys.map((k) => h("td", {}, number(b.values[k.key] || 0)))))),
  );
  clear($("volume-table")).append(table);
}

// ---- panels fed by the signal extensions (spikes, themes, ideas) --------------------------

function asList(body, ...keys) {
  if (Array.isArray(body)) return body;
  for (const key of keys) if (body && Array.isArray(body[key])) return body[key];
  return [];
}

function pick(object, ...names) {
  for (const name of names) if (object && object[name] !== undefined && object[name] !== null) return object[name];
  return undefined;
}

async function optional(node, what, path, render) {
  try {
    render(await api("GET", path));
    return true;
  } catch (error) {
    if (error.status === 404 || error.status === 405) {
      unavailable(node, what);
      return false;
    }
    if (error.status === 401) throw error;
    clear(node).append(h("p", { class: "muted" }, explain(error, `Loading ${what.toLowerCase()}`)));
    return false;
  }
}

function exemplarList(exemplars) {
  const list = h("ul", { class: "exemplars" });
  for (const ex of exemplars.slice(0, 3)) {
    const text = typeof ex === "string" ? ex : pick(ex, "text", "title") || "";
    const meta = typeof ex === "object" ? [pick(ex, "channel"), ex.author && (ex.author.handle || ex.author.display_name)].filter(Boolean).join(" · ") : "";
    const href = typeof ex === "object" ? safeHref(pick(ex, "url")) : null;
    list.append(h("li", {},
      meta ? h("span", { class: "mini-meta" }, meta) : null,
      h("span", { class: "mini-text" }, text),
      href ? h("a", { href, target: "_blank", rel: "noopener noreferrer", class: "source" }, "source") : null,
    ));
  }
  return list;
}

async function loadSpikes(filters) {
  const node = $("spikes");
  const params = new URLSearchParams([["state", "open"], ["state", "acknowledged"]]);
  const ok = await optional(node, "Spike detection", `/signal/spikes?${params}`, (body) => {
    const spikes = asList(body, "spikes", "items").filter((spike) => {
      const queue = String(pick(spike, "queue", "key") || "").split("/")[0];
      return !queue || !ALL_QUEUES.includes(queue) || filters.queues.includes(queue);
    });
    $("kpi-spikes").textContent = number(spikes.length);
    clear(node);
    if (!spikes.length) {
      node.append(h("p", { class: "muted", "data-state": "empty" }, "No open spikes. The line runs normally."));
      return;
    }
    const list = h("ol", { class: "spikes" });
    for (const spike of spikes) {
      const what = pick(spike, "key", "label", "theme_label", "queue") || "spike";
      const metric = pick(spike, "metric") === "negative_share" ? "negative share" : pick(spike, "metric");
      const facts = [
        metric,
        pick(spike, "count") !== undefined ? `${number(spike.count)} items` : null,
        pick(spike, "score") !== undefined ? `score ${number(spike.score, 1)}` : null,
        pick(spike, "raised_at", "bucket_start") ? `since ${when(pick(spike, "raised_at", "bucket_start"))}` : null,
        spike.state === "acknowledged" ? `acknowledged${spike.acknowledged_by ? ` by ${spike.acknowledged_by}` : ""}` : null,
      ].filter(Boolean);
      list.append(h("li", { class: "spike" },
        h("h3", {}, h("span", { class: "lamp on", "aria-hidden": "true" }), String(what)),
        h("p", { class: "mini-meta" }, facts.join(" · ")),
        exemplarList(asList(pick(spike, "exemplars", "examples", "items") || [])),
      ));
    }
    node.append(list);
  });
  if (!ok) $("kpi-spikes").textContent = "–";
}

async function loadThemes(filters) {
  const node = $("themes");
  const params = query({ ...filters, queues: ALL_QUEUES, channel: "" }, { bucket: "day" });
  if (filters.queues.length === 1) params.set("queue", filters.queues[0]);
  await optional(node, "Theme detection", `/signal/themes?${params}`, (body) => {
    const themes = asList(body, "themes", "items")
      .filter((theme) => !theme.queue || filters.queues.includes(theme.queue))
      .sort((a, b) => (pick(b, "count", "size") || 0) - (pick(a, "count", "size") || 0))
      .slice(0, 8);
    clear(node);
    if (!themes.length) {
      node.append(h("p", { class: "muted", "data-state": "empty" }, "No themes found in this range."));
      return;
    }
    const list = h("ol", { class: "themes" });
    for (const theme of themes) {
      const terms = pick(theme, "terms", "top_terms");
      const label = pick(theme, "label", "name") || (Array.isArray(terms) ? terms.slice(0, 3).join(", ") : "theme");
      const size = pick(theme, "size", "count") || 0;
      const mood = theme.negative !== undefined && size ? `${percent(theme.negative / size)} negative` : null;
      list.append(h("li", { class: "theme" },
        h("h3", {}, String(label), h("span", { class: "count" }, number(pick(theme, "count", "size") || 0))),
        h("p", { class: "mini-meta" }, [pick(theme, "queue"), mood].filter(Boolean).join(" · ")),
        exemplarList(asList(pick(theme, "exemplars", "representatives", "items", "examples") || [])),
      ));
    }
    node.append(list);
  });
}

async function loadIdeas(filters) {
  const node = $("ideas");
  await optional(node, "Idea ranking", "/signal/ideas?limit=10", (body) => {
    const ideas = asList(body, "ideas", "items").slice(0, 10);
    clear(node);
    if (!ideas.length) {
      node.append(h("p", { class: "muted", "data-state": "empty" }, "No ideas in this range."));
      return;
    }
    const list = h("ol", { class: "ideas" });
    for (const idea of ideas) {
      const item = idea.item && typeof idea.item === "object" ? idea.item : idea;
      const href = safeHref(pick(item, "url"));
      const name = pick(item, "title", "text") || "idea";
      const votes = pick(idea, "votes") ?? (item.metrics ? item.metrics.votes : undefined);
      const mentions = pick(idea, "mentions", "mention_count");
      const score = pick(idea, "score", "demand");
      const theme = pick(idea, "theme_label");
      list.append(h("li", { class: "idea" },
        href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, String(name)) : h("span", {}, String(name)),
        h("span", { class: "mini-meta" }, [
          votes !== undefined ? `${number(votes)} votes` : null,
          mentions !== undefined ? `${number(mentions)} mentions` : null,
          score !== undefined ? `demand ${number(score, 1)}` : null,
          theme ? `theme: ${theme}` : null,
        ].filter(Boolean).join(" · ")),
      ));
    }
    node.append(list);
  });
}

function watchResize() {
  let frame = null;
  let lastWidth = 0;
  const observer = new ResizeObserver(() => {
    const width = $("volume-chart").clientWidth;
    if (width === lastWidth) return;
    lastWidth = width;
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(drawSignal);
  });
  observer.observe($("volume-chart"));
}

async function main() {
  await signIn({ required: false });
  $("app").hidden = false;
  state.filters = readFilters();
  buildFilterForm(state.filters);
  watchResize();
  await load();
}

main().catch((error) => warn(explain(error, "Starting the dashboard")));
