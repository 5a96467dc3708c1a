// ratelab's HTML report (hammer's and simulate's): the charts, drawn with uPlot from
// the JSON report embedded in the page (script#report) and the page's notes
// (script#page: the command, each algorithm row's label). Each entry of `sections`
// draws one part into its element (#ID-charts); it draws nothing when the page has
// no such element or the report lacks the part's fields.
(function () {
  "use strict";
  const report = JSON.parse(document.getElementById("report").textContent);
  const meta = JSON.parse(document.getElementById("page").textContent);
  const algs = report.algorithms || [];
  algs.forEach((a, i) => { a.label = (meta.labels || [])[i] || a.name; });
  // Every chart drawn, with its series: the browser test reads this.
  const charts = [];
  window.ratelabCharts = charts;
  const colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];

  function chartBox(host, title) {
    const box = document.createElement("div");
    box.className = "chart";
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = title;
    box.appendChild(name);
    host.appendChild(box);
    return box;
  }

  function plot(kind, algorithm, box, opts, data) {
    opts.width = Math.max(320, Math.floor(box.clientWidth || 600));
    // One legend per kind of chart, on its first: the rows below share it (unless
    // their series differ, as the fault charts' do).
    opts.legend = opts.legend || { show: !charts.some(c => c.kind === kind) };
    const u = new uPlot(opts, data, box);
    charts.push({ kind: kind, algorithm: algorithm, series: opts.series.slice(1).map(s => s.label) });
    return u;
  }

  function fmtUs(v) {
    if (v == null) return "-";
    if (v < 1000) return Math.round(v) + "µs";
    if (v < 1e6) return (v / 1000).toFixed(v < 1e4 ? 2 : 1) + "ms";
    return (v / 1e6).toFixed(2) + "s";
  }

  // pctLabel names the percentile at x = 1/(1-p): 1 is 0%, 10 is 90%, 1000 is 99.9%.
  function pctLabel(x) {
    if (x == null) return "-";
    if (x <= 1) return "0%";
    const digits = Math.max(0, Math.ceil(Math.log10(x) - 1e-9) - 2);
    return (100 * (1 - 1 / x)).toFixed(digits) + "%";
  }

  // edgeLine marks the window edge, x = 0.
  function edgeLine(u) {
    const x = u.valToPos(0, "x", true);
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#333";
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.restore();
  }

  function empty(host, text) {
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = text;
    host.appendChild(p);
  }

  // The headline: one row per algorithm on one time axis around the window edge, the
  // followed identity's admitted requests per W/10 and in the W before each bucket's
  // end, against L and 2L.
  function timelineSection() {
    const host = document.getElementById("timeline-charts");
    if (!host) return;
    const rows = algs.filter(a => a.timeline && a.timeline.counts && a.timeline.counts.length > 0);
    if (rows.length === 0) return empty(host, "This report has no timeline.");
    const half = rows[0].timeline.counts.length / 2;
    const span = half * rows[0].timeline.bucket_ms;
    // inWindow is what was admitted in the W before each bucket's end.
    const inWindow = a => {
      const tl = a.timeline;
      const perWindow = Math.max(1, Math.round(a.window_ms / tl.bucket_ms));
      return tl.counts.map((_, i) => {
        let sum = 0;
        for (let j = Math.max(0, i - perWindow + 1); j <= i; j++) sum += tl.counts[j];
        return sum;
      });
    };
    // One y scale for every row, so that the rows compare at a glance.
    let top = 1;
    rows.forEach(a => { top = Math.max(top, 2 * a.limit, a.peak_in_window || 0, ...inWindow(a)); });
    rows.forEach((a, n) => {
      const tl = a.timeline;
      const inW = inWindow(a);
      const xs = tl.counts.map((_, i) => (i - half + 0.5) * tl.bucket_ms);
      const L = tl.counts.map(() => a.limit);
      const L2 = tl.counts.map(() => 2 * a.limit);
      const box = chartBox(host, a.label + ": peak in W " + a.peak_in_window + " = " + (a.burst_ratio || 0).toFixed(2) +
        " L; worst case " + a.expected_max_in_window);
      plot("timeline", a.label, box, {
        height: 170,
        scales: { x: { time: false, range: [-span, span] }, y: { range: [0, top * 1.08] } },
        series: [
          { label: "ms from the edge" },
          { label: "admitted per " + tl.bucket_ms + "ms", stroke: colors[0], fill: colors[0] + "99",
            paths: uPlot.paths.bars({ size: [0.85, 80] }), points: { show: false } },
          { label: "admitted in the W before", stroke: colors[4], width: 2, points: { show: false } },
          { label: "L = " + a.limit, stroke: "#2ca02c", dash: [8, 4], points: { show: false } },
          { label: "2L = " + 2 * a.limit, stroke: colors[1], dash: [3, 3], points: { show: false } },
        ],
        axes: [
          { label: n === rows.length - 1 ? "ms from the window edge at +" + tl.edge_offset_ms + "ms of the run" : "" },
          { label: "admitted", size: 56 },
        ],
        hooks: { draw: [edgeLine] },
      }, [xs, tl.counts, inW, L, L2]);
    });
  }

  // Every decision of the run, per W/10: admitted and denied.
  function decisionsSection() {
    const host = document.getElementById("decisions-charts");
    if (!host) return;
    const rows = algs.filter(a => a.decisions && a.decisions.allowed && a.decisions.allowed.length > 0);
    if (rows.length === 0) return empty(host, "This report has no decisions per interval (schema_version 3 adds them).");
    rows.forEach(a => {
      const d = a.decisions;
      const xs = d.allowed.map((_, i) => (i * d.bucket_ms) / 1000);
      const box = chartBox(host, a.label + ": " + a.allowed + " allowed, " + a.denied + " denied");
      plot("decisions", a.label, box, {
        height: 180,
        scales: { x: { time: false } },
        series: [
          { label: "s from the start" },
          { label: "admitted", stroke: "#2ca02c", fill: "#2ca02c33", paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
          { label: "denied", stroke: colors[1], fill: "#d6272822", paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
        ],
        axes: [{ label: "seconds from the run's start" }, { label: "per " + d.bucket_ms + "ms", size: 56 }],
      }, [xs, d.allowed, d.denied]);
    });
  }

  // points puts a distribution on x = 1/(1-p); the maximum (p = 100) a quarter
  // decade past the last percentile.
  function points(ps) {
    const out = new Map();
    let last = 1;
    ps.forEach(p => {
      let x;
      if (p.percentile >= 100) {
        x = last * Math.pow(10, 0.25);
      } else {
        x = 1 / (1 - p.percentile / 100);
        last = x;
      }
      out.set(+x.toPrecision(9), Math.max(1, p.us));
    });
    return out;
  }

  // Each algorithm's check and end-to-end latency by percentile.
  function latencySection() {
    const host = document.getElementById("latency-charts");
    if (!host) return;
    const rows = algs.filter(a => (a.check_latency_percentiles || []).length > 0 || (a.e2e_latency_percentiles || []).length > 0);
    if (rows.length === 0) return empty(host, "This report has no latency distributions (schema_version 3 adds them).");
    rows.forEach(a => {
      const curves = [];
      if ((a.check_latency_percentiles || []).length > 0) curves.push(["check", points(a.check_latency_percentiles), colors[0]]);
      if ((a.e2e_latency_percentiles || []).length > 0) curves.push(["end to end", points(a.e2e_latency_percentiles), colors[1]]);
      const all = new Set();
      curves.forEach(c => c[1].forEach((_, x) => all.add(x)));
      const xs = Array.from(all).sort((p, q) => p - q);
      const data = [xs].concat(curves.map(c => xs.map(x => (c[1].has(x) ? c[1].get(x) : null))));
      const box = chartBox(host, a.label + ": check p99 " + fmtUs(a.check_latency_us && a.check_latency_us.p99) +
        ", end to end p99 " + fmtUs(a.e2e_latency_us && a.e2e_latency_us.p99));
      plot("latency", a.label, box, {
        height: 220,
        scales: { x: { time: false, distr: 3, log: 10 }, y: { distr: 3, log: 10 } },
        series: [{ label: "percentile", value: (u, v) => pctLabel(v) }].concat(curves.map(c => ({
          label: c[0], stroke: c[2], width: 2, spanGaps: true, value: (u, v) => fmtUs(v),
        }))),
        axes: [
          { label: "percentile", values: (u, splits) => splits.map(pctLabel) },
          { label: "latency", size: 64, values: (u, splits) => splits.map(fmtUs) },
        ],
      }, data);
    });
  }

  // faultSpan shades the fault, from x = 0 to its duration (a line for an instant one).
  function faultSpan(duration) {
    return u => {
      const x0 = u.valToPos(0, "x", true);
      const x1 = u.valToPos(duration, "x", true);
      const ctx = u.ctx;
      ctx.save();
      ctx.fillStyle = "rgba(214, 39, 40, 0.10)";
      ctx.strokeStyle = "#d62728";
      ctx.lineWidth = 1.5;
      ctx.setLineDash([5, 4]);
      if (x1 - x0 >= 1) ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
      [x0, x1].forEach(x => {
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
      });
      ctx.restore();
    };
  }

  // The fault lab: per algorithm and fail mode, every request per bucket through the
  // fault by how it was decided; admitted and denied always, the other kinds when
  // some request was decided so.
  function faultSection() {
    const host = document.getElementById("faults-charts");
    if (!host) return;
    const rows = algs.filter(a => a.fault && a.fault.timeline && (a.fault.timeline.admitted || []).length > 0);
    if (rows.length === 0) return empty(host, "This report has no fault timeline.");
    const kinds = [
      ["admitted", "admitted", "#2ca02c"], ["denied", "denied", colors[1]], ["fail_open", "fail-open", colors[4]],
      ["fail_closed", "fail-closed", colors[3]], ["local", "local", colors[0]], ["errors", "errors", "#555"],
    ];
    const sum = xs => (xs || []).reduce((p, q) => p + q, 0);
    let top = 1;
    let lo = 0, hi = 0;
    rows.forEach(a => {
      const tl = a.fault.timeline;
      kinds.forEach(k => (tl[k[0]] || []).forEach(c => { top = Math.max(top, c); }));
      lo = Math.min(lo, tl.start_ms - a.fault.start_ms);
      hi = Math.max(hi, tl.start_ms - a.fault.start_ms + tl.admitted.length * tl.bucket_ms);
    });
    rows.forEach((a, n) => {
      const f = a.fault;
      const tl = f.timeline;
      const shown = kinds.filter((k, i) => i < 2 || sum(tl[k[0]]) > 0);
      // A bucket is drawn from its start to the next's: the last closes at its end.
      const xs = tl.admitted.map((_, i) => tl.start_ms - f.start_ms + i * tl.bucket_ms);
      xs.push(xs[xs.length - 1] + tl.bucket_ms);
      const series = k => { const c = (tl[k[0]] || xs.slice(1).map(() => 0)).slice(); c.push(c[c.length - 1]); return c; };
      const box = chartBox(host, a.label + ": " + f.requests + " requests in the fault's span, " + f.admitted + " admitted, " +
        f.over_limit_admitted + " of " + f.over_limit_attempts + " over the limit admitted, " +
        f.within_limit_refused + " of " + f.within_limit_attempts + " within it refused");
      plot("fault", a.label, box, {
        height: 180,
        legend: { show: true },
        scales: { x: { time: false, range: [lo, hi] }, y: { range: [0, top * 1.08] } },
        series: [{ label: "ms from the fault's start" }].concat(shown.map(k => ({
          label: k[1], stroke: k[2], fill: k[2] + "22", width: 1.5, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false },
        }))),
        axes: [
          { label: n === rows.length - 1 ? "ms from the fault's start at +" + f.start_ms + "ms of the run" : "" },
          { label: "per " + tl.bucket_ms + "ms", size: 56 },
        ],
        hooks: { draw: [faultSpan(f.duration_ms)] },
      }, [xs].concat(shown.map(series)));
    });
  }

  // A simulate sweep: per algorithm, one bar pair per policy, the well-behaved clients
  // refused (wide) and the abusive clients admitted (narrow, in front).
  function sweepSection() {
    const host = document.getElementById("sweep-charts");
    if (!host) return;
    const byName = new Map();
    algs.forEach((a, i) => {
      if (!byName.has(a.name)) byName.set(a.name, []);
      byName.get(a.name).push([a, (meta.policies || [])[i] || String(i)]);
    });
    if (byName.size === 0) return empty(host, "This report has no sweep.");
    let top = 1;
    algs.forEach(a => { top = Math.max(top, a.well_behaved_refused.clients, a.abuse_admitted.clients); });
    byName.forEach((rows, name) => {
      const xs = rows.map((_, i) => i);
      const names = rows.map(r => r[1]);
      const box = chartBox(host, name + ": " + rows.length + " policies");
      plot("sweep", name, box, {
        height: 220,
        scales: { x: { time: false, range: [-0.5, rows.length - 0.5] }, y: { range: [0, top * 1.08] } },
        series: [
          { label: "policy", value: (u, v) => (v == null ? "-" : names[v]) },
          { label: "well-behaved refused (clients)", stroke: colors[0], fill: colors[0] + "88", paths: uPlot.paths.bars({ size: [0.7, 80] }), points: { show: false } },
          { label: "abuse admitted (clients)", stroke: colors[1], fill: colors[1] + "cc", paths: uPlot.paths.bars({ size: [0.3, 30] }), points: { show: false } },
        ],
        axes: [
          { label: "policy", splits: () => xs, values: (u, splits) => splits.map(v => names[v] || "") },
          { label: "clients", size: 56 },
        ],
      }, [xs, rows.map(r => r[0].well_behaved_refused.clients), rows.map(r => r[0].abuse_admitted.clients)]);
    });
  }

  const sections = [timelineSection, decisionsSection, latencySection, faultSection, sweepSection];
  sections.forEach(draw => draw(report));
  document.body.setAttribute("data-charts", String(charts.length));
})();
