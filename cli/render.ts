/**
 * Text rendering for `trainkeeper` commands: aligned tables (kubectl style), human durations and ages, the
 * job status HyperPod's CLI shows, and the `describe` page. Pure: every function takes `now` (epoch ms)
 * instead of reading the clock, so output is a function of its inputs.
 */
import type { EventDocument, JobDocument } from '../core/api/documents.ts';

/** A cell that is not known prints as this (kubectl prints `<none>`; a dash is easier to scan). */
export const NONE = '-';

/**
 * Rows as columns aligned with two spaces, headers first, no trailing spaces. The last column is never
 * padded, so long messages do not widen the table.
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * A duration the way kubectl prints ages: `850ms`, `42s`, `3m12s`, `2h5m`, `3d4h` — two units at most,
 * the larger first; negative durations print as `0s`.
 */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0s';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
}

/** Milliseconds as a latency: `850ms`, `2.4s`, `1m3s`; null (not recovered yet) as `-`. */
export function latency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return NONE;
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return duration(ms);
}

/** How long ago an RFC 3339 time was, as `duration`; unknown as `-`. */
export function age(time: string | undefined, now: number): string {
  if (!time) return NONE;
  const t = Date.parse(time);
  return Number.isNaN(t) ? NONE : duration(now - t);
}

/**
 * Conditions that report on the job without being a state of it (the blind-log guard's
 * `LogsNotArriving`): `jobStatus` passes over them, `describe` explains them.
 */
const ADVISORY_CONDITIONS: ReadonlySet<string> = new Set(['LogsNotArriving']);

/**
 * The status HyperPod's CLI shows: the type of the last condition whose status is `True`
 * (hyperpod-spec §2.4), advisory ones aside; when none is True yet, the phase.
 */
export function jobStatus(job: Pick<JobDocument, 'status'>): string {
  const conditions = job.status.conditions ?? [];
  for (let i = conditions.length - 1; i >= 0; i--) {
    const c = conditions[i];
    if (c?.status === 'True' && !ADVISORY_CONDITIONS.has(c.type)) return c.type;
  }
  return job.status.phase;
}

/** The job's age, from its `Created` condition like HyperPod's CLI, else its creation time. */
export function jobAge(job: JobDocument, now: number): string {
  const created = job.status.conditions?.find((c) => c.type === 'Created')?.lastTransitionTime;
  return age(created ?? job.metadata.creationTimestamp, now);
}

const cell = (v: unknown): string => (v === undefined || v === null || v === '' ? NONE : String(v));

/** `namespace/name`. */
export const refOf = (job: { metadata: { namespace: string; name: string } }): string =>
  `${job.metadata.namespace}/${job.metadata.name}`;

/**
 * A job's world size (pods holding a rank): `3`, or `2→3` while an elastic job moves to another size.
 * Documents from before the field have none (`-`).
 */
export function worldSize(job: Pick<JobDocument, 'status'>): string {
  const e = job.status.elasticScalingStatus;
  const now = job.status.worldSize;
  if (e && e.targetReplicas !== now) return `${cell(now)}→${e.targetReplicas}`;
  return cell(now);
}

/**
 * The `list`/`get` table: NAME STATUS PHASE GEN RESTARTS STEP AGE (NAMESPACE first with `-A`), and WORLD
 * after PHASE when any listed job is elastic (its size changes; a fixed job's is its replicas).
 */
export function jobTable(jobs: readonly JobDocument[], now: number, withNamespace: boolean): string {
  const elastic = jobs.some((j) => j.status.elasticScalingStatus !== undefined);
  const headers = [
    'NAME',
    'STATUS',
    'PHASE',
    ...(elastic ? ['WORLD'] : []),
    'GEN',
    'RESTARTS',
    'STEP',
    'AGE',
  ];
  const rows = jobs.map((j) => [
    j.metadata.name,
    jobStatus(j),
    j.status.phase,
    ...(elastic ? [worldSize(j)] : []),
    cell(j.status.generation),
    cell(j.status.restartCount),
    cell(j.status.progress?.step),
    jobAge(j, now),
  ]);
  return withNamespace
    ? table(
        ['NAMESPACE', ...headers],
        rows.map((r, i) => [jobs[i]?.metadata.namespace ?? '', ...r]),
      )
    : table(headers, rows);
}

/** The `events` table: TIME TYPE REASON GEN MESSAGE (time as RFC 3339 without milliseconds). */
export function eventTable(events: readonly EventDocument[], withHeader = true): string {
  const rows = events.map(eventRow);
  const text = table(['TIME', 'TYPE', 'REASON', 'GEN', 'MESSAGE'], rows);
  return withHeader ? text : text.split('\n').slice(1).join('\n');
}

