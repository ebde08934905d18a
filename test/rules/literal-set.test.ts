import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PRESET_NAMES } from '../../core/spec/preset-names.ts';
import { compileRules, evaluateLines, initialRuleState } from '../../rules/engine.ts';
import { INCLUDES_MAX, LiteralSet } from '../../rules/literal-set.ts';
import { compilePattern } from '../../rules/matcher.ts';
import { loadPresetRules } from '../../rules/presets/index.ts';
import type { LogLine } from '../../rules/types.ts';
import { rule } from './helpers.ts';

/** What `LiteralSet` must answer: the literals `text` contains, by plain substring tests. */
const contained = (literals: string[], text: string): number[] =>
  literals.flatMap((lit, i) => (text.includes(lit) ? [i] : []));

const found = (set: LiteralSet, literals: string[]): number[] =>
  literals.flatMap((_, i) => (set.has(i) ? [i] : []));

describe('LiteralSet', () => {
  it.each([
    { literals: ['abc', 'bc', 'c'], text: 'xxabcxx', expected: [0, 1, 2] },
    { literals: ['abc', 'bcd'], text: 'abcd', expected: [0, 1] },
    { literals: ['aa', 'aaa'], text: 'aaaa', expected: [0, 1] },
    { literals: ['NCCL error', 'NCCL WARN '], text: 'NCCL INFO NCCL WARN x', expected: [1] },
    {
      literals: ['a.b', '(x)', '[CUDA]', 'a|b', '\\d'],
      text: 'a.b (x) [CUDA] a|b \\d',
      expected: [0, 1, 2, 3, 4],
    },
    { literals: ['a.b', '(x)', 'a|b'], text: 'axb x a b', expected: [] },
    { literals: ['Error', 'MemoryError', 'OutOfMemoryError'], text: 'OutOfMemoryError', expected: [0, 1, 2] },
    { literals: ['end'], text: 'the end', expected: [0] },
    { literals: ['x'], text: '', expected: [] },
  ])('finds exactly the literals $literals contained in "$text"', ({ literals, text, expected }) => {
    const set = new LiteralSet(literals);
    expect(set.scan(text)).toBe(expected.length > 0);
    expect(found(set, literals)).toEqual(expected);
  });

  it('reports only marked literals from scan while still recording the unmarked ones', () => {
    const literals = ['needle', 'pin', 'needlepoint'];
    const set = new LiteralSet(literals, (id) => id === 1);
    expect(set.scan('a needle here')).toBe(false);
    expect(found(set, literals)).toEqual([0]);
    // `pin` is marked and inside `needlepoint`... it is not: `needlepoint` does not contain `pin`
    expect(set.scan('needlepoint')).toBe(false);
    expect(set.scan('a pin')).toBe(true);
    expect(found(set, literals)).toEqual([1]);
  });

  it('reports a marked literal found only as a substring of a longer unmarked one', () => {
    const literals = ['Error', 'MemoryError'];
    const set = new LiteralSet(literals, (id) => id === 0);
    expect(set.scan('raise MemoryError')).toBe(true);
    expect(found(set, literals)).toEqual([0, 1]);
  });

  it('forgets the previous line on each scan', () => {
    const set = new LiteralSet(['a', 'b']);
    set.scan('a');
    set.scan('b');
    expect([set.has(0), set.has(1), set.hasAny(new Int32Array([0]))]).toEqual([false, true, false]);
  });

  it('rejects duplicate and empty literals with a clear error', () => {
    expect(() => new LiteralSet(['a', 'a'])).toThrow(/distinct/);
    expect(() => new LiteralSet([''])).toThrow(/empty/);
  });

  it.each([
    ['a small set (one includes per literal)', 1, INCLUDES_MAX],
    ['a large set (one regex scan)', INCLUDES_MAX + 1, 3 * INCLUDES_MAX],
  ])(
    'answers exactly the substring tests for %s of random overlapping literals and lines built from them',
    (_, minLength, maxLength) => {
      const piece = fc.string({
        unit: fc.constantFrom('a', 'b', 'c', '(', '.', ' '),
        minLength: 1,
        maxLength: 4,
      });
      fc.assert(
        fc.property(
          fc.uniqueArray(piece, { minLength, maxLength }),
          fc.array(fc.oneof(piece, fc.nat()), { maxLength: 12 }),
          fc.func(fc.boolean()),
          (literals, parts, mark) => {
            const text = parts
              .map((p) => (typeof p === 'number' ? (literals[p % literals.length] as string) : p))
              .join('');
            const marked = (id: number) => mark(id);
            const set = new LiteralSet(literals, marked);
            const expected = contained(literals, text);
            expect(set.scan(text)).toBe(expected.some((id) => marked(id)));
            expect(found(set, literals)).toEqual(expected);
          },
        ),
        { numRuns: 500 },
      );
    },
  );
});

