import { describe, expect, it } from 'vitest';
import {
  age,
  describeJob,
  duration,
  jobStatus,
  jobTable,
  latency,
  statusLine,
  table,
} from '../../cli/render.ts';
import type { EventDocument, JobDocument } from '../../core/api/documents.ts';

const NOW = Date.parse('2026-06-01T12:00:00Z');

function job(status: Partial<JobDocument['status']> = {}): JobDocument {
  return {
    apiVersion: 'sagemaker.amazonaws.com/v1',
    kind: 'HyperPodPyTorchJob',
    metadata: {
      name: 'llama',
      namespace: 'team-a',
      uid: 'u-1',
      creationTimestamp: '2026-06-01T11:00:00.000Z',
      labels: {},
      annotations: {},
      submittedBy: 'arn:aws:iam::1:user/ml',
    },
    spec: {
      runPolicy: {
        jobMaxRetryCount: 10,
        restartPolicy: { numRestartBeforeFullJobRestart: 3, maxFullJobRestarts: 1 },
      },
    },
    status: {
      phase: 'Running',
      generation: 2,
      conditions: [
        {
          type: 'Created',
          status: 'True',
          reason: 'Created',
          message: 'm',
          lastTransitionTime: '2026-06-01T11:58:00.000Z',
        },
        {
          type: 'Running',
          status: 'True',
          reason: 'Running',
          message: 'ok',
          lastTransitionTime: '2026-06-01T11:59:00.000Z',
        },
      ],
      startTime: '2026-06-01T11:58:01.000Z',
      restartCount: 2,
      restartStatus: {
        currentEvalPeriod: '2026-06-01T11:58:00.000Z',
        restartCount: 1,
        fullJobRestartCount: 0,
      },
      processRestartCount: 2,
      pods: [
        {
          name: 'llama-pods-0-g2',
          replica: 'pods',
          index: 0,
          rank: 0,
          spare: false,
          phase: 'Running',
          node: 'node-a',
          ip: '10.0.0.1',
          agentState: 'RUNNING',
          agentGeneration: 2,
          lastSeen: '2026-06-01T11:59:58.000Z',
        },
        {
          name: 'llama-pods-1-g0',
          replica: 'pods',
          index: 1,
          rank: null,
          spare: true,
          phase: 'Running',
          node: 'node-b',
          ip: '10.0.0.2',
          agentState: 'READY',
        },
      ],
      remediations: [
        {
          generation: 2,
          reason: 'WorkerCrash',
          level: 'process',
          faultTime: '2026-06-01T11:59:00.000Z',
          detectionTime: '2026-06-01T11:59:00.180Z',
          recoveryTime: '2026-06-01T11:59:02.580Z',
          detectionLatencyMs: 180,
          restartLatencyMs: 2400,
          pods: ['llama-pods-0-g1'],
          ranks: [1],
          nodes: [],
          message: 'rank 1 exited with code 1',
        },
      ],
      budgets: { processRestartsLeft: 8, fullJobRestartsLeft: 1, restartsBeforeFullJobRestartLeft: null },
      progress: { step: 1200, time: '2026-06-01T11:59:59.000Z', restartsWithoutProgress: 0 },
      nodeFaults: {},
      ...status,
    },
  } as unknown as JobDocument;
}

describe('durations', () => {
  it.each([
    [0, '0s'],
    [-5, '0s'],
    [850, '850ms'],
    [42_000, '42s'],
    [192_000, '3m12s'],
    [180_000, '3m'],
    [7_500_000, '2h5m'],
    [3 * 86_400_000 + 4 * 3_600_000, '3d4h'],
  ])('prints %i ms as %s', (ms, text) => {
    expect(duration(ms)).toBe(text);
  });

  it.each([
    [null, '-'],
    [180, '180ms'],
    [2400, '2.4s'],
    [63_000, '1m3s'],
  ])('prints a latency of %s ms as %s', (ms, text) => {
    expect(latency(ms)).toBe(text);
  });

  it('prints the age of a time relative to now, and - for no time', () => {
    expect(age('2026-06-01T11:59:18.000Z', NOW)).toBe('42s');
    expect(age(undefined, NOW)).toBe('-');
  });
});

describe('job status as HyperPod’s CLI shows it', () => {
  it.each([
    [
      'the last True condition',
      [
        ['Created', 'True'],
        ['PodsRunning', 'True'],
        ['Running', 'True'],
      ],
      'Running',
    ],
    [
      'the last True condition even when a later one is False',
      [
        ['Created', 'True'],
        ['Running', 'False'],
        ['Restarting', 'True'],
        ['Succeeded', 'False'],
      ],
      'Restarting',
    ],
    [
      'the last True state condition, not the advisory LogsNotArriving after it',
      [
        ['Created', 'True'],
        ['Running', 'True'],
        ['LogsNotArriving', 'True'],
      ],
      'Running',
    ],
    ['the phase when no condition is True', [['Created', 'False']], 'Running'],
    ['the phase when there are no conditions', [], 'Running'],
  ])('is %s', (_, conditions, expected) => {
    const j = job({
      conditions: (conditions as [string, string][]).map(([type, status]) => ({
        type,
        status,
        reason: type,
        message: '',
        lastTransitionTime: '2026-06-01T11:00:00.000Z',
      })) as JobDocument['status']['conditions'],
    });
    expect(jobStatus(j)).toBe(expected);
  });
});

