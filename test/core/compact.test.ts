import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  APPLIED_COMMANDS_MIN,
  compactRecord,
  LISTED_PER_REMEDIATION,
  MAX_NEW_RECORD_BYTES,
  MAX_RECORD_BYTES,
  unshardedBytes,
} from '../../core/decide/compact.ts';
import { decide, newJobRecord } from '../../core/decide.ts';
import type { Command } from '../../core/observations.ts';
import type { JobSpec } from '../../core/spec/types.ts';
import { grow, runningRecord } from './big-record.ts';
import { makeSpec } from './dsl.ts';

/** A spec of `replicas` pods padded (an annotation) so its first record takes `newBytes`. */
const paddedSpec = (replicas: number, newBytes: number): JobSpec => {
  const spec = makeSpec({ name: 'big-job', replicas });
  const base = unshardedBytes(
    newJobRecord(spec, { uid: 'uid-big', submittedBy: 'alice', now: 1_000_000 }).job,
  );
  const pad = newBytes - base - '"pad":""'.length;
  return { ...spec, annotations: { pad: 'a'.repeat(Math.max(0, pad)) } };
};

describe('compactRecord', () => {
  it('returns a record that fits as the same object', () => {
    const job = grow(runningRecord(makeSpec({ replicas: 4 })), { restarts: 3 });
    expect(compactRecord(job)).toBe(job);
  });

  it('drops a finished job’s rule state first and keeps every remediation when that is enough', () => {
    const job = grow(runningRecord(makeSpec({ replicas: 4 })), { restarts: 3, ruleStateBytes: 20_000 });
    job.phase = 'Cancelled';
    const out = compactRecord(job, unshardedBytes(job) - 10_000);
    expect(out.ruleState).toBeUndefined();
    expect(out.remediations).toEqual(job.remediations);
    expect(job.ruleState).toBeDefined();
  });

  it('keeps a running job’s rule state and cuts long remediation lists to their first entries plus counts', () => {
    const job = grow(runningRecord(makeSpec({ replicas: 200 })), { restarts: 10, ruleStateBytes: 20_000 });
    const out = compactRecord(job, unshardedBytes(job) - 50_000);
    expect(out.ruleState).toEqual(job.ruleState);
    expect(out.remediations).toHaveLength(10);
    expect(out.remediations[0]!.pods).toEqual(job.remediations[0]!.pods.slice(0, LISTED_PER_REMEDIATION));
    expect(out.remediations[0]!.counts).toEqual({ pods: 200, ranks: 200, nodes: 200 });
  });

  it('then drops the oldest remediations but keeps the open one of the current generation', () => {
    const job = grow(runningRecord(makeSpec({ replicas: 200 })), { restarts: 50 });
    delete job.remediations.at(-1)!.recoveredAt;
    const cut = compactRecord(job, Number.MAX_SAFE_INTEGER - 1);
    const limit = unshardedBytes({ ...job, remediations: [] }) + 3000;
    const out = compactRecord(job, limit);
    expect(unshardedBytes(out)).toBeLessThanOrEqual(limit);
    expect(cut).toBe(job);
    expect(out.remediations.at(-1)!.generation).toBe(50);
    expect(out.remediations.at(-1)!.recoveredAt).toBeUndefined();
    expect(out.remediations.length).toBeLessThan(50);
    expect(out.remediations.map((r) => r.generation)).toEqual(
      job.remediations.slice(-out.remediations.length).map((r) => r.generation),
    );
    expect(Object.keys(out.nodeFaults)).toHaveLength(200);
  });

  it('then drops the least faulty nodes’ counts, then old command ids, then a running job’s rule state', () => {
    const job = grow(runningRecord(makeSpec({ replicas: 200 })), { restarts: 5, ruleStateBytes: 5000 });
    const out = compactRecord(
      job,
      unshardedBytes({ ...job, remediations: [], nodeFaults: {}, ruleState: 1 }),
    );
    expect(out.remediations).toEqual([]);
    expect(out.nodeFaults).toEqual({});
    expect(out.appliedCommands).toEqual(job.appliedCommands!.slice(-APPLIED_COMMANDS_MIN));
    expect(out.ruleState).toBeUndefined();
  });
});

describe('decide keeps every record it writes under the store guard', () => {
  const commandArb: fc.Arbitrary<Command> = fc.constantFrom<Command>(
    { kind: 'Cancel', by: 'bob' },
    { kind: 'Restart', level: 'job', by: 'bob' },
    { kind: 'Restart', level: 'process', by: 'bob' },
    { kind: 'Suspend', by: 'bob' },
  );

  it('fits MAX_RECORD_BYTES after any command on a big job grown by up to 80 job-level restarts (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 80 }),
        fc.integer({ min: 0, max: 120_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        commandArb,
        fc.boolean(),
        (replicas, restarts, ruleStateBytes, slack, command, finished) => {
          const spec = paddedSpec(replicas, MAX_NEW_RECORD_BYTES - slack);
          const job = grow(runningRecord(spec), { restarts, ruleStateBytes });
          if (finished) job.phase = 'Failed';
          const { job: out } = decide(job, [{ type: 'Command', command, at: 9e6, id: 'cmd-last' }], 9e6);
          expect(unshardedBytes(out)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
          if (command.kind === 'Cancel' && !finished) expect(out.phase).toBe('Cancelled');
        },
      ),
      { numRuns: 60 },
    );
  });
});