/** The benchmark's user rules (progress, metrics) next to every preset. */
const USER = [
  rule({ name: 'TrainingHang', logPattern: '.*iteration\\s+(\\d+)/' }),
  rule({
    name: 'LossSpike',
    logPattern: '.*lm loss: (\\d+(?:\\.\\d+)?(?:E[+-]\\d+)?)',
    metricThreshold: 20,
    operator: 'gt',
  }),
  rule({ name: 'HFLoss', logPattern: ".*'loss': ([0-9.]+)", metricThreshold: 10, operator: 'gt' }),
];
const RULES = [...loadPresetRules(PRESET_NAMES), ...USER];

/** Fragments of real fault and progress lines, so generated lines often match (and often almost match). */
const FRAGMENTS = [
  'Watchdog caught collective operation timeout',
  'NCCL error in:',
  'ncclSystemError',
  'ncclInternalError ',
  'NCCL WARN NET/IB : Got completion from peer',
  'NCCL WARN ',
  'Connection closed by remote peer',
  'CUDA error: ',
  'an illegal memory access',
  'out of memory',
  'CUDA out of memory',
  'CUDA_ERROR_ILLEGAL_ADDRESS',
  'MemoryError',
  ': ',
  'NVRM: Xid (PCI:0000:3b:00): ',
  '79, pid=1',
  '13,',
  '[Errno 28] ',
  'No space left on device',
  'LustreError: ',
  'Failed to save checkpoint',
  ']: failed (exitcode: ',
  '-9) local_rank: 3',
  'torch.distributed.elastic.multiprocessing.errors.ChildFailedError',
  'iteration ',
  '12/',
  'lm loss: ',
  '2.5E+00',
  "'loss': ",
  '1.75',
  ' | ',
];

/** Python `re.match` for these patterns (plain V8 can run them all), as the matcher reports groups. */
const reference = (pattern: string, text: string): string | undefined | null => {
  const m = new RegExp(`^(?:${pattern})`, 's').exec(text);
  return m === null ? null : m[1];
};

describe('the engine prefilter (literal set + includes + matcher searches)', () => {
  it('never drops a line a rule pattern matches: faults and values equal plain anchored matching', () => {
    const c = compileRules(RULES);
    let faultsSeen = 0;
    let valuesSeen = 0;
    const line = fc
      .array(fc.oneof({ arbitrary: fc.constantFrom(...FRAGMENTS), weight: 4 }, fc.string({ maxLength: 6 })), {
        maxLength: 8,
      })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 20 }), (texts) => {
        const lines: LogLine[] = texts.map((text, i) => ({
          stream: `s${i}`,
          rank: i,
          timestamp: 1000 + i,
          text,
        }));
        const out = evaluateLines(c, initialRuleState(c, 1, 0), lines, 2000);
        const faults = out.findings
          .filter((f) => f.verdict === 'FAULTED')
          .map((f) => `${f.rule}@${f.stream}`);
        const values = out.values.map((v) => `${v.rule}@${v.rank}=${v.value}`);
        const expectedFaults: string[] = [];
        const expectedValues: string[] = [];
        lines.forEach((l, i) => {
          for (const r of RULES) {
            const g = reference(r.logPattern, l.text);
            if (g === null) continue;
            if (r.faultOnMatch) expectedFaults.push(`${r.name}@${l.stream}`);
            if (typeof g === 'string' && !Number.isNaN(Number(g)) && /^[\d.E+-]+$/.test(g))
              expectedValues.push(`${r.name}@${i}=${Number(g)}`);
          }
        });
        faultsSeen += faults.length;
        valuesSeen += values.length;
        expect(faults.sort()).toEqual(expectedFaults.sort());
        expect(values.sort()).toEqual(expectedValues.sort());
      }),
      { numRuns: 300 },
    );
    // not vacuous: the generated lines do match fault and metric rules
    expect(faultsSeen).toBeGreaterThan(10);
    expect(valuesSeen).toBeGreaterThan(10);
  });

  it.each(RULES.map((r) => [r.name, r.logPattern] as const))(
    'matches %s exactly as plain anchored matching on lines built from its own literals',
    (_name, pattern) => {
      const m = compilePattern(pattern);
      const pieces = [...(m.prefilter ?? []), ...FRAGMENTS.slice(0, 6), 'x', ' '];
      fc.assert(
        fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 6 }), (parts) => {
          const text = parts.join('');
          expect(m.match(text)).toBe(reference(pattern, text));
        }),
        { numRuns: 200 },
      );
    },
  );
});

