/**
 * `rankPodsToAsk`: which agents a fault claim asks for `/status`. A small job asks every rank; a big one a
 * bounded set (claimants, suspects the record shows, the claimants' neighbours in rank order), and decide
 * still blames the rank that failed first when it is the claimant or near it.
 */
import { describe, expect, it } from 'vitest';
import { AGENTS_ASKED_PER_CLAIM, rankPodsToAsk } from '../../core/decide/slots.ts';
import { decide } from '../../core/decide.ts';
import type { JobRecord } from '../../core/job.ts';
import type { Observation } from '../../core/observations.ts';
import { runningRecord } from './big-record.ts';
import { makeSpec } from './dsl.ts';

const T = 5_000_000;
const job = (replicas: number, spares = 0): JobRecord => runningRecord(makeSpec({ replicas, spares }), T);
const pod = (j: JobRecord, rank: number): string => j.pods.find((s) => s.groupRank === rank)?.name as string;
const ranksOf = (j: JobRecord, pods: string[]): number[] =>
  pods.map((p) => j.pods.find((s) => s.name === p)?.groupRank as number);

describe('rankPodsToAsk', () => {
  it('asks every Running rank pod of a job no bigger than the limit, and no spare or pod not Running', () => {
    const j = job(4, 1);
    j.pods[2] = { ...(j.pods[2] as JobRecord['pods'][number]), podPhase: 'Pending' };
    expect(rankPodsToAsk(j, [pod(j, 0)])).toEqual([pod(j, 0), pod(j, 1), pod(j, 3)]);
  });

  it.each<[string, number[], number, number[]]>([
    [
      'a claimant in the middle: itself, then its neighbours nearest first, below before above',
      [10],
      5,
      [10, 9, 11, 8, 12],
    ],
    ['a claimant at rank 0: the neighbours below wrap round to the last ranks', [0], 5, [0, 99, 1, 98, 2]],
    ['two claimants take turns', [10, 50], 6, [10, 50, 9, 11, 49, 51]],
  ])('in a job of 100 ranks, %s', (_, claimants, limit, ranks) => {
    const j = job(100);
    const asked = rankPodsToAsk(
      j,
      claimants.map((r) => pod(j, r)),
      limit,
    );
    expect(ranksOf(j, asked)).toEqual(ranks);
  });

  it('asks the suspects the record shows (FAULTED at this generation, unreachable) before neighbours, at most half the limit', () => {
    const j = job(100);
    const at = (rank: number) => j.pods.findIndex((s) => s.groupRank === rank);
    for (const r of [70, 71, 72, 73])
      j.pods[at(r)] = {
        ...(j.pods[at(r)] as JobRecord['pods'][number]),
        agent: { state: 'FAULTED', generation: 0, at: T },
      };
    j.pods[at(80)] = {
      ...(j.pods[at(80)] as JobRecord['pods'][number]),
      unreachable: { count: 1, lastAt: T },
    };
    // FAULTED at an older generation is no suspect
    j.pods[at(90)] = {
      ...(j.pods[at(90)] as JobRecord['pods'][number]),
      agent: { state: 'FAULTED', generation: -1, at: T },
    };
    expect(ranksOf(j, rankPodsToAsk(j, [pod(j, 10)], 8))).toEqual([10, 70, 71, 72, 73, 9, 11, 8]);
  });

  it.each([0, -1, 2.5, Number.NaN])('refuses a limit of %s with a clear error', (limit) => {
    const j = job(4);
    expect(() => rankPodsToAsk(j, [pod(j, 0)], limit)).toThrow(/limit must be a positive integer/);
  });

  it('asks no neighbours for a claimant that holds no rank (a spare)', () => {
    const j = job(100, 1);
    const spare = j.pods.find((s) => s.spare)?.name as string;
    expect(rankPodsToAsk(j, [spare], 8)).toEqual([]);
  });

  it.each([2, 100, 16_384])(
    'asks at most the limit, every pod a Running rank pod, in a job of %i ranks',
    (replicas) => {
      const j = job(replicas, 2);
      const asked = rankPodsToAsk(j, [pod(j, replicas - 1), pod(j, 0)]);
      expect(asked.length).toBe(Math.min(replicas, AGENTS_ASKED_PER_CLAIM));
      expect(new Set(asked).size).toBe(asked.length);
      for (const p of asked) {
        const slot = j.pods.find((s) => s.name === p);
        expect(slot?.groupRank).not.toBeNull();
        expect(slot?.podPhase).toBe('Running');
      }
    },
  );
});

describe('blame after a bounded ask in a job of 4,096 ranks', () => {
  const J = job(4096);
  const faulted = (at: number) => ({
    status: 'faulted',
    faultCount: 0,
    reason: 'WorkerCrash',
    transitions: { FAULTED: new Date(at).toISOString() },
  });
  /** The `/status` answers of the asked pods: `failedAt` per rank, RUNNING for the rest. */
  const answers = (asked: string[], failedAt: Map<number, number>): Observation[] =>
    asked.map((p) => {
      const rank = J.pods.find((s) => s.name === p)?.groupRank as number;
      const at = failedAt.get(rank);
      return {
        type: 'AgentPolled',
        pod: p,
        at: T + 1000,
        status: at === undefined ? { status: 'running', faultCount: 0 } : faulted(at),
      };
    });

  it.each<[string, number, Map<number, number>, number]>([
    ['the claimant failed first (its own report came first)', 2000, new Map([[2000, T + 10]]), 2000],
    [
      'a neighbour failed first and the claimant is collateral',
      2001,
      new Map([
        [2000, T + 10],
        [2001, T + 17],
      ]),
      2000,
    ],
    [
      'the rank that failed first is 20 ranks away, its collateral spread along the ring',
      2020,
      new Map(Array.from({ length: 21 }, (_, i) => [2000 + i, T + 10 + i])),
      2000,
    ],
    [
      'the rank below rank 0 failed first (the ring wraps round)',
      0,
      new Map([
        [4095, T + 10],
        [0, T + 17],
      ]),
      4095,
    ],
  ])('blames the rank that failed first when %s', (_, claimant, failedAt, blamed) => {
    const asked = rankPodsToAsk(J, [pod(J, claimant)]);
    expect(asked.length).toBeLessThanOrEqual(AGENTS_ASKED_PER_CLAIM);
    const out = decide(J, answers(asked, failedAt), T + 1000);
    expect(out.job.generation).toBe(1);
    expect(out.job.remediations.at(-1)?.pods).toEqual([pod(J, blamed)]);
  });

  it('blames the claimant when the rank that failed first is far from it and unknown to the record (the bound)', () => {
    const asked = rankPodsToAsk(J, [pod(J, 3000)]);
    const failedAt = new Map([
      [100, T + 10],
      [3000, T + 17],
    ]);
    const out = decide(J, answers(asked, failedAt), T + 1000);
    expect(out.job.remediations.at(-1)?.pods).toEqual([pod(J, 3000)]);
  });
});
