import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  EMF_NAMESPACE,
  emfRecord,
  emfRecordsForActions,
  writeEmf,
} from '../../../adapters/aws/cloudwatch.ts';
import type { Action } from '../../../core/actions.ts';
import { Metric } from '../../../core/metrics.ts';

/** The EMF specification's document shape (CloudWatch "Specification: Embedded metric format"). */
const UNITS = [
  'Seconds',
  'Microseconds',
  'Milliseconds',
  'Bytes',
  'Kilobytes',
  'Megabytes',
  'Gigabytes',
  'Terabytes',
  'Bits',
  'Kilobits',
  'Megabits',
  'Gigabits',
  'Terabits',
  'Percent',
  'Count',
  'Bytes/Second',
  'Kilobytes/Second',
  'Megabytes/Second',
  'Gigabytes/Second',
  'Terabytes/Second',
  'Bits/Second',
  'Kilobits/Second',
  'Megabits/Second',
  'Gigabits/Second',
  'Terabits/Second',
  'Count/Second',
  'None',
] as const;
const emfSpec = z
  .looseObject({
    _aws: z.object({
      Timestamp: z.number().int().nonnegative(),
      CloudWatchMetrics: z
        .array(
          z.object({
            Namespace: z.string().min(1).max(255),
            Dimensions: z.array(z.array(z.string().min(1)).max(30)),
            Metrics: z
              .array(
                z.object({
                  Name: z.string().min(1).max(255),
                  Unit: z.enum(UNITS).optional(),
                  StorageResolution: z.union([z.literal(1), z.literal(60)]).optional(),
                }),
              )
              .max(100),
          }),
        )
        .min(1),
    }),
  })
  .superRefine((doc, ctx) => {
    for (const d of doc._aws.CloudWatchMetrics) {
      for (const key of d.Dimensions.flat()) {
        if (typeof doc[key] !== 'string')
          ctx.addIssue({ code: 'custom', message: `dimension ${key} must be a string member` });
      }
      for (const m of d.Metrics) {
        const v = doc[m.Name];
        const ok =
          typeof v === 'number' ||
          (Array.isArray(v) && v.length <= 100 && v.every((x) => typeof x === 'number'));
        if (!ok) ctx.addIssue({ code: 'custom', message: `metric ${m.Name} must be a number member` });
      }
    }
  });

describe('CloudWatch embedded metric format', () => {
  const at = 1_700_000_000_000;
  const actions: Action[] = [
    { type: 'IncrementCounter', name: Metric.jobsFailed, labels: { reason: 'MaxRetriesExceeded' }, by: 1 },
    { type: 'IncrementCounter', name: Metric.restarts, labels: { level: 'pod', reason: 'NodeFault' }, by: 1 },
    {
      type: 'ObserveLatency',
      name: Metric.restartLatency,
      labels: { level: 'pod', job: 'a/b' },
      seconds: 42.5,
    },
    { type: 'ObserveLatency', name: Metric.detectionLatencySeconds, labels: {}, seconds: 0.8 },
    { type: 'IncrementCounter', name: Metric.logLinesEvaluated, labels: {}, by: 100 },
    { type: 'EnsureService' },
  ];

  it('turns failures, restarts and both latencies into EMF records in namespace TrainKeeper', () => {
    const records = emfRecordsForActions(actions, { at, stage: 'prod' });
    expect(records.map((r) => Object.keys(r).filter((k) => k !== '_aws'))).toEqual([
      ['Stage', 'Reason', 'JobFailures'],
      ['Stage', 'Level', 'Restarts'],
      ['Stage', 'Level', 'RestartLatency'],
      ['Stage', 'FaultDetectionLatency'],
    ]);
    expect(records[2]).toEqual({
      _aws: {
        Timestamp: at,
        CloudWatchMetrics: [
          {
            Namespace: EMF_NAMESPACE,
            Dimensions: [['Stage'], ['Stage', 'Level']],
            Metrics: [{ Name: 'RestartLatency', Unit: 'Seconds' }],
          },
        ],
      },
      Stage: 'prod',
      Level: 'pod',
      RestartLatency: 42.5,
    });
    expect(records[0]?.Reason).toBe('MaxRetriesExceeded');
  });

  it('produces documents that satisfy the EMF specification shape', () => {
    for (const r of emfRecordsForActions(actions, { at, stage: 'dev' })) {
      const parsed = emfSpec.safeParse(JSON.parse(JSON.stringify(r)));
      expect(parsed.error?.issues ?? []).toEqual([]);
    }
  });

  it('refuses a dimension set that names a dimension without a value', () => {
    expect(() =>
      emfRecord({
        at,
        dimensions: {},
        dimensionSets: [['Stage']],
        metrics: [{ name: 'X', unit: 'Count', value: 1 }],
      }),
    ).toThrow(/Stage/);
  });

  it('writes one JSON line per record', () => {
    const lines: string[] = [];
    writeEmf(emfRecordsForActions(actions, { at, stage: 'dev' }), (l) => lines.push(l));
    expect(lines).toHaveLength(4);
    for (const l of lines) {
      expect(l.endsWith('\n')).toBe(true);
      expect(emfSpec.safeParse(JSON.parse(l)).success).toBe(true);
    }
  });
});