describe('tables', () => {
  it('aligns columns with two spaces and never pads the last column', () => {
    expect(
      table(
        ['A', 'LONGER', 'C'],
        [
          ['xx', 'y', 'last'],
          ['x', 'yyyyyyy', 'z'],
        ],
      ),
    ).toBe(['A   LONGER   C', 'xx  y        last', 'x   yyyyyyy  z'].join('\n'));
  });

  it('lists a job with its status, phase, generation, restarts, step and age from the Created condition', () => {
    expect(jobTable([job()], NOW, true)).toBe(
      [
        'NAMESPACE  NAME   STATUS   PHASE    GEN  RESTARTS  STEP  AGE',
        'team-a     llama  Running  Running  2    2         1200  2m',
      ].join('\n'),
    );
  });

  it('summarizes progress in one status line for --watch', () => {
    expect(statusLine(job())).toBe(
      'team-a/llama: Running, phase Running, generation 2, ranks running 1/1, step 1200, restarts 2',
    );
  });
});

describe('describe page', () => {
  const events: EventDocument[] = [
    {
      at: Date.parse('2026-06-01T11:59:00.180Z'),
      time: '2026-06-01T11:59:00.180Z',
      type: 'Warning',
      reason: 'WorkerCrash',
      message: 'rank 1 exited with code 1:\nRuntimeError',
      generation: 2,
    },
  ] as EventDocument[];
  const page = describeJob(job(), events, NOW);

  it.each([
    ['the status from the last True condition', /^Status: +Running$/m],
    ['the age from the Created condition', /^Age: +2m$/m],
    ['the generation', /^Generation: +2$/m],
    ['process restart budget left of its limit', /process restarts +8 of 10/],
    ['an unlimited budget', /restarts before full job restart +unlimited/],
    [
      'the rank pod with node, IP, agent state and last seen',
      /llama-pods-0-g2 +0 +Running +node-a +10\.0\.0\.1 +RUNNING +2 +2s ago/,
    ],
    ['the spare pod marked spare', /llama-pods-1-g0 +spare +Running +node-b/],
    [
      'the remediation with its detection and restart latencies',
      /2 +process +WorkerCrash +2026-06-01T11:59:00Z +180ms +2\.4s +llama-pods-0-g1 +1 +rank 1 exited/,
    ],
    [
      'an event with a multi-line message on one line',
      /Warning +WorkerCrash +2 +rank 1 exited with code 1: ⏎ RuntimeError/,
    ],
  ])('shows %s', (_, pattern) => {
    expect(page).toMatch(pattern);
  });

  it('says what to fix when worker lines are not arriving', () => {
    const j = job();
    j.status.conditions.push({
      type: 'LogsNotArriving',
      status: 'True',
      reason: 'LogsNotArriving',
      message: 'Check that the subscription filter passes worker lines',
      lastTransitionTime: '2026-06-01T11:59:00.000Z',
    });
    const page = describeJob(j, [], NOW);
    expect(page).toMatch(/Log path:\n {2}worker lines are not arriving since .*hang rules are held/);
    expect(page).toMatch(/What to fix: Check that the subscription filter passes worker lines/);
    expect(describeJob(job(), [], NOW)).not.toContain('Log path:');
  });

  it('says "recovering" for a remediation that has not recovered yet', () => {
    const j = job();
    const r = j.status.remediations[0];
    if (r) r.restartLatencyMs = null;
    expect(describeJob(j, [], NOW)).toMatch(/180ms +recovering/);
  });

  it('shows an in-process restart that escalated to process level as superseded, with both levels', () => {
    const j = job();
    const first = j.status.remediations[0]!;
    j.status.remediations = [
      { ...first, generation: 2, level: 'inprocess', restartLatencyMs: null, recoveryTime: undefined },
      { ...first, generation: 3, level: 'process', reason: 'InProcessRestartTimeout' },
    ];
    const page = describeJob(j, [], NOW);
    expect(page).toMatch(/2 +inprocess +WorkerCrash +\S+ +180ms +superseded \(gen 3\)/);
    expect(page).toMatch(/3 +process +InProcessRestartTimeout +\S+ +180ms +2\.4s/);
  });
});

describe('elastic jobs', () => {
  const elastic = (current: number, target: number): Partial<JobDocument['status']> => ({
    worldSize: current,
    elasticScalingStatus: {
      currentReplicas: current,
      targetReplicas: target,
      allowedSizes: [2, 3],
      capacity: 3,
      stage: current === target ? undefined : 'CreatingPods',
      scalingCount: 2,
      lastScalingTime: '2026-06-01T11:59:00.000Z',
      secondsBelowMax: 75,
      belowMaxSince: undefined,
      events: [
        {
          direction: 'down',
          from: 3,
          to: 2,
          reason: 'NodeFault',
          outcome: 'Completed',
          startTime: '2026-06-01T11:58:00.000Z',
          endTime: '2026-06-01T11:58:02.500Z',
          durationMs: 2500,
        },
      ],
    },
  });

  it('adds a WORLD column, with the target while the size changes, when any listed job is elastic', () => {
    expect(jobTable([job(elastic(2, 3)), job({ worldSize: 4 })], NOW, false)).toBe(
      [
        'NAME   STATUS   PHASE    WORLD  GEN  RESTARTS  STEP  AGE',
        'llama  Running  Running  2→3    2    2         1200  2m',
        'llama  Running  Running  4      2    2         1200  2m',
      ].join('\n'),
    );
  });

  it('describes the world size, the allowed sizes, the capacity and each scaling with its reason and duration', () => {
    const text = describeJob(job(elastic(2, 2)), [], NOW);
    expect(text).toMatch(/World size: +2 pod\(s\) holding a rank/);
    expect(text).toMatch(
      /Elastic: +current 2, target 2, allowed 2,3, capacity 3 node\(s\); 2 scaling\(s\), 1m15s below max/,
    );
    expect(text).toMatch(/down 3→2 {2}NodeFault {2}Completed in 2\.5s/);
  });
});
