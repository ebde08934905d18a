import { describe, expect, it } from 'vitest';
import { masterPortFor, parsePodName, podName, slotForPodName } from '../../core/decide/naming.ts';
import { given, makeSpec } from './dsl.ts';

describe('pod names', () => {
  it.each([
    ['llama', 'pods', 0, 0, 'llama-pods-0-g0'],
    ['llama', 'pods', 7, 3, 'llama-pods-7-g3'],
    ['my-job', 'worker-group', 12, 40, 'my-job-worker-group-12-g40'],
  ])(
    'job %s replica %s index %i at pod generation %i is named %s and parses back',
    (job, replica, index, gen, name) => {
      expect(podName(job, replica, index, gen)).toBe(name);
      expect(parsePodName(job, name)).toEqual({ replica, index, podGeneration: gen });
    },
  );

  it.each([
    ['llama', 'other-pods-0-g0'],
    ['llama', 'llama-pods-x-g0'],
    ['llama', 'llama-pods-0'],
  ])('a name that is not one of job %s pods (%s) parses to undefined', (job, name) => {
    expect(parsePodName(job, name)).toBeUndefined();
  });

  it('maps a pod name of any pod generation back to the slot with the same replica and index', () => {
    const s = given(makeSpec({ replicas: 3 }));
    expect(slotForPodName(s.job, 'llama-pods-2-g9')?.index).toBe(2);
    expect(slotForPodName(s.job, 'llama-pods-5-g0')).toBeUndefined();
  });
});

describe('master port', () => {
  it.each(['uid-1', 'a0b1c2d3-0000-4000-8000-000000000000', ''])(
    'is deterministic, in 20000–39999 and different for consecutive generations of job uid %j',
    (uid) => {
      const ports = Array.from({ length: 50 }, (_, g) => masterPortFor(uid, g));
      expect(ports).toEqual(Array.from({ length: 50 }, (_, g) => masterPortFor(uid, g)));
      for (const p of ports) expect(p).toBeGreaterThanOrEqual(20000);
      for (const p of ports) expect(p).toBeLessThanOrEqual(39999);
      for (let g = 1; g < ports.length; g++) expect(ports[g]).not.toBe(ports[g - 1]);
      expect(new Set(ports).size).toBe(ports.length);
    },
  );
});
