import { describe, expect, it } from 'vitest';
import {
  MAX_POD_NAME_LENGTH,
  masterPortFor,
  parsePodName,
  podName,
  serviceName,
  slotForPodName,
  slotIndex,
} from '../../core/decide/naming.ts';
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

  const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  const job63 = `j${'o'.repeat(61)}b`;

  it.each([
    [job63, 'pods', 0, 0],
    [job63, 'w'.repeat(63), 9999, 9999],
    ['a'.repeat(50), 'worker-', 3, 12],
    [`${'x'.repeat(40)}-${'y'.repeat(10)}`, 'pods', 123, 4],
  ])(
    'shortens the name of job %s replica %s index %i generation %i to a valid DNS label of at most 63 characters',
    (job, replica, index, gen) => {
      const name = podName(job, replica, index, gen);
      expect(name.length).toBeLessThanOrEqual(MAX_POD_NAME_LENGTH);
      expect(name).toMatch(DNS_LABEL);
      expect(name.endsWith(`-${index}-g${gen}`)).toBe(true);
      expect(podName(job, replica, index, gen)).toBe(name);
      expect(parsePodName(job, name, ['other', replica])).toEqual({ replica, index, podGeneration: gen });
    },
  );

  it('keeps the shortened names of one long job distinct across replicas, indexes and generations', () => {
    const replicas = ['workers-a', 'workers-b', 'w'.repeat(63), `${'w'.repeat(62)}x`];
    const names = replicas.flatMap((r) =>
      Array.from({ length: 20 }, (_, i) => [podName(job63, r, i, 0), podName(job63, r, i, 1)]).flat(),
    );
    expect(new Set(names).size).toBe(names.length);
  });

  it('leaves a name that fits in 63 characters as it was', () => {
    expect(podName('a'.repeat(40), 'pods', 7, 3)).toBe(`${'a'.repeat(40)}-pods-7-g3`);
  });

  it('maps a shortened pod name back to its slot', () => {
    const s = given(makeSpec({ replicas: 3 }));
    const job = { ...s.job, name: job63 };
    expect(slotForPodName(job, podName(job63, 'pods', 2, 9))?.index).toBe(2);
    expect(parsePodName(job63, podName(job63, 'pods', 2, 9))).toBeUndefined();
  });

  it('maps a pod name of any pod generation back to the slot with the same replica and index', () => {
    const s = given(makeSpec({ replicas: 3 }));
    expect(slotForPodName(s.job, 'llama-pods-2-g9')?.index).toBe(2);
    expect(slotForPodName(s.job, 'llama-pods-5-g0')).toBeUndefined();
  });

  it('answers through a prebuilt slot index exactly as by scanning, for every slot and a stranger', () => {
    const s = given(makeSpec({ replicas: 40 }));
    const index = slotIndex(s.job);
    for (const slot of s.job.pods) {
      const other = podName(s.job.name, slot.replica, slot.index, slot.podGeneration + 3);
      expect(slotForPodName(s.job, other, index)).toBe(slotForPodName(s.job, other));
      expect(slotForPodName(s.job, other, index)).toBe(slot);
      expect(index.byName.get(slot.name)).toBe(slot);
    }
    expect(slotForPodName(s.job, 'llama-pods-40-g0', index)).toBeUndefined();
    expect(index.replicas).toEqual(['pods']);
  });
});

describe('service names', () => {
  const DNS_1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

  it.each([
    ['a name starting with a letter as it is', 'llama', 'llama'],
    ['a name starting with a digit prefixed j-', '7b-run', 'j-7b-run'],
    ['a name a prefixed one could equal prefixed too', 'j-7b-run', 'j-j-7b-run'],
    ['a j- name not followed by a digit as it is', 'j-llama', 'j-llama'],
  ])('keeps %s', (_, job, service) => {
    expect(serviceName(job)).toBe(service);
    expect(service).toMatch(DNS_1035);
  });

  it('cuts a 63-character name starting with a digit to a valid label tagged with a hash, distinct per job', () => {
    const a = `1${'a'.repeat(61)}b`;
    const b = `1${'a'.repeat(61)}c`;
    for (const job of [a, b, `9${'-'.repeat(60)}a9`]) {
      expect(serviceName(job)).toMatch(DNS_1035);
      expect(serviceName(job).length).toBeLessThanOrEqual(MAX_POD_NAME_LENGTH);
    }
    expect(serviceName(a)).not.toBe(serviceName(b));
    expect(serviceName(a)).toBe(serviceName(a));
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
