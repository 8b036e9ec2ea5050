// Turning runs into figures: medians over rounds, ratios measured round by round (so a baseline
// is always compared with the tollgate run next to it), targets, and the printed table.

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** The median of per-round ratios a/b, over rounds where both were measured. */
export function roundRatio(aRuns, bRuns, field = 'rps') {
  const ratios = [];
  for (const [round, a] of aRuns) {
    const b = bRuns.get(round);
    if (a && b && b[field] > 0) ratios.push(a[field] / b[field]);
  }
  return median(ratios);
}

/** Median figures of one server in one scenario. */
export function summarize(runs) {
  const list = [...runs.values()];
  return {
    rounds: list.length,
    rps: median(list.map((r) => r.rps)),
    p50: median(list.map((r) => r.p50)),
    p99: median(list.map((r) => r.p99)),
    rssPeak: median(list.map((r) => r.rssPeak)),
    rssMax: list.length ? Math.max(...list.map((r) => r.rssPeak)) : undefined,
    cpuPerRequest: median(list.map((r) => r.cpuPerRequest)),
  };
}

/** A check against a target: { text, ok, value }. */
export function atLeast(label, value, min) {
  return { text: `${label} ≥ ${min}`, value, ok: value === undefined ? undefined : value >= min };
}
export function atMost(label, value, max) {
  return { text: `${label} ≤ ${max}`, value, ok: value === undefined ? undefined : value <= max };
}

export function verdict(checks) {
  if (checks.length === 0) return '';
  if (checks.some((c) => c.ok === undefined)) return 'n/a';
  return checks.every((c) => c.ok) ? 'PASS' : 'FAIL';
}

const fmt = (v, digits = 0) => (v === undefined || !Number.isFinite(v) ? '—' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
export const fmtRatio = (v) => (v === undefined ? '—' : `${v.toFixed(2)}x`);
/** A share as a signed percentage: 0.08 is +8%. */
export const fmtShare = (v) => (v === undefined ? '—' : `${v >= 0 ? '+' : ''}${(v * 100).toFixed(0)}%`);

/** Rows: { scenario, server, stats, vsBase, vsOidc, vsP99, vsCpu, ownCpuUs, ownCpuShare, target, result }. */
export function formatTable(rows) {
  const header = ['scenario', 'server', 'req/s', 'p50 ms', 'p99 ms', 'RSS MiB', 'CPU µs/req', '÷ ceiling', '÷ oidc', 'p99 ÷ ceil', 'CPU ÷ ref', 'own CPU', 'target', 'result'];
  const cells = rows.map((r) => [
    r.scenario,
    r.server,
    fmt(r.stats?.rps),
    fmt(r.stats?.p50),
    fmt(r.stats?.p99),
    fmt(r.stats?.rssPeak),
    fmt(r.stats?.cpuPerRequest),
    r.vsBase === undefined ? '' : fmtRatio(r.vsBase),
    r.vsOidc === undefined ? '' : fmtRatio(r.vsOidc),
    r.vsP99 === undefined ? '' : fmtRatio(r.vsP99),
    r.vsCpu === undefined ? '' : fmtRatio(r.vsCpu),
    r.ownCpuUs === undefined ? '' : `${fmt(r.ownCpuUs)} µs ${fmtShare(r.ownCpuShare)}`,
    r.target ?? '',
    r.result ?? '',
  ]);
  const numeric = new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => c.map((v, i) => (numeric.has(i) ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
