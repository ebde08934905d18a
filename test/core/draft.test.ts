/**
 * decide's copy-on-write draft and its pod-name index (core/decide/draft.ts), the parts of decide that make
 * an observation cost O(changed slots): the index answers like a scan after slots are renewed, added and
 * removed; a batch of many observations (index lookups) gives the record one-at-a-time batches (scans)
 * give; and decide never writes to the record it is given, whichever path it takes.
 */
import { describe, expect, it } from 'vitest';
import {
  draftOf,
  releaseDraft,
  replaceSlot,
  SCANS_BEFORE_INDEX,
  slotPosition,
  writableSlot,
} from '../../core/decide/draft.ts';
import { slotForPod } from '../../core/decide/naming.ts';
import { renewSlot } from '../../core/decide/slots.ts';
import { decide, newJobRecord } from '../../core/decide.ts';
import type { JobRecord, PodSlot } from '../../core/job.ts';
import type { Observation } from '../../core/observations.ts';
import { runningRecord } from './big-record.ts';
import { given, makeSpec } from './dsl.ts';

const T0 = 1_000_000;

/** Freezes a value and everything it holds: a write to any part of it then throws (ES modules are strict). */
const deepFreeze = <T>(value: T): T => {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
};

const heartbeat = (pod: string, at: number, step?: number): Observation => ({
  type: 'AgentRecord',
  pod,
  at,
  record: {
    trainkeeper: 'agent/v1',
    ts: '',
    generation: 0,
    state: 'RUNNING',
    kind: 'heartbeat',
    ...(step !== undefined ? { progress: { step } } : {}),
  },
});

/** Every name's position by a plain scan, for names held now and names given. */
const scanned = (job: JobRecord, names: string[]): number[] =>
  names.map((n) => job.pods.findIndex((s) => s.name === n));

describe('the pod-name index of a draft', () => {
  const job = runningRecord(makeSpec({ replicas: 12, spares: 2 }), T0);

  it('answers as a scan does, past the lookups it scans for, for held, foreign and stale names', () => {
    const draft = draftOf(job);
    const names = [...job.pods.map((s) => s.name), 'llama-pods-99-g0', 'llama-pods-3-g7', ''];
    expect(names.length).toBeGreaterThan(SCANS_BEFORE_INDEX);
    expect(names.map((n) => slotPosition(draft, n))).toEqual(scanned(draft, names));
    expect(names.map((n) => slotPosition(draft, n))).toEqual(scanned(draft, names));
  });

  it('stays right when slots are renewed in place, added and removed', () => {
    const draft = draftOf(job);
    for (const s of job.pods) slotPosition(draft, s.name); // the index is built by now
    const old3 = draft.pods[3]!.name;
    const old5 = draft.pods[5]!.name;
    // Renewed in place (a pod replacement), twice for one slot, and a promotion that renames nothing.
    replaceSlot(draft, 3, renewSlot(draft, draft.pods[3]!, 1, ['node-a']));
    replaceSlot(draft, 3, renewSlot(draft, draft.pods[3]!, 2, []));
    replaceSlot(draft, 5, { ...draft.pods[12]!, groupRank: 5, spare: false });
    replaceSlot(draft, 12, renewSlot(draft, { ...draft.pods[5]!, groupRank: null, spare: true }, 1, []));
    const renamed = [old3, old5, 'llama-pods-3-g1', 'llama-pods-3-g2', ...draft.pods.map((s) => s.name)];
    expect(renamed.map((n) => slotPosition(draft, n))).toEqual(scanned(draft, renamed));
    expect(slotPosition(draft, 'llama-pods-3-g2')).toBe(3);
    // Added (an elastic relayout pushes) and removed (a relayout or dropped joining slots filter).
    const added: PodSlot = { ...draft.pods[0]!, index: 40, name: 'llama-pods-40-g0', groupRank: null };
    draft.pods.push(added);
    const names = [old3, old5, 'llama-pods-3-g1', 'llama-pods-3-g2', 'llama-pods-40-g0'];
    names.push(...draft.pods.map((s) => s.name));
    expect(names.map((n) => slotPosition(draft, n))).toEqual(scanned(draft, names));
    expect(slotPosition(draft, old3)).toBe(-1);
    expect(slotForPod(draft, 'llama-pods-3-g2')).toBe(draft.pods[3]);
    draft.pods = draft.pods.filter((s) => s.index % 2 === 0);
    expect(names.map((n) => slotPosition(draft, n))).toEqual(scanned(draft, names));
    expect(slotForPod(draft, 'llama-pods-40-g0')).toBe(added);
    releaseDraft(draft);
  });

  it('starts a draft of a record an earlier decide released from that index, and answers as a scan does', () => {
    const first = draftOf(job);
    for (const s of job.pods) slotPosition(first, s.name); // the index is built by now
    replaceSlot(first, 3, renewSlot(first, first.pods[3]!, 1, []));
    releaseDraft(first);
    const names = (record: JobRecord) => [
      ...record.pods.map((s) => s.name),
      ...job.pods.map((s) => s.name),
      'llama-pods-3-g1',
      'llama-pods-99-g0',
    ];

    // Straight on: every lookup is right.
    const next = draftOf(first);
    expect(names(next).map((n) => slotPosition(next, n))).toEqual(scanned(next, names(next)));
    releaseDraft(next);

    // Slots moved since the index was made: a miss rebuilds the inherited index.
    const shuffled = draftOf(first);
    shuffled.pods.reverse();
    expect(names(shuffled).map((n) => slotPosition(shuffled, n))).toEqual(scanned(shuffled, names(shuffled)));
    releaseDraft(shuffled);

    // A renewal in one draft copies the shared index first: another draft of the same record still finds
    // the slot by its old name.
    const renewing = draftOf(first);
    const old7 = renewing.pods[7]!.name;
    replaceSlot(renewing, 7, renewSlot(renewing, renewing.pods[7]!, 1, []));
    expect(slotPosition(renewing, old7)).toBe(-1);
    const other = draftOf(first);
    expect(slotPosition(other, old7)).toBe(7);
    expect(names(other).map((n) => slotPosition(other, n))).toEqual(scanned(other, names(other)));
    releaseDraft(renewing);
    releaseDraft(other);
  });

  it('copies a slot on its first write only, leaving the input slot as it was', () => {
    const input = deepFreeze(structuredClone(job));
    const draft = draftOf(input);
    const first = writableSlot(draft, draft.pods[4]!);
    first.lastSeenAt = T0 + 5;
    expect(writableSlot(draft, first)).toBe(first);
    expect(draft.pods[4]).toBe(first);
    expect(input.pods[4]!.lastSeenAt).toBe(T0);
    expect(draft.pods[5]).toBe(input.pods[5]);
    releaseDraft(draft);
    // A record that is no live draft is its holder's to write in place.
    const own = structuredClone(job);
    expect(writableSlot(own, own.pods[0]!)).toBe(own.pods[0]);
  });
});

