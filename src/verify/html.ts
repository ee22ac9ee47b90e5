/**
 * The verify report as one HTML file that opens in a browser with no server and nothing
 * fetched: the summary, the differences grouped by experiment (or model) and object, and for
 * each differing metric a small SVG chart of the source's history against the destination's.
 */
import type { MetricChart, ObjectReport, VerifyReport } from './report.js';
import { comparedText, objectTitle, sampleNote, summaryCells } from './text.js';

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const n = (value: number) => value.toLocaleString('en-US');

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1d2125; padding: 0 1rem; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d0d4d9; }
.ends { color: #4b535c; word-break: break-all; }
.verdict { display: inline-block; padding: .3rem .8rem; border-radius: 4px; font-weight: 600; margin: .8rem 0; }
.equal { background: #dcf5e3; color: #0d5a26; } .different { background: #fde2e1; color: #8a1510; } .incomplete { background: #fff1cc; color: #6b4a00; }
table { border-collapse: collapse; margin: .5rem 0; } th, td { padding: .25rem .6rem; border-bottom: 1px solid #e4e7ea; text-align: left; vertical-align: top; }
table.summary td:not(:first-child), table.summary th:not(:first-child) { text-align: right; }
td.path { font-family: ui-monospace, monospace; font-size: 12.5px; word-break: break-all; } td.value { font-family: ui-monospace, monospace; font-size: 12.5px; max-width: 320px; word-break: break-word; }
.absent { color: #8a9199; font-style: italic; }
details { margin: .6rem 0; border: 1px solid #e4e7ea; border-radius: 4px; padding: .4rem .8rem; } summary { cursor: pointer; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; } figure { margin: .5rem 0; } figcaption { font-size: 12.5px; color: #4b535c; }
.note { color: #4b535c; }
`;

/** `differingSteps`: steps where the two sides differ, marked on the chart */
function chartSvg(chart: MetricChart, differingSteps: number[]): string {
  const width = 460;
  const height = 170;
  const pad = { left: 72, right: 10, top: 10, bottom: 28 };
  const all = [...chart.source, ...chart.destination];
  if (all.length === 0) return `<p class="note">metric ${escape(chart.key)}: no finite values to draw</p>`;
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => pad.left + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (y: number) => height - pad.bottom - (y1 === y0 ? 0.5 : (y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const line = (points: Array<[number, number]>, color: string, dash: string) =>
    points.length === 1
      ? `<circle cx="${sx(points[0]![0]).toFixed(1)}" cy="${sy(points[0]![1]).toFixed(1)}" r="3" fill="${color}"/>`
      : `<polyline fill="none" stroke="${color}" stroke-width="1.6" ${dash} points="${points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`;
  const label = (v: number) => escape(Number.isInteger(v) && Math.abs(v) < 1e15 ? String(v) : v.toPrecision(3));
  const marks = differingSteps
    .filter((step) => step >= x0 && step <= x1)
    .slice(0, 100)
    .map((step) => `<line class="differs" x1="${sx(step).toFixed(1)}" x2="${sx(step).toFixed(1)}" y1="${pad.top}" y2="${height - pad.bottom}" stroke="#c92a2a" stroke-opacity=".55"/>`)
    .join('');
  const nonFinite = chart.nonFinite.source + chart.nonFinite.destination > 0 ? ` · not drawn (NaN/±Infinity): source ${chart.nonFinite.source}, destination ${chart.nonFinite.destination}` : '';
  return `<figure class="chart" data-metric="${escape(chart.key)}">
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="metric ${escape(chart.key)}: source against destination">
<rect x="${pad.left}" y="${pad.top}" width="${width - pad.left - pad.right}" height="${height - pad.top - pad.bottom}" fill="#fafbfc" stroke="#d0d4d9"/>
<text x="${pad.left - 4}" y="${pad.top + 10}" font-size="10" text-anchor="end">${label(y1)}</text>
<text x="${pad.left - 4}" y="${height - pad.bottom}" font-size="10" text-anchor="end">${label(y0)}</text>
<text x="${pad.left}" y="${height - 10}" font-size="10">step ${label(x0)}</text>
<text x="${width - pad.right}" y="${height - 10}" font-size="10" text-anchor="end">step ${label(x1)}</text>
${marks}
${line(chart.source, '#1f6feb', '')}
${line(chart.destination, '#d9480f', 'stroke-dasharray="5 3"')}
</svg>
<figcaption><b>${escape(chart.key)}</b>: <span style="color:#1f6feb">— source (${chart.source.length} points drawn)</span>, <span style="color:#d9480f">- - destination (${chart.destination.length} points drawn)</span>${differingSteps.length ? `, <span style="color:#c92a2a">| steps that differ</span>` : ''}${escape(nonFinite)}</figcaption>
</figure>`;
}

const cell = (value: string | undefined) => (value === undefined ? '<td class="value absent">absent</td>' : `<td class="value">${escape(value)}</td>`);

function objectHtml(object: ObjectReport): string {
  const rows = object.differences.map((d) => `<tr><td class="path">${escape(d.path)}</td>${cell(d.source)}${cell(d.destination)}</tr>`).join('\n');
  const more = object.omitted > 0 ? `<p class="note">… and ${n(object.omitted)} more difference(s) not listed (--max-differences raises the cap)</p>` : '';
  const table = rows ? `<table class="differences"><thead><tr><th>path</th><th>source</th><th>destination</th></tr></thead><tbody>\n${rows}\n</tbody></table>` : '';
  const stepsOf = (key: string) =>
    object.differences.flatMap((d) => {
      const marker = `/metric:${key}@`;
      const at = d.path.lastIndexOf(marker);
      const step = at >= 0 ? Number(d.path.slice(at + marker.length)) : NaN;
      return Number.isFinite(step) ? [step] : [];
    });
  const charts = object.charts?.length ? `<div class="charts">${object.charts.map((c) => chartSvg(c, stepsOf(c.key))).join('\n')}</div>` : '';
  return `<details open class="object ${object.state}" data-path="${escape(object.path)}"><summary>${escape(objectTitle(object))}</summary>\n${table}${more}${charts}</details>`;
}

export function reportHtml(report: VerifyReport): string {
  const [head, ...rows] = summaryCells(report.summary);
  const headCells = head!.map((h) => `<th>${escape(h)}</th>`).join('');
  const summaryRows = rows.map((r) => `<tr>${r.map((c) => `<td>${escape(c)}</td>`).join('')}</tr>`);
  const groups = new Map<string, ObjectReport[]>();
  for (const object of report.objects) {
    const group = object.model !== undefined ? `model ${object.model}` : `experiment ${object.experiment ?? ''}`;
    groups.set(group, [...(groups.get(group) ?? []), object]);
  }
  const m = report.matching;
  const notes = [
    m.provenance + m.id + m.nameAndStartTime > 0 ? `Runs matched by trackshift's source id: ${n(m.provenance)}, by the same id: ${n(m.id)}, by name and start time: ${n(m.nameAndStartTime)}.` : '',
    `Compared ${comparedText(report.compared)} in ${(report.durationMs / 1000).toFixed(1)} s.`,
    report.sample ? `${sampleNote(report.sample)}.` : '',
    ...report.notes,
  ].filter(Boolean);
  const incomplete = report.incomplete ?? [];
  const verdict =
    incomplete.length > 0
      ? `<div class="verdict incomplete">INCOMPLETE: ${n(incomplete.length)} object(s) could not be compared</div>
<p class="note">A read failed even after retries, or a file is unreadable; run verify again once they can be read.${report.objects.length > 0 ? ` Of what was compared, ${n(report.objects.length)} object(s) differ.` : ''}</p>
<table><tbody>${incomplete.map((item) => `<tr><td class="path">${escape(item.path)}</td><td class="value">${escape(item.reason)}</td></tr>`).join('')}</tbody></table>`
      : report.equal
        ? '<div class="verdict equal">EQUAL: no differences</div>'
        : `<div class="verdict different">DIFFERENT: ${n(report.objects.length)} object(s) differ</div>`;
  const body = [...groups].map(([group, objects]) => `<h2>${escape(group)}</h2>\n${objects.map(objectHtml).join('\n')}`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trackshift verify: ${escape(report.source)} → ${escape(report.destination)}</title><style>${STYLE}</style></head>
<body>
<h1>trackshift verify</h1>
<div class="ends">${escape(report.source)} → ${escape(report.destination)}<br>${escape(report.startedAt)}</div>
${verdict}
<table class="summary"><thead><tr>${headCells}</tr></thead><tbody>${summaryRows.join('')}</tbody></table>
${notes.map((t) => `<p class="note">${escape(t)}</p>`).join('\n')}
${body}
</body></html>
`;
}
