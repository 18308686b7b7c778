// Small hand-written SVG charts. Every chart is an <svg role="img"> with a summary label, and
// every mark carries a <title>, so the numbers are reachable without a mouse or eyesight.

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function title(text) {
  return s("title", {}, text);
}

/** A "nice" upper bound and tick step for an axis from 0 to max. */
export function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { top: 1, step: 1 };
  const raw = max / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw);
  return { top: Math.ceil(max / step) * step, step };
}

function short(value) {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${+(value / 1e3).toFixed(1)}k`;
  return `${+value.toFixed(value < 10 && value % 1 ? 1 : 0)}`;
}

function svgRoot(width, height, label) {
  return s("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "svg-chart",
  });
}

/**
 * Stacked columns: one column per bucket, one segment per key.
 * buckets: [{label, tick, values: {key: n}}]; keys: [{key, name}].
 */
export function stackedColumns(container, { buckets, keys, label, unit = "items" }) {
  const width = Math.max(280, container.clientWidth || 600);
  const height = width < 500 ? 220 : 280;
  const pad = { top: 12, right: 8, bottom: 28, left: 40 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const totals = buckets.map((b) => keys.reduce((sum, k) => sum + (b.values[k.key] || 0), 0));
  const { top, step } = niceScale(Math.max(0, ...totals));
  const y = (v) => pad.top + plotH - (v / top) * plotH;
  const svg = svgRoot(width, height, label);

  const axis = s("g", { class: "axis" });
  for (let v = 0; v <= top + 1e-9; v += step) {
    axis.append(
      s("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }),
      s("text", { x: pad.left - 6, y: y(v) + 4, "text-anchor": "end" }, short(v)),
    );
  }
  svg.append(axis);

  const slot = plotW / Math.max(1, buckets.length);
  const barW = Math.max(1, Math.min(36, slot * 0.78));
  const labelEvery = Math.max(1, Math.ceil(buckets.length / Math.floor(plotW / 56)));
  const bars = s("g", { class: "bars" });
  buckets.forEach((bucket, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    let base = 0;
    const column = s("g", { class: "column" });
    for (const k of keys) {
      const value = bucket.values[k.key] || 0;
      if (!value) continue;
      const rect = s("rect", {
        x, width: barW, y: y(base + value), height: Math.max(0.5, y(base) - y(base + value)),
        class: `mark q-${k.key}`, "data-key": k.key,
      }, title(`${bucket.label} · ${k.name}: ${value} ${unit}`));
      column.append(rect);
      base += value;
    }
    bars.append(column);
    if (i % labelEvery === 0) {
      svg.append(s("text", { x: x + barW / 2, y: height - 8, "text-anchor": "middle", class: "tick" }, bucket.tick));
    }
  });
  svg.append(bars);
  container.replaceChildren(svg);
  return svg;
}

/** One horizontal 100% bar per row, split into parts: rows [{name, parts: {key: n}}]. */
export function splitBars(container, { rows, parts, label }) {
  const width = Math.max(260, container.clientWidth || 400);
  const rowH = 30;
  const nameW = width < 380 ? 72 : 92;
  const height = rows.length * (rowH + 10) + 4;
  const svg = svgRoot(width, Math.max(height, 40), label);
  const plotW = width - nameW - 48;
  rows.forEach((row, i) => {
    const total = parts.reduce((sum, p) => sum + (row.parts[p.key] || 0), 0);
    const y = i * (rowH + 10) + 2;
    const group = s("g", { class: "row", "data-name": row.name });
    group.append(s("text", { x: 0, y: y + rowH / 2 + 5, class: "row-name" }, row.name));
    let x = nameW;
    for (const p of parts) {
      const value = row.parts[p.key] || 0;
      const share = total ? value / total : 0;
      const w = share * plotW;
      if (w > 0) {
        group.append(s("rect", { x, y, width: w, height: rowH, class: `mark ${p.cls}` },
          title(`${row.name} · ${p.name}: ${value} (${Math.round(share * 100)}%)`)));
        if (w > 34) {
          group.append(s("text", { x: x + w / 2, y: y + rowH / 2 + 5, "text-anchor": "middle", class: "in-bar" },
            `${Math.round(share * 100)}%`));
        }
      }
      x += w;
    }
    group.append(s("text", { x: width - 2, y: y + rowH / 2 + 5, "text-anchor": "end", class: "row-total" }, short(total)));
    svg.append(group);
  });
  container.replaceChildren(svg);
  return svg;
}

/** Horizontal bars with values: rows [{name, key, value}]. */
export function valueBars(container, { rows, label, unit = "" }) {
  const width = Math.max(260, container.clientWidth || 400);
  const rowH = 26;
  const nameW = width < 380 ? 72 : 92;
  const svg = svgRoot(width, Math.max(40, rows.length * (rowH + 10) + 4), label);
  const max = Math.max(0, ...rows.map((r) => r.value));
  const plotW = width - nameW - 60;
  rows.forEach((row, i) => {
    const y = i * (rowH + 10) + 2;
    const w = max ? (row.value / max) * plotW : 0;
    svg.append(s("g", { class: "row", "data-name": row.name },
      s("text", { x: 0, y: y + rowH / 2 + 5, class: "row-name" }, row.name),
      s("rect", { x: nameW, y, width: Math.max(1, w), height: rowH, class: `mark q-${row.key}` },
        title(`${row.name}: ${short(row.value)}${unit}`)),
      s("text", { x: nameW + Math.max(1, w) + 6, y: y + rowH / 2 + 5, class: "row-total" }, short(row.value)),
    ));
  });
  container.replaceChildren(svg);
  return svg;
}
