/**
 * The per-instance caches of functions/shell/job-rules.ts: compiled rules follow the job's rules, and a rule
 * state this instance wrote is reused only at the very record version that carries it.
 */
import { describe, expect, it } from 'vitest';
import type { JobRecord } from '../../../core/job.ts';
import { compiledRulesFor, rememberRuleState, ruleStateFor } from '../../../functions/shell/job-rules.ts';
import { evaluateLines } from '../../../rules/engine.ts';
import { runningRecord } from '../../core/big-record.ts';
import { makeSpec, rule } from '../../core/dsl.ts';

const T = 5_000_000;
let uid = 0;
const job = (): JobRecord => {
  const j = runningRecord(makeSpec({ runPolicy: { logMonitoringConfiguration: [rule('Loss')] } }), T);
  j.uid = `uid-job-rules-${uid++}`;
  return j;
};
/** `job` as the store would return it: a fresh copy of what was written. */
const reread = (j: JobRecord): JobRecord => JSON.parse(JSON.stringify(j)) as JobRecord;

/** Evaluates one line and returns the job as decide would write it with the new state, and the state. */
const advance = (j: JobRecord, at = T + 1000) => {
  const compiled = compiledRulesFor(j);
  if (!compiled) throw new Error('the job has rules');
  const { state } = evaluateLines(
    compiled,
    ruleStateFor(compiled, j, at),
    [{ stream: 'p/0', timestamp: at, text: 'Loss: 1.0' }],
    at,
  );
  const written = { ...j, ruleState: state, version: j.version + 1 };
  return { written, state };
};

describe('compiledRulesFor', () => {
  it('compiles a job once, and again when its rules change', () => {
    const j = job();
    const first = compiledRulesFor(j);
    expect(compiledRulesFor(reread(j))).toBe(first);
    const updated = reread(j);
    updated.spec.runPolicy.logMonitoringConfiguration = [rule('Other')];
    const second = compiledRulesFor(updated);
    expect(second).not.toBe(first);
    expect(second?.rules.map((r) => r.name)).toEqual(['Other']);
  });
});

describe('ruleStateFor after rememberRuleState', () => {
  it('reuses the state this instance wrote when the record read back is at that version', () => {
    const { written, state } = advance(job());
    rememberRuleState(written, state);
    const compiled = compiledRulesFor(written);
    expect(compiled && ruleStateFor(compiled, reread(written), T + 2000)).toBe(state);
  });

  it('keeps the remembered state as written while later batches evaluate from it', () => {
    const { written, state } = advance(job());
    rememberRuleState(written, state);
    const snapshot = JSON.parse(JSON.stringify(state));
    const next = advance(reread(written), T + 3000);
    expect(next.state).not.toBe(state);
    expect(next.state.clock).toBe(T + 3000);
    expect(JSON.parse(JSON.stringify(state))).toEqual(snapshot);
  });

  it("parses the stored state when the record is at another version (another writer's)", () => {
    const { written, state } = advance(job());
    rememberRuleState(written, state);
    const other = reread(written);
    other.version += 1;
    (other.ruleState as { clock: number }).clock = T + 5000;
    const compiled = compiledRulesFor(other);
    const loaded = compiled && ruleStateFor(compiled, other, T + 6000);
    expect(loaded).not.toBe(state);
    expect(loaded?.clock).toBe(T + 5000);
  });

  it('remembers nothing when the written record does not hold the state object (decide replaced or dropped it)', () => {
    const { written, state } = advance(job());
    const compacted = { ...written, ruleState: undefined };
    rememberRuleState(compacted, state);
    const compiled = compiledRulesFor(compacted);
    const loaded = compiled && ruleStateFor(compiled, reread(compacted), T + 2000);
    expect(loaded).not.toBe(state);
    expect(loaded?.clock).toBe(T);
  });

  it('starts fresh for a new generation even at the remembered version', () => {
    const { written, state } = advance(job());
    rememberRuleState(written, state);
    const restarted = reread(written);
    restarted.generation += 1;
    const compiled = compiledRulesFor(restarted);
    const loaded = compiled && ruleStateFor(compiled, restarted, T + 2000);
    expect(loaded).not.toBe(state);
    expect(loaded?.generation).toBe(restarted.generation);
  });
});