/** One event as table cells. */
export function eventRow(e: EventDocument): string[] {
  return [shortTime(e.time), e.type, e.reason, cell(e.generation), oneLine(e.message)];
}

/** One event as a line for a stream (`events --follow`, `submit --watch`), no alignment needed. */
export function eventLine(e: EventDocument): string {
  return `${shortTime(e.time)}  ${e.type.padEnd(7)}  ${e.reason}  ${oneLine(e.message)}`;
}

/** RFC 3339 without the milliseconds (`2026-06-01T17:20:25Z`). */
export function shortTime(time: string | undefined): string {
  return time ? time.replace(/\.\d+Z$/, 'Z') : NONE;
}

const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ⏎ ');

/** A one-line progress summary (`submit --watch`): status, phase, generation, step, pods running. */
export function statusLine(job: JobDocument): string {
  const pods = job.status.pods ?? [];
  const active = pods.filter((p) => !p.spare);
  const running = active.filter((p) => p.agentState === 'RUNNING').length;
  const step = job.status.progress?.step;
  return [
    `${refOf(job)}: ${jobStatus(job)}`,
    `phase ${job.status.phase}`,
    `generation ${job.status.generation}`,
    `ranks running ${running}/${active.length}`,
    step === undefined ? undefined : `step ${step}`,
    `restarts ${job.status.restartCount}`,
  ]
    .filter((s) => s !== undefined)
    .join(', ');
}

const budget = (left: number | null | undefined, limit: number | undefined): string =>
  left === null || left === undefined
    ? 'unlimited'
    : limit === undefined
      ? String(left)
      : `${left} of ${limit}`;

const indent = (text: string, by = '  '): string =>
  text
    .split('\n')
    .map((l) => (l === '' ? l : `${by}${l}`))
    .join('\n');

/**
 * The `describe` page: identity, status (last True condition), phase, age, generation, progress,
 * restart counters and budgets left, conditions, pods (node, IP, agent state, rank/spare), the fault and
 * recovery timeline with detection and restart latencies, and the last `recentEvents` events.
 */