describe('decide on big batches', () => {
  it('gives a batch of every pod heartbeat (index lookups) the record of one heartbeat per call (scans)', () => {
    const job = runningRecord(makeSpec({ replicas: 64 }), T0);
    const beats = job.pods.map((s, i) => heartbeat(s.name, T0 + 1_000 + i, i + 1));
    const batched = decide(job, beats, T0 + 2_000);
    let oneByOne = job;
    for (const b of beats) oneByOne = decide(oneByOne, [b], T0 + 2_000).job;
    expect(batched.job.pods).toEqual(oneByOne.pods);
    expect(batched.job.pods.map((s) => s.lastSeenAt)).toEqual(job.pods.map((_, i) => T0 + 1_000 + i));
    expect(batched.job.progress.step).toBe(64);
    expect(batched.job.nextCheckAt).toBe(oneByOne.nextCheckAt);
    expect(batched.job.version).toBe(job.version + 1);
  });

  it('replaces every failed pod once, promoting the READY spares first, when more pods fail than it scans for', () => {
    const s = given(makeSpec({ replicas: 10, spares: 2 }), { nodes: 16 });
    s.after(1000).bringUp();
    expect(s.job.phase).toBe('Running');
    const ranks = s.job.pods.filter((p) => p.groupRank !== null);
    const spares = s.job.pods.filter((p) => p.groupRank === null).map((p) => p.name);
    const failed = ranks.slice(0, SCANS_BEFORE_INDEX + 2).map((p) => p.name);
    for (const name of failed) s.world.pods.get(name)!.phase = 'Failed';
    const out = decide(deepFreeze(s.job), [s.world.observedPods(s.after(1000).now)], s.now);
    const deleted = out.actions.flatMap((a) => (a.type === 'DeletePods' ? a.pods : []));
    expect([...deleted].sort()).toEqual([...failed].sort());
    const names = out.job.pods.map((p) => p.name);
    for (const name of failed) expect(names).not.toContain(name);
    // The two spares now hold ranks; every other failed rank's slot has a pod of a new generation.
    const rankHolders = out.job.pods.filter((p) => p.groupRank !== null);
    expect(rankHolders.map((p) => p.groupRank).sort((a, b) => a! - b!)).toEqual(ranks.map((_, i) => i));
    expect(spares.every((n) => rankHolders.some((p) => p.name === n))).toBe(true);
    expect(new Set(names).size).toBe(names.length);
    expect(out.job.pods.filter((p) => p.podGeneration > 0)).toHaveLength(failed.length);
  });
});

