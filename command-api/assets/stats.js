// Statistics: GET /api/v1/stats grouped by priority and by week; charts,
// the numbers beside them, and the same numbers as CSV.
"use strict";

(() => {
  const { $, el, api, clear, duration } = TL;
  TL.requireSession();
  TL.topbar("stats");
  if (!TL.can("stats.read")) {
    clear($("main")).append(el("section", { class: "card empty" }, el("h1", {}, "Not available"), el("p", {}, "Your role cannot read statistics.")));
    return;
  }
  const PRIORITY_ORDER = ["critical", "high", "medium", "low"];
  let reports = null;

  function params() {
    const p = new URLSearchParams();
    if ($("s-from").value) p.set("from", new Date($("s-from").value + "T00:00:00Z").toISOString());
    if ($("s-to").value) p.set("to", new Date($("s-to").value + "T23:59:59Z").toISOString());
    return p;
  }

  function card(k, v, idName) { return el("div", { class: "stat", id: idName }, el("div", { class: "v" }, v), el("div", { class: "k" }, k)); }

  function table(groups, label) {
    const head = ["", "count", "open", "done", "p50", "p90", "p99", "1st resp.", "SLA"];
    return el("table", { class: "numbers" },
      el("thead", {}, el("tr", {}, head.map((h, i) => el("th", {}, i === 0 ? label : h)))),
      el("tbody", {}, groups.map((g) => el("tr", {},
        el("td", {}, g.label), el("td", {}, String(g.count)), el("td", {}, String(g.open)), el("td", {}, String(g.resolved)),
        el("td", {}, duration(g.p50)), el("td", {}, duration(g.p90)), el("td", {}, duration(g.p99)),
        el("td", {}, duration(g.first_response_p50)), el("td", {}, String(g.sla_breaches))))));
  }

  function byPriority(report) {
    const groups = report.groups.slice().sort((a, b) => PRIORITY_ORDER.indexOf(a.key) - PRIORITY_ORDER.indexOf(b.key));
    return groups.map((g) => Object.assign({ label: TL.PRIORITY_LABELS[g.key] || g.key }, g));
  }
  function byWeek(report) {
    return report.groups.slice().sort((a, b) => (a.key < b.key ? -1 : 1)).map((g) => Object.assign({ label: g.key }, g));
  }

  function render() {
    const [prio, week] = reports;
    const t = prio.total;
    clear($("s-cards")).append(
      card("Tickets", String(t.count), "card-count"), card("Open", String(t.open), "card-open"),
      card("Resolved", String(t.resolved), "card-resolved"), card("Median resolution", duration(t.p50), "card-p50"),
      card("p90 resolution", duration(t.p90), "card-p90"), card("First response (median)", duration(t.first_response_p50), "card-first"),
      card("SLA breaches", String(t.sla_breaches), "card-sla"));
    const p = byPriority(prio);
    const w = byWeek(week);
    const pct = (gs) => [
      { name: "p50", values: gs.map((g) => g.p50), cls: 0 },
      { name: "p90", values: gs.map((g) => g.p90), cls: 1 },
      { name: "p99", values: gs.map((g) => g.p99), cls: 2 },
    ];
    Charts.bars($("c-prio"), p.map((g) => g.label), pct(p), duration);
    clear($("t-prio")).append(table(p, "priority"));
    Charts.lines($("c-week"), w.map((g) => g.label), pct(w), duration);
    clear($("t-week")).append(table(w, "week"));
    Charts.bars($("c-first"), p.map((g) => g.label), [{ name: "First response (median)", values: p.map((g) => g.first_response_p50), cls: 3 }], duration);
    Charts.bars($("c-sla"), p.map((g) => g.label), [{ name: "SLA breaches", values: p.map((g) => g.sla_breaches), cls: 4 }], (v) => String(Math.round(v)));
    $("csv").disabled = false;
  }

  // Text that a spreadsheet would run as a formula (site names come from
  // customers) is defused with a leading quote, as the server's CSV does
  // (projections/src/stats.rs, CSV_FORMULA_STARTS); numbers are ours.
  function csvCell(v) {
    let s = v === null || v === undefined ? "" : String(v);
    if (typeof v === "string" && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function csv() {
    const cols = ["count", "open", "resolved", "avg", "p50", "p90", "p99", "first_response_p50", "sla_breaches"];
    const lines = [["group_by", "key", ...cols.map((c) => (["avg", "p50", "p90", "p99", "first_response_p50"].includes(c) ? c + "_s" : c))].join(",")];
    for (const r of reports) {
      for (const g of [...r.groups, r.total]) lines.push([r.group_by, g.key, ...cols.map((c) => g[c])].map(csvCell).join(","));
    }
    return lines.join("\n") + "\n";
  }
  $("csv").addEventListener("click", () => {
    const url = URL.createObjectURL(new Blob([csv()], { type: "text/csv" }));
    const a = el("a", { href: url, download: "ticketlog-stats.csv" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });

  async function load() {
    try {
      const p = params();
      const q = (g) => { const x = new URLSearchParams(p); x.set("group_by", g); return "/api/v1/stats?" + x; };
      reports = await Promise.all([api("GET", q("priority")), api("GET", q("week"))]);
      $("s-sub").textContent = "As of " + TL.absTime(reports[0].as_of) + (reports[0].from ? " · from " + TL.absTime(reports[0].from) : "");
      render();
    } catch (e) {
      TL.toast("Could not load statistics: " + e.message, true);
    }
  }
  $("s-range").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
})();
