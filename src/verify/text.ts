/** The verify report as a person reads it on a terminal: the summary table, then each difference. */
import { describeRetries } from '../util/retry.js';
import type { Counts, ObjectReport, ObjectType, VerifyReport } from './report.js';

const n = (value: number) => value.toLocaleString('en-US');
const PLURAL: Record<ObjectType, string> = { experiment: 'experiments', run: 'runs', model: 'models', version: 'versions' };
const STATE: Record<ObjectReport['state'], string> = {
  different: 'different',
  'missing-in-destination': 'missing in the destination',
  'missing-in-source': 'only in the destination',
};

/** The summary as cells: a header row, then one row per kind of object. */
export function summaryCells(summary: Record<ObjectType, Counts>): string[][] {
  const header = ['', 'compared', 'equal', 'different', 'missing in dst', 'only in dst'];
  const rows = (Object.keys(PLURAL) as ObjectType[])
    .filter((type) => summary[type].compared > 0 || type === 'run')
    .map((type) => {
      const c = summary[type];
      return [PLURAL[type], n(c.compared), n(c.equal), n(c.different), n(c.missingInDestination), n(c.missingInSource)];
    });
  return [header, ...rows];
}

function summaryTable(summary: Record<ObjectType, Counts>): string[] {
  const cells = summaryCells(summary);
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd());
}

export const sampleNote = (sample: NonNullable<VerifyReport['sample']>) =>
  `sampled: series histories (every point) and artifacts compared for ${n(sample.runs)} of ${n(sample.of)} runs chosen at random (--seed ${sample.seed} draws the same ones); the other runs' fields were compared`;

/** What was compared, in words: series types without points are left out. */
export function comparedText(c: VerifyReport['compared']): string {
  const p = c.seriesPoints;
  const typed = [
    p.string > 0 ? `${n(p.string)} string points` : '',
    p.histogram > 0 ? `${n(p.histogram)} histogram points` : '',
    p.file > 0 ? `${n(p.file)} file points (${n(c.seriesFiles)} files, ${n(c.seriesFileBytes)} bytes)` : '',
  ].filter(Boolean);
  return [`${n(c.metricPoints)} metric points`, ...typed, `${n(c.artifacts)} artifact files (${n(c.artifactBytes)} bytes)`].join(', ');
}

export function objectTitle(object: ObjectReport): string {
  const ids = object.destinationId && object.destinationId !== object.sourceId ? ` → ${object.destinationId}` : '';
  const name = object.name && object.type === 'run' ? ` "${object.name}"` : '';
  return `${object.type} ${object.path}${name}${ids}: ${STATE[object.state]}`;
}

export function verifySummary(report: VerifyReport): string {
  const lines = [`verify: ${report.source} → ${report.destination}`, ...summaryTable(report.summary)];
  const m = report.matching;
  if (m.provenance + m.id + m.nameAndStartTime > 0) {
    lines.push(`runs matched by: trackshift's source id ${n(m.provenance)}, same id ${n(m.id)}, name and start time ${n(m.nameAndStartTime)}`);
  }
  lines.push(`compared ${comparedText(report.compared)} in ${(report.durationMs / 1000).toFixed(1)}s`);
  if (report.sample) lines.push(sampleNote(report.sample));
  for (const note of report.notes) lines.push(`note: ${note}`);
  lines.push(...describeRetries(report.retries));
  const differing = report.objects.length;
  const incomplete = report.incomplete ?? [];
  if (incomplete.length > 0) {
    lines.push(`INCOMPLETE: ${n(incomplete.length)} object(s) could not be compared (a read failed even after retries, or a file is unreadable); run verify again once they can be read:`);
    for (const item of incomplete) lines.push(`  ${item.path}: ${item.reason}`);
    if (differing > 0) lines.push(`and of what was compared, ${n(differing)} object(s) differ`);
  } else lines.push(report.equal ? 'EQUAL: no differences' : `DIFFERENT: ${n(differing)} object(s) differ`);
  for (const object of report.objects) {
    lines.push('', objectTitle(object));
    for (const d of object.differences) {
      lines.push(`  ${d.path}`);
      lines.push(`      source:      ${d.source ?? '(absent)'}`);
      lines.push(`      destination: ${d.destination ?? '(absent)'}`);
    }
    if (object.omitted > 0) lines.push(`  … and ${n(object.omitted)} more difference(s) (--max-differences raises the cap)`);
  }
  return lines.join('\n');
}