describe('decide never writes to the record it is given', () => {
  const frozenRun = (spec = makeSpec({ replicas: 4, spares: 1 })) => {
    const s = given(spec, { nodes: 8 });
    s.after(1000).bringUp();
    return s;
  };
  const check = (job: JobRecord, observations: Observation[], now: number) => {
    const before = JSON.stringify(job);
    const out = decide(deepFreeze(job), observations, now);
    expect(JSON.stringify(job)).toBe(before);
    // The same decision as on a private copy of the same record.
    expect(out).toEqual(decide(structuredClone(job), observations, now));
    return out;
  };

  it.each<[string, (s: ReturnType<typeof frozenRun>) => Observation[]]>([
    ['a heartbeat', (s) => [heartbeat(s.slot(1).name, s.now, 7)]],
    [
      'a pod list with a failed rank pod (pod replacement)',
      (s) => {
        s.world.pods.get(s.slot(2).name)!.phase = 'Failed';
        return [s.world.observedPods(s.now)];
      },
    ],
    ['a worker crash (process-level restart)', (s) => [s.crash(0)]],
    [
      'two unreachable polls',
      (s) => [
        { type: 'AgentPolled', pod: s.slot(3).name, status: null, at: s.now - 1 },
        { type: 'AgentPolled', pod: s.slot(3).name, status: null, at: s.now },
      ],
    ],
    ['a full job restart on request', (s) => [s.command({ kind: 'Restart', level: 'job', by: 'alice' })]],
    ['a cancel', (s) => [s.command({ kind: 'Cancel', by: 'alice' })]],
    ['a suspend', (s) => [s.command({ kind: 'Suspend', by: 'alice' })]],
  ])('%s', (_name, observations) => {
    const s = frozenRun();
    s.after(2000);
    const obs = observations(s);
    const out = check(s.job, obs, s.now);
    expect(out.changed).toBe(true);
  });

  it('through an elastic scale-down and scale-up (slots dropped, joined and renumbered)', () => {
    const spec = makeSpec({ replicas: 3 });
    spec.replicaSpecs[0]!.maxReplicas = 3;
    spec.elasticPolicy = {
      minReplicas: 2,
      maxReplicas: 3,
      faultyScaleDownTimeoutInSeconds: 60,
      scalingTimeoutInSeconds: 120,
      gracefulShutdownTimeoutInSeconds: 30,
    };
    const s = given(spec, { nodes: 3 });
    s.world.exclusive = true;
    // Each sweep's first decide gets a frozen record; the records after it share its frozen slots.
    const sweep = (ms: number) => {
      s.after(ms);
      s.observe(s.world.observedPods(s.now), s.world.observedNodes(s.now));
      deepFreeze(s.job);
    };
    sweep(1000);
    sweep(1000);
    expect(s.job.phase).toBe('Running');
    const node = s.slot(2).nodeName!;
    s.world.nodes.get(node)!.health = 'UnschedulablePendingReboot';
    sweep(10_000);
    sweep(60_000);
    expect(s.job.pods.filter((p) => p.groupRank !== null)).toHaveLength(2);
    s.world.nodes.get(node)!.health = 'Schedulable';
    sweep(1000);
    sweep(120_000);
    sweep(1000);
    expect(s.job.phase).toBe('Running');
    expect(s.job.pods.map((p) => p.groupRank).sort()).toEqual([0, 1, 2]);
    expect(s.job.elastic?.events.map((e) => [e.direction, e.outcome])).toEqual([
      ['down', 'Completed'],
      ['up', 'Completed'],
    ]);
  });

  it('for a new job record as for any other', () => {
    const { job } = newJobRecord(makeSpec({ replicas: 3 }), { uid: 'u', submittedBy: 'a', now: T0 });
    check(job, [], T0 + 1);
  });
});