describe('the literal set of a compiled rule set', () => {
  it('holds every rule prefilter literal and marks exactly the event rules ones', () => {
    const c = compileRules(RULES);
    const events = new Set(
      c.rules.filter((r) => r.event).flatMap((r) => [...(r.matchGate ?? []), ...(r.stopGate ?? [])]),
    );
    for (const r of c.rules) {
      for (const [m, gate] of [
        [r.match, r.matchGate],
        [r.stop, r.stopGate],
      ] as const) {
        expect([...(gate ?? [])].map((id) => c.literals.literals[id])).toEqual(m?.prefilter ?? []);
      }
    }
    c.literals.literals.forEach((lit, id) => {
      // scanning a literal alone reports it exactly when it is an event rule's literal
      expect(c.literals.scan(lit)).toBe(
        events.has(id) || c.literals.literals.some((o, j) => events.has(j) && lit.includes(o)),
      );
    });
  });

  it('gives event and progress rules over random literals the same faults and values as plain matching', () => {
    const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'ab', ':'), minLength: 1, maxLength: 5 });
    const ruleArb = fc.record({
      alternatives: fc.uniqueArray(word, { minLength: 1, maxLength: 3 }),
      fault: fc.boolean(),
      timed: fc.boolean(),
      stop: fc.option(word, { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.array(ruleArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.array(fc.oneof(word, fc.constantFrom(' ', '1', '2.5')), { maxLength: 6 }), {
          minLength: 1,
          maxLength: 10,
        }),
        (specs, lineParts) => {
          const quote = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          const rules = specs.map((s, i) =>
            rule({
              name: `r${i}`,
              logPattern: `.*(?:${s.alternatives.map(quote).join('|')}) ?(\\d+(?:\\.\\d+)?)?`,
              faultOnMatch: s.fault,
              ...(s.timed ? { expectedRecurringFrequencyInSeconds: 3600 } : {}),
              ...(s.stop === undefined ? {} : { stopPattern: `.*${quote(s.stop)}!` }),
            }),
          );
          const c = compileRules(rules);
          const lines: LogLine[] = lineParts.map((parts, i) => ({
            stream: 's',
            rank: 0,
            timestamp: 1000 + i,
            text: parts.join(''),
          }));
          const out = evaluateLines(c, initialRuleState(c, 1, 0), lines, 2000);
          // stop patterns end in `!`, which no line contains: every rule reads every line
          const expectedFaults = new Set<string>();
          const expectedValues: string[] = [];
          for (const l of lines) {
            for (const r of rules) {
              const g = reference(r.logPattern, l.text);
              if (g === null) continue;
              if (r.faultOnMatch) expectedFaults.add(r.name);
              if (typeof g === 'string') expectedValues.push(`${r.name}@${l.timestamp}=${Number(g)}`);
            }
          }
          const faults = new Set(out.findings.filter((f) => f.verdict === 'FAULTED').map((f) => f.rule));
          expect([...faults].sort()).toEqual([...expectedFaults].sort());
          expect(out.values.map((v) => `${v.rule}@${v.at}=${v.value}`).sort()).toEqual(expectedValues.sort());
        },
      ),
      { numRuns: 300 },
    );
  });
});
