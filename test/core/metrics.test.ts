import { describe, expect, it } from 'vitest';
import {
  formatLe,
  LATENCY_BUCKETS,
  latencyToIncrements,
  Metric,
  metricWritesForActions,
  observeLatency,
} from '../../core/metrics.ts';

const bucketsOf = (incs: ReturnType<typeof latencyToIncrements>) =>
  Object.fromEntries(incs.filter((i) => i.name.endsWith('_bucket')).map((i) => [i.labels.le, i.by]));

describe('latencyToIncrements', () => {
  it.each([
    { seconds: 0.05, firstCounted: '0.1' },
    { seconds: 0.1, firstCounted: '0.1' },
    { seconds: 0.3, firstCounted: '0.5' },
    { seconds: 7, firstCounted: '10' },
    { seconds: 600, firstCounted: '600' },
    { seconds: 601, firstCounted: '+Inf' },
  ])(
    'counts $seconds s in every bucket from le=$firstCounted up and in none below',
    ({ seconds, firstCounted }) => {
      const incs = latencyToIncrements('h', { level: 'process' }, seconds);
      const les = [...LATENCY_BUCKETS.map(formatLe), '+Inf'];
      const first = les.indexOf(firstCounted);
      expect(bucketsOf(incs)).toEqual(Object.fromEntries(les.map((le, i) => [le, i >= first ? 1 : 0])));
    },
  );

  it('adds the observation to _sum and one to _count with the caller labels and no le', () => {
    const incs = latencyToIncrements('h', { level: 'pod' }, 2.5);
    expect(incs.filter((i) => !i.name.endsWith('_bucket'))).toEqual([
      { name: 'h_sum', labels: { level: 'pod' }, by: 2.5 },
      { name: 'h_count', labels: { level: 'pod' }, by: 1 },
    ]);
    expect(incs.filter((i) => i.name === 'h_bucket')).toHaveLength(LATENCY_BUCKETS.length + 1);
  });

  it.each([
    { seconds: -0.2, sum: 0 },
    { seconds: 0, sum: 0 },
  ])('counts a clock-skewed latency of $seconds s as $sum', ({ seconds, sum }) => {
    expect(latencyToIncrements('h', {}, seconds).find((i) => i.name === 'h_sum')?.by).toBe(sum);
  });

  it('refuses a latency that is not a finite number', () => {
    expect(() => latencyToIncrements('h', {}, Number.NaN)).toThrow(/finite/);
  });
});

describe('observeLatency', () => {
  it.each([
    {
      name: Metric.restartLatency,
      labels: { level: 'process', job: 'team-a/j1', pod: 'p-0' },
      histogram: Metric.restartLatencySeconds,
      gauge: Metric.restartLatency,
      kept: { level: 'process' },
    },
    {
      name: Metric.restartLatencySeconds,
      labels: { level: 'job' },
      histogram: Metric.restartLatencySeconds,
      gauge: Metric.restartLatency,
      kept: { level: 'job' },
    },
    {
      name: Metric.faultDetectionLatency,
      labels: { job: 'team-a/j1', level: 'pod' },
      histogram: Metric.detectionLatencySeconds,
      gauge: Metric.faultDetectionLatency,
      kept: {},
    },
  ] as {
    name: string;
    labels: Record<string, string>;
    histogram: string;
    gauge: string;
    kept: Record<string, string>;
  }[])('records $name as histogram $histogram and gauge $gauge with only bounded labels', (c) => {
    const { increments, gauge } = observeLatency(c.name, c.labels, 3);
    expect(gauge).toEqual({ name: c.gauge, labels: c.kept, value: 3 });
    expect(increments.find((i) => i.name === `${c.histogram}_count`)).toEqual({
      name: `${c.histogram}_count`,
      labels: c.kept,
      by: 1,
    });
  });

  it('records an unknown latency name as a histogram of that name without a gauge', () => {
    const { increments, gauge } = observeLatency('custom_seconds', { a: 'b' }, 1);
    expect(gauge).toBeUndefined();
    expect(increments.at(-1)).toEqual({ name: 'custom_seconds_count', labels: { a: 'b' }, by: 1 });
  });
});

describe('metricWritesForActions', () => {
  it('keeps counter increments, expands latencies into histogram increments and keeps the last gauge value', () => {
    const { increments, gauges } = metricWritesForActions([
      { type: 'IncrementCounter', name: Metric.jobsRestarted, labels: {}, by: 1 },
      { type: 'ObserveLatency', name: Metric.restartLatency, labels: { level: 'pod' }, seconds: 30 },
      { type: 'ObserveLatency', name: Metric.restartLatency, labels: { level: 'pod' }, seconds: 20 },
      { type: 'EnsureService' },
    ]);
    expect(gauges).toEqual([{ name: Metric.restartLatency, labels: { level: 'pod' }, value: 20 }]);
    expect(increments[0]).toEqual({ name: Metric.jobsRestarted, labels: {}, by: 1 });
    const count = increments.filter((i) => i.name === `${Metric.restartLatencySeconds}_count`);
    expect(count).toEqual([
      { name: `${Metric.restartLatencySeconds}_count`, labels: { level: 'pod' }, by: 1 },
      { name: `${Metric.restartLatencySeconds}_count`, labels: { level: 'pod' }, by: 1 },
    ]);
  });
});
