// Small SVG charts (grouped bars, lines) drawn with DOM calls only.
"use strict";

const Charts = (() => {
  const { svg, el } = TL;
  const W = 560, H = 260, PAD = { l: 56, r: 12, t: 18, b: 40 };

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function axes(root, max, fmt) {
    const ih = H - PAD.t - PAD.b;
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      const y = PAD.t + ih - (ih * i) / 4;
      root.append(svg("line", { class: i === 0 ? "axis" : "grid", x1: PAD.l, x2: W - PAD.r, y1: y, y2: y }));
      root.append(svg("text", { x: PAD.l - 6, y: y + 4, "text-anchor": "end" }, fmt(v)));
    }
  }

  function legend(series) {
    return el("div", { class: "legend" }, series.map((s, i) => el("span", {}, el("i", { class: "s" + (s.cls ?? i) }), s.name)));
  }

  function empty(container, message) {
    container.replaceChildren(el("p", { class: "empty" }, message || "No data yet"));
  }

  // The part both charts share: the scale, the SVG root with its axes and
  // the inner size; null (after showing "No data yet") when there is nothing to draw.
  function frame(container, categories, series, fmt) {
    const all = series.flatMap((s) => s.values).filter((v) => typeof v === "number");
    if (!categories.length || !all.length) {
      empty(container);
      return null;
    }
    const max = niceMax(Math.max(...all));
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": series.map((s) => s.name).join(", ") });
    axes(root, max, fmt);
    return { root, max, iw: W - PAD.l - PAD.r, ih: H - PAD.t - PAD.b };
  }

  // categories: [label]; series: [{name, values:[number|null], cls}]
  function bars(container, categories, series, fmt) {
    const f = frame(container, categories, series, fmt);
    if (!f) return;
    const { root, max, iw, ih } = f;
    const gw = iw / categories.length;
    const bw = Math.min(36, (gw * 0.8) / series.length);
    categories.forEach((c, ci) => {
      const x0 = PAD.l + gw * ci + (gw - bw * series.length) / 2;
      series.forEach((s, si) => {
        const v = s.values[ci];
        if (typeof v !== "number") return;
        const h = (ih * v) / max;
        const x = x0 + si * bw;
        const y = PAD.t + ih - h;
        root.append(svg("rect", { class: "s" + (s.cls ?? si), x: x + 1, y, width: Math.max(1, bw - 2), height: Math.max(0, h), rx: 2 },
          svg("title", {}, `${c} · ${s.name}: ${fmt(v)}`)));
        if (bw >= 18) root.append(svg("text", { class: "val", x: x + bw / 2, y: y - 3, "text-anchor": "middle" }, fmt(v)));
      });
      root.append(svg("text", { x: PAD.l + gw * ci + gw / 2, y: H - PAD.b + 16, "text-anchor": "middle" }, c));
    });
    container.replaceChildren(root, legend(series));
  }

  function lines(container, categories, series, fmt) {
    const f = frame(container, categories, series, fmt);
    if (!f) return;
    const { root, max, iw, ih } = f;
    const step = categories.length > 1 ? iw / (categories.length - 1) : 0;
    const xAt = (i) => (categories.length > 1 ? PAD.l + i * step : PAD.l + iw / 2);
    const yAt = (v) => PAD.t + ih - (ih * v) / max;
    series.forEach((s, si) => {
      const cls = "s" + (s.cls ?? si);
      const pts = s.values.map((v, i) => (typeof v === "number" ? [xAt(i), yAt(v)] : null));
      let d = "";
      pts.forEach((p) => { if (p) d += (d ? " L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1); });
      if (d) root.append(svg("path", { class: cls + " line", d }));
      pts.forEach((p, i) => {
        if (p) root.append(svg("circle", { class: cls, cx: p[0], cy: p[1], r: 3.5 }, svg("title", {}, `${categories[i]} · ${s.name}: ${fmt(s.values[i])}`)));
      });
    });
    const every = Math.max(1, Math.ceil(categories.length / 8));
    categories.forEach((c, i) => {
      if (i % every === 0) root.append(svg("text", { x: xAt(i), y: H - PAD.b + 16, "text-anchor": "middle" }, c));
    });
    container.replaceChildren(root, legend(series));
  }

  return { bars, lines };
})();
