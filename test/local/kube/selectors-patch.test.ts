import { describe, expect, it } from 'vitest';
import { jsonPatch, mergePatch, PatchError, strategicMerge } from '../../../local/kube/patch.ts';
import {
  matchesFields,
  matchesRequirements,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from '../../../local/kube/selectors.ts';

const labels = { app: 'train', tier: 'gpu', 'trainkeeper.io/job': 'j1' };

describe('label selectors', () => {
  it.each([
    ['an empty selector matches everything', '', true],
    ['equality with = matches the same value', 'app=train', true],
    ['equality with == matches the same value', 'app==train', true],
    ['equality fails on another value', 'app=serve', false],
    ['inequality matches another value', 'app!=serve', true],
    ['inequality matches a missing key', 'missing!=x', true],
    ['set membership in matches one of the values', 'tier in (cpu, gpu)', true],
    ['set membership in fails when no value matches', 'tier in (cpu,tpu)', false],
    ['notin matches when the value is not listed', 'tier notin (cpu)', true],
    ['notin fails when the value is listed', 'tier notin (gpu)', false],
    ['exists matches a present key with a prefix', 'trainkeeper.io/job', true],
    ['!key matches an absent key', '!missing', true],
    ['!key fails on a present key', '!app', false],
    ['several requirements are ANDed', 'app=train,tier in (gpu),!missing', true],
    ['one failing requirement fails the whole selector', 'app=train,tier=cpu', false],
  ])('%s (%s)', (_name, selector, expected) => {
    expect(matchesRequirements(parseLabelSelector(selector), labels)).toBe(expected);
  });

  it.each([['tier in (gpu'], ['a b'], ['app=x,,tier=y'], ['bad key!=x']])(
    'rejects the malformed selector %j with a SelectorError',
    (selector) => {
      expect(() => parseLabelSelector(selector)).toThrow(SelectorError);
    },
  );
});

describe('field selectors', () => {
  const pod = {
    metadata: { name: 'p1', namespace: 'ns' },
    spec: { nodeName: 'node-1' },
    status: { phase: 'Running' },
  };
  it.each([
    ['metadata.name=p1', true],
    ['metadata.namespace==ns', true],
    ['spec.nodeName=node-1,status.phase!=Failed', true],
    ['status.phase=Pending', false],
    ['spec.nodeName=', false],
    ['spec.schedulerName=', true],
  ])('%s matches: %s', (selector, expected) => {
    expect(matchesFields(parseFieldSelector(selector), pod)).toBe(expected);
  });
});

describe('merge patch (RFC 7386)', () => {
  it.each([
    [
      'adds and replaces keys recursively',
      { a: { b: 1, c: 2 } },
      { a: { c: 3, d: 4 } },
      { a: { b: 1, c: 3, d: 4 } },
    ],
    ['null removes a key', { a: 1, b: 2 }, { b: null }, { a: 1 }],
    ['a list replaces the list', { l: [1, 2, 3] }, { l: [4] }, { l: [4] }],
    ['a scalar replaces an object', { a: { b: 1 } }, { a: 5 }, { a: 5 }],
  ])('%s', (_name, target, patch, expected) => {
    expect(mergePatch(target, patch)).toEqual(expected);
  });
});

describe('strategic merge patch', () => {
  const pod = {
    spec: {
      containers: [
        { name: 'a', image: 'x', env: [{ name: 'K', value: '1' }] },
        { name: 'b', image: 'y' },
      ],
      tolerations: [{ key: 't1' }],
    },
  };
  it.each([
    [
      'containers merge by name',
      { spec: { containers: [{ name: 'b', image: 'z' }] } },
      [
        { name: 'a', image: 'x', env: [{ name: 'K', value: '1' }] },
        { name: 'b', image: 'z' },
      ],
    ],
    [
      'env merges by name inside a container',
      { spec: { containers: [{ name: 'a', env: [{ name: 'L', value: '2' }] }] } },
      [
        {
          name: 'a',
          image: 'x',
          env: [
            { name: 'K', value: '1' },
            { name: 'L', value: '2' },
          ],
        },
        { name: 'b', image: 'y' },
      ],
    ],
    [
      '$patch: delete removes the keyed element',
      { spec: { containers: [{ name: 'a', $patch: 'delete' }] } },
      [{ name: 'b', image: 'y' }],
    ],
  ])('%s', (_name, patch, containers) => {
    expect((strategicMerge(pod, patch) as typeof pod).spec.containers).toEqual(containers);
  });

  it('replaces lists that have no merge key, as a merge patch does', () => {
    const out = strategicMerge(pod, { spec: { tolerations: [{ key: 't2' }] } }) as typeof pod;
    expect(out.spec.tolerations).toEqual([{ key: 't2' }]);
  });
});

describe('JSON patch (RFC 6902)', () => {
  const doc = { metadata: { labels: { 'a/b': '1' } }, list: [1, 2, 3] };
  it.each([
    [
      'add to an object',
      [{ op: 'add', path: '/metadata/labels/c', value: '2' }],
      { 'a/b': '1', c: '2' },
      [1, 2, 3],
    ],
    [
      'replace with an escaped key',
      [{ op: 'replace', path: '/metadata/labels/a~1b', value: '9' }],
      { 'a/b': '9' },
      [1, 2, 3],
    ],
    ['remove a key', [{ op: 'remove', path: '/metadata/labels/a~1b' }], {}, [1, 2, 3]],
    ['append to a list with -', [{ op: 'add', path: '/list/-', value: 4 }], { 'a/b': '1' }, [1, 2, 3, 4]],
    ['insert into a list', [{ op: 'add', path: '/list/0', value: 0 }], { 'a/b': '1' }, [0, 1, 2, 3]],
    ['remove from a list', [{ op: 'remove', path: '/list/1' }], { 'a/b': '1' }, [1, 3]],
    [
      'move then copy',
      [
        { op: 'copy', from: '/list/0', path: '/list/-' },
        { op: 'move', from: '/metadata/labels/a~1b', path: '/metadata/labels/x' },
      ],
      { x: '1' },
      [1, 2, 3, 1],
    ],
    [
      'a passing test changes nothing',
      [{ op: 'test', path: '/list/2', value: 3 }],
      { 'a/b': '1' },
      [1, 2, 3],
    ],
  ])('%s', (_name, ops, labelsOut, listOut) => {
    const out = jsonPatch(doc, ops) as typeof doc;
    expect(out.metadata.labels).toEqual(labelsOut);
    expect(out.list).toEqual(listOut);
    expect(doc.list).toEqual([1, 2, 3]);
  });

  it.each([
    ['a failing test', [{ op: 'test', path: '/list/0', value: 9 }]],
    ['replacing a missing key', [{ op: 'replace', path: '/metadata/nope', value: 1 }]],
    ['an index past the end', [{ op: 'add', path: '/list/9', value: 1 }]],
    ['an unknown op', [{ op: 'frob', path: '/list' }]],
    ['a body that is not a list', { op: 'add' }],
  ])('rejects %s with a PatchError and leaves the input untouched', (_name, ops) => {
    expect(() => jsonPatch(doc, ops)).toThrow(PatchError);
    expect(doc).toEqual({ metadata: { labels: { 'a/b': '1' } }, list: [1, 2, 3] });
  });
});
