/**
 * The record ⇄ items layout (adapters/dynamo/layout.ts) as pure functions: a split record assembles back to
 * itself, and a heartbeat or a worker line changes only the head and the one part that holds its slot or stream.
 */
import { describe, expect, it } from 'vitest';
import {
  assembleRecord,
  chooseLayout,
  HIST_SK,
  RULES_SK,
  SPEC_SK,
  splitRecord,
  streamPart,
} from '../../../adapters/dynamo/layout.ts';
import type { JobRecord } from '../../../core/job.ts';
import { grow, runningRecord } from '../../core/big-record.ts';
import { makeSpec } from '../../core/dsl.ts';

const parse = (parts: Map<string, string>) =>
  new Map([...parts].map(([sk, text]) => [sk, JSON.parse(text) as unknown]));

/** A rule state in the engine's shape, one entry per stream for a stream-scope rule. */
const ruleState = (job: JobRecord, step: number) => ({
  v: 1,
  generation: job.generation,
  startedAt: 1,
  clock: 1000 + step,
  rules: {
    Hang: {
      job: { verdict: 'HEALTHY', lastMatchAt: 5 },
      streams: Object.fromEntries(
        job.pods.map((p, i) => [`${p.name}_ns_c-${i}`, { verdict: 'HEALTHY', slow: 0, lastMatchAt: step }]),
      ),
    },
  },
});

const roundTrip = (job: JobRecord) => {
  const layout = chooseLayout(job, 'b1');
  const { head, parts } = splitRecord(job, layout);
  return assembleRecord(head, layout, parse(parts));
};

describe('store layout', () => {
  it('assembles a split record back to itself, for small and big jobs, with and without rule streams', () => {
    for (const replicas of [1, 7, 300]) {
      const job = grow(runningRecord(makeSpec({ replicas })), { restarts: 3 });
      expect(roundTrip(job)).toEqual(job);
      const withRules = { ...job, ruleState: ruleState(job, 3) };
      expect(roundTrip(withRules)).toEqual(withRules);
      const opaque = { ...job, ruleState: { generation: 2, blob: 'r' } };
      expect(roundTrip(opaque)).toEqual(opaque);
    }
  });

  it('keeps every slot part near 1 KB and puts history, spec and rule state in their own parts', () => {
    const job = runningRecord(makeSpec({ replicas: 1000 }));
    const layout = chooseLayout(job, 'b1');
    const { head, parts } = splitRecord(job, layout);
    expect(layout.k).toBeGreaterThanOrEqual(1);
    for (const [sk, text] of parts) if (sk.startsWith('P#S#')) expect(text.length).toBeLessThan(1024);
    expect(parts.has(SPEC_SK) && parts.has(HIST_SK) && parts.has(RULES_SK)).toBe(true);
    expect(head).not.toHaveProperty('pods');
    expect(head).not.toHaveProperty('spec');
    expect(head).not.toHaveProperty('remediations');
  });

  it('changes only the slot part of a heartbeat, and only the stream part of a line, besides the head', () => {
    const job = { ...runningRecord(makeSpec({ replicas: 1000 })), ruleState: undefined as unknown };
    job.ruleState = ruleState(job, 1);
    const layout = chooseLayout(job, 'b1');
    const before = splitRecord(job, layout).parts;
    const next = structuredClone(job);
    next.pods[500]!.lastSeenAt = 99;
    const state = next.ruleState as ReturnType<typeof ruleState>;
    const stream = Object.keys(state.rules.Hang.streams)[700]!;
    state.rules.Hang.streams[stream]!.lastMatchAt = 42;
    state.clock = 2000;
    const after = splitRecord(next, layout).parts;
    const changed = [...after].filter(([sk, text]) => before.get(sk) !== text).map(([sk]) => sk);
    expect(changed.sort()).toEqual(
      [
        RULES_SK,
        `P#R#b1#${String(streamPart(stream, layout.m)).padStart(6, '0')}`,
        `P#S#b1#${String(Math.floor(500 / layout.k)).padStart(6, '0')}`,
      ].sort(),
    );
  });
});
