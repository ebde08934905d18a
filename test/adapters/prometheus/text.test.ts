import { describe, expect, it } from 'vitest';
import { renderPrometheusText } from '../../../adapters/prometheus/text.ts';
import { Metric } from '../../../core/metrics.ts';

describe('renderPrometheusText', () => {
  it('renders families sorted by name with HELP and TYPE, labels sorted and escaped', () => {
    const text = renderPrometheusText(
      [
        { name: Metric.restarts, labels: { reason: 'Worker"Crash', level: 'process' }, value: 3 },
        { name: Metric.jobsCreated, labels: {}, value: 2 },
        { name: Metric.malformedEventsSkipped, labels: { kind: 'a\\b\nc' }, value: 1 },
      ],
      [{ name: Metric.restartLatency, labels: { level: 'pod' }, value: 12.5 }],
    );
    expect(text).toBe(
      [
        '# HELP hyperpod_training_operator_jobs_created_total Total number of jobs created.',
        '# TYPE hyperpod_training_operator_jobs_created_total counter',
        'hyperpod_training_operator_jobs_created_total 2',
        '# HELP hyperpod_training_operator_jobs_restart_latency Current job restart latency: seconds from fault detection to all agents RUNNING, latest restart.',
        '# TYPE hyperpod_training_operator_jobs_restart_latency gauge',
        'hyperpod_training_operator_jobs_restart_latency{level="pod"} 12.5',
        '# HELP trainkeeper_malformed_events_skipped_total Malformed inputs counted and skipped, by kind.',
        '# TYPE trainkeeper_malformed_events_skipped_total counter',
        'trainkeeper_malformed_events_skipped_total{kind="a\\\\b\\nc"} 1',
        '# HELP trainkeeper_restarts_total Restarts by level (inprocess, process, pod, job) and reason.',
        '# TYPE trainkeeper_restarts_total counter',
        'trainkeeper_restarts_total{level="process",reason="Worker\\"Crash"} 3',
        '',
      ].join('\n'),
    );
  });

  it('groups histogram series under one family with buckets in ascending le, then _sum and _count', () => {
    const h = Metric.detectionLatencySeconds;
    const text = renderPrometheusText(
      [
        { name: `${h}_count`, labels: {}, value: 2 },
        { name: `${h}_bucket`, labels: { le: '+Inf' }, value: 2 },
        { name: `${h}_bucket`, labels: { le: '10' }, value: 2 },
        { name: `${h}_bucket`, labels: { le: '2' }, value: 1 },
        { name: `${h}_sum`, labels: {}, value: 7.5 },
      ],
      [],
    );
    expect(text.split('\n').slice(1)).toEqual([
      `# TYPE ${h} histogram`,
      `${h}_bucket{le="2"} 1`,
      `${h}_bucket{le="10"} 2`,
      `${h}_bucket{le="+Inf"} 2`,
      `${h}_sum 7.5`,
      `${h}_count 2`,
      '',
    ]);
  });

  it('types a series outside the catalog from its name and renders nothing for no series', () => {
    expect(
      renderPrometheusText(
        [{ name: 'x_total', labels: {}, value: 1 }],
        [{ name: 'y', labels: {}, value: 0 }],
      ),
    ).toBe('# TYPE x_total counter\nx_total 1\n# TYPE y gauge\ny 0\n');
    expect(renderPrometheusText([], [])).toBe('');
  });
});
