/**
 * CloudWatch metrics through the embedded metric format (EMF): a Lambda writes one JSON line per record to
 * stdout, CloudWatch Logs extracts the metrics (namespace `TrainKeeper`), and alarms (→ SNS) are set on them.
 * No API call, no extra latency, no throttling on the hot path.
 *
 * What is emitted (from decide's actions, see `emfRecordsForActions`):
 * | metric | unit | dimension sets | from |
 * |---|---|---|---|
 * | `JobFailures` | Count | [Stage], [Stage, Reason] | IncrementCounter of jobs_failed_total |
 * | `Restarts` | Count | [Stage], [Stage, Level] | IncrementCounter of trainkeeper_restarts_total |
 * | `RestartLatency` | Seconds | [Stage], [Stage, Level] | ObserveLatency of the restart latency |
 * | `FaultDetectionLatency` | Seconds | [Stage] | ObserveLatency of the detection latency |
 *
 * Invariants: dimension values are bounded (stage, restart level, reason constants); no job or pod names.
 * Records are written once per written decision (`EmfMetricsSink.recordDecision`), so a replayed decision
 * is not counted twice.
 */
import type { Action } from '../../core/actions.ts';
import { LATENCY_SERIES, Metric } from '../../core/metrics.ts';
import type { MetricSamples, MetricsSink } from '../../core/ports.ts';

/** The CloudWatch namespace of every TrainKeeper metric. */
export const EMF_NAMESPACE = 'TrainKeeper';

/** EMF units used here (a subset of CloudWatch's). */
export type EmfUnit = 'Count' | 'Seconds' | 'Milliseconds' | 'None';

/** One EMF document (a structured log line). */
export interface EmfRecord {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: EmfUnit }[];
    }[];
  };
  [member: string]: unknown;
}

/**
 * Builds one EMF record: metric values and dimension values become root members, the directive names them.
 * Throws on a dimension set naming a dimension without a value (CloudWatch would silently drop the metric).
 */
export function emfRecord(input: {
  at: number;
  namespace?: string;
  dimensions: Record<string, string>;
  dimensionSets: string[][];
  metrics: { name: string; unit: EmfUnit; value: number }[];
}): EmfRecord {
  for (const set of input.dimensionSets) {
    for (const key of set) {
      if (input.dimensions[key] === undefined) throw new RangeError(`EMF dimension ${key} has no value`);
    }
  }
  const record: EmfRecord = {
    _aws: {
      Timestamp: Math.round(input.at),
      CloudWatchMetrics: [
        {
          Namespace: input.namespace ?? EMF_NAMESPACE,
          Dimensions: input.dimensionSets,
          Metrics: input.metrics.map((m) => ({ Name: m.name, Unit: m.unit })),
        },
      ],
    },
  };
  for (const [k, v] of Object.entries(input.dimensions)) record[k] = v;
  for (const m of input.metrics) record[m.name] = m.value;
  return record;
}

/** The EMF records for decide's actions (counters and latencies that alarms care about); others yield none. */
export function emfRecordsForActions(
  actions: readonly Action[],
  context: { at: number; stage: string },
): EmfRecord[] {
  const base = { at: context.at };
  const records: EmfRecord[] = [];
  for (const a of actions) {
    if (a.type === 'IncrementCounter' && a.name === Metric.jobsFailed) {
      const reason = a.labels.reason ?? 'Unknown';
      records.push(
        emfRecord({
          ...base,
          dimensions: { Stage: context.stage, Reason: reason },
          dimensionSets: [['Stage'], ['Stage', 'Reason']],
          metrics: [{ name: 'JobFailures', unit: 'Count', value: a.by }],
        }),
      );
    } else if (a.type === 'IncrementCounter' && a.name === Metric.restarts) {
      records.push(
        emfRecord({
          ...base,
          dimensions: { Stage: context.stage, Level: a.labels.level ?? 'unknown' },
          dimensionSets: [['Stage'], ['Stage', 'Level']],
          metrics: [{ name: 'Restarts', unit: 'Count', value: a.by }],
        }),
      );
    } else if (a.type === 'ObserveLatency') {
      const series = LATENCY_SERIES[a.name];
      const seconds = Math.max(0, a.seconds);
      if (series?.gauge === Metric.restartLatency) {
        records.push(
          emfRecord({
            ...base,
            dimensions: { Stage: context.stage, Level: a.labels.level ?? 'unknown' },
            dimensionSets: [['Stage'], ['Stage', 'Level']],
            metrics: [{ name: 'RestartLatency', unit: 'Seconds', value: seconds }],
          }),
        );
      } else if (series?.gauge === Metric.faultDetectionLatency) {
        records.push(
          emfRecord({
            ...base,
            dimensions: { Stage: context.stage },
            dimensionSets: [['Stage']],
            metrics: [{ name: 'FaultDetectionLatency', unit: 'Seconds', value: seconds }],
          }),
        );
      }
    }
  }
  return records;
}

/** Writes records as one JSON line each (to stdout by default, where Lambda's log capture picks them up). */
export function writeEmf(
  records: EmfRecord[],
  write: (line: string) => void = (l) => process.stdout.write(l),
): void {
  for (const r of records) write(`${JSON.stringify(r)}\n`);
}

/**
 * The CloudWatch sink of aws mode: each written decision's alarm metrics as EMF lines on stdout. It exports
 * no totals (`push` does nothing): the counters behind alarms are the per-decision increments.
 */
export class EmfMetricsSink implements MetricsSink {
  constructor(
    private readonly options: {
      /** The `Stage` dimension. */
      stage: string;
      /** Where the lines go; default stdout (Lambda's log capture). */
      write?: (line: string) => void;
    },
  ) {}

  async recordDecision(actions: readonly Action[], at: number): Promise<void> {
    writeEmf(emfRecordsForActions(actions, { at, stage: this.options.stage }), this.options.write);
  }

  async push(_samples: MetricSamples): Promise<void> {}
}