export function describeJob(
  job: JobDocument,
  events: readonly EventDocument[],
  now: number,
  recentEvents = 20,
): string {
  const s = job.status;
  const runPolicy = (job.spec as { runPolicy?: Record<string, unknown> } | undefined)?.runPolicy ?? {};
  const restartPolicy = (runPolicy.restartPolicy ?? {}) as Record<string, number | undefined>;
  const limitOf = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const out: string[] = [];
  const field = (label: string, value: string) => out.push(`${`${label}:`.padEnd(22)}${value}`);

  field('Name', job.metadata.name);
  field('Namespace', job.metadata.namespace);
  field('UID', cell(job.metadata.uid));
  field('Submitted by', cell(job.metadata.submittedBy));
  field('Status', jobStatus(job));
  field('Phase', s.phase);
  field('Age', jobAge(job, now));
  field('Generation', String(s.generation));
  field('World size', `${worldSize(job)} pod(s) holding a rank`);
  const e = s.elasticScalingStatus;
  if (e) {
    field(
      'Elastic',
      `current ${e.currentReplicas}, target ${e.targetReplicas}, allowed ${e.allowedSizes.join(',')}, capacity ${cell(e.capacity)} node(s)${e.stage ? `, scaling: ${e.stage}` : ''}; ${e.scalingCount} scaling(s), ${duration(e.secondsBelowMax * 1000)} below max${e.belowMaxSince ? ` (below since ${shortTime(e.belowMaxSince)})` : ''}`,
    );
    for (const x of e.events.slice(-5)) {
      out.push(
        `  ${shortTime(x.startTime)}  ${x.direction} ${x.from}→${x.to}  ${x.reason}  ${x.outcome} in ${latency(x.durationMs)}`,
      );
    }
  }
  field('Start time', cell(s.startTime));
  if (s.completionTime) field('Completion time', s.completionTime);
  if (s.runningSince) field('Running since', `${s.runningSince} (${age(s.runningSince, now)})`);
  if (s.masterAddr) field('Master', `${s.masterAddr}:${cell(s.masterPort)}`);
  const p = s.progress;
  field(
    'Progress',
    p?.step === undefined
      ? 'no step reported yet'
      : `step ${p.step}${p.time ? ` at ${shortTime(p.time)}` : ''}; restarts without progress ${p.restartsWithoutProgress ?? 0}`,
  );
  field(
    'Restarts',
    `${s.restartCount} total, ${s.processRestartCount} process-level; in the current window ${s.restartStatus.restartCount} restart(s), ${s.restartStatus.fullJobRestartCount} full job restart(s)${s.restartStatus.currentEvalPeriod ? ` (since ${shortTime(s.restartStatus.currentEvalPeriod)})` : ''}`,
  );
  out.push('Budgets left:');
  out.push(
    indent(
      table(
        ['BUDGET', 'LEFT'],
        [
          ['process restarts', budget(s.budgets.processRestartsLeft, limitOf(runPolicy.jobMaxRetryCount))],
          [
            'restarts before full job restart',
            budget(
              s.budgets.restartsBeforeFullJobRestartLeft,
              limitOf(restartPolicy.numRestartBeforeFullJobRestart),
            ),
          ],
          [
            'full job restarts',
            budget(s.budgets.fullJobRestartsLeft, limitOf(restartPolicy.maxFullJobRestarts)),
          ],
        ],
      ),
    ),
  );

  out.push('Conditions:');
  out.push(
    s.conditions.length === 0
      ? '  none'
      : indent(
          table(
            ['TYPE', 'STATUS', 'REASON', 'LAST TRANSITION', 'MESSAGE'],
            s.conditions.map((c) => [
              c.type,
              c.status,
              cell(c.reason),
              shortTime(c.lastTransitionTime),
              oneLine(c.message ?? ''),
            ]),
          ),
        ),
  );

  const blind = s.conditions.find((c) => c.type === 'LogsNotArriving' && c.status === 'True');
  if (blind) {
    out.push('Log path:');
    out.push(
      indent(
        `worker lines are not arriving since ${shortTime(blind.lastTransitionTime)}: hang rules are held, the job is not restarted for it.\n` +
          `What to fix: ${oneLine(blind.message ?? '')}`,
      ),
    );
  }

  out.push('Pods:');
  out.push(
    s.pods.length === 0
      ? '  none'
      : indent(
          table(
            ['NAME', 'RANK', 'PHASE', 'NODE', 'IP', 'AGENT', 'AGENT GEN', 'LAST SEEN'],
            s.pods.map((pod) => [
              pod.name,
              pod.spare ? 'spare' : cell(pod.rank),
              cell(pod.phase),
              cell(pod.node),
              cell(pod.ip),
              cell(pod.agentState),
              cell(pod.agentGeneration),
              pod.lastSeen ? `${age(pod.lastSeen, now)} ago` : NONE,
            ]),
          ),
        ),
  );

  if (s.latestFaultyPodInstanceList) {
    const f = s.latestFaultyPodInstanceList;
    field(
      'Latest faulty',
      `${f.restartType}: pods ${f.faultyPodList.join(', ') || NONE}; ranks ${f.faultyRankList.join(', ') || NONE}; instances ${f.faultyInstanceIdList.join(', ') || NONE}`,
    );
  }

  // A restart that never recovered was superseded when a later one followed (an in-process restart
  // whose workers did not re-enter, escalated to process level; a crash during a restart).
  const restartedIn = (ms: number | null, next: number | undefined): string =>
    ms !== null ? latency(ms) : next !== undefined ? `superseded (gen ${next})` : 'recovering';
  out.push('Faults and recoveries:');
  out.push(
    s.remediations.length === 0
      ? '  none'
      : indent(
          table(
            ['GEN', 'LEVEL', 'REASON', 'FAULT AT', 'DETECTED IN', 'RESTARTED IN', 'PODS', 'RANKS', 'MESSAGE'],
            s.remediations.map((r, i) => [
              String(r.generation),
              r.level,
              r.reason,
              shortTime(r.faultTime),
              latency(r.detectionLatencyMs),
              restartedIn(r.restartLatencyMs, s.remediations[i + 1]?.generation),
              r.pods.join(',') || NONE,
              r.ranks.join(',') || NONE,
              oneLine(r.message ?? ''),
            ]),
          ),
        ),
  );

  const last = s.remediations.at(-1);
  if (last) {
    out.push(
      `  log lines of a fault: trainkeeper logs ${job.metadata.namespace}/${job.metadata.name} --around <GEN> (latest: --around ${last.generation})`,
    );
  }

  const recent = events.slice(-recentEvents);
  out.push(`Events${events.length > recent.length ? ` (last ${recent.length} of ${events.length})` : ''}:`);
  out.push(recent.length === 0 ? '  none' : indent(eventTable(recent)));
  return out.join('\n');
}
