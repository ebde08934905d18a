/**
 * Why a job record is too big to store, in the user's terms. A job lives in one DynamoDB item (400 KB; the
 * store refuses records over `MAX_RECORD_BYTES`), and the spec a user submits is most of it. A refusal that
 * only said "too big" would leave the user guessing what to trim, so `oversizeIssues` names the largest
 * parts by their manifest path — labels, annotations, each pod template (and its annotations), the rule
 * list with its count — biggest first, each with its size.
 *
 * Invariant: sizes are UTF-8 bytes of the JSON the store writes (`JSON.stringify`), so the parts of a spec
 * add up to (almost) the spec's share of the record.
 */
import type { ProblemIssue } from '../../core/api/documents.ts';
import type { JobRecord } from '../../core/job.ts';
import type { JobSpec } from '../../core/spec/types.ts';

/** One measurable part of a record: its path (as in the manifest) and its size. */
export interface SizePart {
  path: string;
  bytes: number;
  /** What it is, for the message (e.g. `40 log rules`). */
  what: string;
}

const bytesOf = (value: unknown): number =>
  value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');

const countOf = (value: Record<string, unknown> | unknown[] | undefined): number =>
  value === undefined ? 0 : Array.isArray(value) ? value.length : Object.keys(value).length;

/** The parts of a spec a user controls, each measured; largest first. */
export function specSizeParts(spec: JobSpec): SizePart[] {
  const parts: SizePart[] = [
    { path: 'metadata.labels', bytes: bytesOf(spec.labels), what: `${countOf(spec.labels)} labels` },
    {
      path: 'metadata.annotations',
      bytes: bytesOf(spec.annotations),
      what: `${countOf(spec.annotations)} annotations`,
    },
    {
      path: 'spec.runPolicy.logMonitoringConfiguration',
      bytes: bytesOf(spec.runPolicy.logMonitoringConfiguration),
      what: `${spec.runPolicy.logMonitoringConfiguration.length} log rules`,
    },
  ];
  spec.replicaSpecs.forEach((replica, i) => {
    const base = `spec.replicaSpecs[${i}].template`;
    const meta = replica.template.metadata;
    parts.push(
      {
        path: `${base}.metadata.labels`,
        bytes: bytesOf(meta?.labels),
        what: `${countOf(meta?.labels)} pod labels`,
      },
      {
        path: `${base}.metadata.annotations`,
        bytes: bytesOf(meta?.annotations),
        what: `${countOf(meta?.annotations)} pod annotations`,
      },
      { path: `${base}.spec`, bytes: bytesOf(replica.template.spec), what: 'the pod spec' },
    );
  });
  return parts.filter((p) => p.bytes > 2).sort((a, b) => b.bytes - a.bytes);
}

/**
 * `undefined` when `job` fits in `limitBytes`; else the issues of a refusal: the record's size first
 * (path `record`), then the `top` largest parts of its spec with their sizes and share of the record.
 */
export function oversizeIssues(job: JobRecord, limitBytes: number, top = 5): ProblemIssue[] | undefined {
  const total = bytesOf(job);
  if (total <= limitBytes) return undefined;
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  return [
    {
      path: 'record',
      message: `the job record would be ${kb(total)}, over the ${kb(limitBytes)} a job may take (one DynamoDB item); trim the largest parts below`,
    },
    ...specSizeParts(job.spec)
      .slice(0, top)
      .map((p) => ({
        path: p.path,
        message: `${p.what}: ${kb(p.bytes)} (${Math.round((p.bytes / total) * 100)}% of the record)`,
      })),
  ];
}
