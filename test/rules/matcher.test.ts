import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_BACKTRACKING_LINE, patternError } from '../../core/spec/pattern.ts';
import { compileRules, evaluateLines, initialRuleState } from '../../rules/engine.ts';
import { compilePattern, PatternSyntaxError } from '../../rules/matcher.ts';
import { rule } from './helpers.ts';

/** Python's `re.match(pattern, line)` for every pair: `[matched, group1 | null]` (one interpreter run). */
function pythonMatch(pairs: [string, string][]): [boolean, string | null][] {
  const script = [
    'import json, re, sys',
    'out = []',
    'for p, line in json.load(sys.stdin):',
    '    m = re.match(p, line)',
    '    out.append([m is not None, m.group(1) if m is not None and m.re.groups >= 1 else None])',
    'print(json.dumps(out))',
  ].join('\n');
  const stdout = execFileSync('python3', ['-W', 'ignore', '-c', script], {
    input: JSON.stringify(pairs),
    encoding: 'utf8',
  });
  return JSON.parse(stdout) as [boolean, string | null][];
}

const ours = (pattern: string, line: string): [boolean, string | null] => {
  const g = compilePattern(pattern).match(line);
  return [g !== null, g ?? null];
};

const megatron =
  ' iteration      200/  100000 | consumed samples:       102400 | elapsed time per iteration (ms): 1543.2 | learning rate: 1.499E-04 | lm loss: 2.345678E+00 | loss scale: 1.0 | grad norm: 0.812 | number of skipped iterations:   0 | TFLOPs: 151.2 |';
const hf = "{'loss': 1.9021, 'grad_norm': 0.83, 'learning_rate': 4.9e-05, 'epoch': 0.12}";

const table: [string, string][] = [
  ['.*loss (\\d+)', 'loss 1 loss 2'],
  ['.*?loss (\\d+)', 'loss 1 loss 2'],
  ['.*(\\d+)', 'a 123 b 456'],
  ['.*?(\\d+)', 'a 123 b 456'],
  ['.*(\\d+).*', 'abc'],
  ['.* (.+)TFLOPs.*', 'throughput 12.5 TFLOPs per GPU'],
  ['.* (.+)TFLOPs.*', 'x 1 TFLOPs 2 TFLOPs'],
  [
    '.*training_loss_step (\\d+(?:\\.\\d+)?).*',
    "[Epoch 0 Batch 7] 'training_loss_step': 0.5 training_loss_step 2.75 end",
  ],
  [
    ".*\\[Epoch 0 Batch \\d+.*'training_loss_step': (\\d+(\\.\\d+)?).*",
    "[Epoch 0 Batch 12] {'training_loss_step': 3.25}",
  ],
  ['.*RuntimeError.*out of memory.*', 'RuntimeError: CUDA out of memory. Tried to allocate'],
  ['.*RuntimeError.*out of memory.*', 'out of memory then RuntimeError'],
  ['.*lm loss: ([0-9.E+-]+)', megatron],
  ['.*iteration\\s+(\\d+)/', megatron],
  ['.*TFLOPs: (\\d+\\.\\d+)', megatron],
  [".*'loss': ([0-9.]+)", hf],
  ['out of memory', 'RuntimeError: out of memory'],
  ['Runtime', 'RuntimeError: out of memory'],
  ['(a|ab)(c|bcd)(d*)', 'abcd'],
  ['a{,2}b', 'aab'],
  ['a{,2}b', 'aaab'],
  ['(?P<step>\\d+) done', '42 done'],
  ['.*step=(?P<step>\\d+)', 'step=1 step=2'],
  ['(?i).*error (\\d+)', 'ERROR 5'],
  ['(?i)nccl', 'NCCL WARN'],
  ['.*([0-9a-f]{40})', `commit ${'ab'.repeat(20)} ok`],
  ['.*x|y(\\d)', 'y7'],
  ['.*x|y(\\d)', 'aax'],
  ['.*', ''],
  ['.*(a*)', 'aaa'],
  ['.*(a*)$', 'baaa'],
  ['\\A(\\w+)', 'hello world'],
  ['.*\\bNCCL\\b.*', 'NCCLx NCCL y'],
  ['.*(\\.\\d+)', 'v1.2.3'],
  ['.*[[]x(\\d)', 'a [x1 [x2'],
  ['.*\\t(\\d)', 'a\t1\t2'],
  ['.*?(\\d)?$', 'ab'],
  ['.*(\\d)?$', 'ab1'],
  ['.*ab+(c)', 'abbbc abc'],
  ['.*a?b(c)', 'bc abc'],
  ['.*loss: (nan|inf|[0-9.]+)', 'loss: nan'],
  ['(.*) (.*)', 'a b c'],
  ['.*\\{(\\d+)\\}', 'x {12} {34}'],
  ['.*{(\\d+)}', 'x {12} {34}'],
];

/** Patterns only a backtracking engine runs (lookaround, backreferences), with lines that tell them apart. */
const backtrackingTable: [string, string][] = [
  ['.*(?<!cuda )error (\\d+)', 'x error 5'],
  ['.*(?<!cuda )error (\\d+)', 'cuda error 5'],
  ['.*(?<!cuda )error (\\d+)', 'cuda error 5 then error 7'],
  ['.*step (\\d+)(?= done)', 'step 3 done step 4 pending'],
  ['.*step (\\d+)(?= done)', 'step 4 pending'],
  ['.*step (\\d+)(?! done)', 'step 3 done step 4 pending'],
  ['(?<=x)y', 'xy'],
  ['.*(?<=loss=)([0-9.]+)', 'a loss=1.5 b loss=2.25'],
  ['(\\w+) failed, \\1 restarting', 'worker failed, worker restarting'],
  ['(\\w+) failed, \\1 restarting', 'worker failed, other restarting'],
  ['(?P<rank>\\d+): (?P=rank) down', '12: 12 down'],
  ['(?P<rank>\\d+): (?P=rank) down', '12: 13 down'],
  ['(?:(?!skip).)*loss (\\d+)', 'a loss 5'],
  ['(?:(?!skip).)*loss (\\d+)', 'skip a loss 5'],
  ['(?i).*(?<=error )(\\d+)', 'ERROR 42'],
  ['(a)(b)?\\1', 'aa'],
  ['[]x](?=y)', ']y'],
  ['(?=.*NCCL)(\\w+)', 'abc def NCCL'],
  ['(\\d+)-\\1(?!\\d)', '12-123'],
  ['(\\d+)-\\1(?!\\d)', '12-12 x'],
  ['\\A(?=a)(\\w+)\\Z', 'abc'],
];

describe('compilePattern: Python re.match parity', () => {
  it('matches and captures exactly like Python re.match over a table of rule patterns and log lines', () => {
    const expected = pythonMatch(table);
    const actual = table.map(([p, l]) => ours(p, l));
    expect(actual.map((a, i) => [table[i], a])).toEqual(expected.map((e, i) => [table[i], e]));
  });

  it('matches and captures like Python re.match with lookahead, lookbehind and backreferences', () => {
    const runnable = backtrackingTable;
    const expected = pythonMatch(runnable);
    const actual = runnable.map(([p, l]) => ours(p, l));
    expect(actual.map((a, i) => [runnable[i], a])).toEqual(expected.map((e, i) => [runnable[i], e]));
    for (const [p] of runnable) expect(compilePattern(p).engine).toBe('backtracking');
  });

  it('matches like Python re.match on generated lookaround and backreference patterns', () => {
    const head = fc.constantFrom('', '.*', '(a)', '(\\w)', '(ab|x)');
    const look = fc.constantFrom('(?=a)', '(?!a)', '(?<=a)', '(?<!b)', '(?=.*x)', '(?<=ab)');
    const tail = fc.constantFrom('', 'b', '\\d', '(\\w+)', 'a*', '$');
    const ref = fc.constantFrom('', '\\1');
    const pattern = fc
      .tuple(head, look, tail, ref)
      .filter(([h, , , r]) => r === '' || h.startsWith('('))
      .map(([h, l, t, r]) => h + l + t + r)
      .filter((p) => patternError(p) === undefined);
    const line = fc.string({ unit: fc.constantFrom('a', 'b', 'x', '1', ' '), maxLength: 10 });
    const pairs = fc.sample(fc.tuple(pattern, line), { numRuns: 1500, seed: 7 });
    const expected = pythonMatch(pairs);
    const mismatches = pairs.flatMap((pair, i) => {
      const got = ours(pair[0], pair[1]);
      return JSON.stringify(got) === JSON.stringify(expected[i]) ? [] : [{ pair, got, python: expected[i] }];
    });
    expect(mismatches).toEqual([]);
  });

  it('matches like Python re.match on generated patterns and lines', () => {
    const atom = fc.constantFrom(
      'a',
      'b',
      'ab',
      '.',
      '\\d',
      '[ab]',
      '[^a]',
      '(a|b)',
      '(ab|a)',
      '(\\d+)',
      'x',
    );
    const quant = fc.constantFrom('', '', '*', '+', '?', '*?', '+?', '{1,2}', '{,2}');
    const body = fc.array(
      fc.tuple(atom, quant).map(([a, q]) => a + q),
      { minLength: 1, maxLength: 4 },
    );
    const lead = fc.constantFrom('', '.*', '.*?');
    const group = fc.boolean();
    const pattern = fc
      .tuple(lead, body, group, fc.constantFrom('', '.*', '$'))
      .map(([l, b, g, tail]) => l + (g ? `(${b.join('')})` : b.join('')) + tail);
    const line = fc.string({ unit: fc.constantFrom('a', 'b', 'x', '1', '2', ' '), maxLength: 12 });
    const pairs = fc.sample(fc.tuple(pattern, line), { numRuns: 2000, seed: 42 });
    const expected = pythonMatch(pairs);
    const mismatches = pairs.flatMap((pair, i) => {
      const got = ours(pair[0], pair[1]);
      return JSON.stringify(got) === JSON.stringify(expected[i]) ? [] : [{ pair, got, python: expected[i] }];
    });
    expect(mismatches).toEqual([]);
  });

  it.each([
    ['.*loss (\\d+)', 'v8', 'last-occurrence', 'loss '],
    ['.*?loss (\\d+)', 'v8', 'search', 'loss '],
    ['.*RuntimeError.*out of memory.*', 'v8', 'search', 'out of memory'],
    ['.* (.+)TFLOPs.*', 'v8', 'last-occurrence', 'TFLOPs'],
    ['Watchdog caught', 'v8', 'anchored', 'Watchdog caught'],
    ['(?i).*nccl error', 're2', 'anchored', undefined],
    ['.*[0-9a-f]{40}', 're2', 'anchored', undefined],
    ['.*x|y', 'v8', 'anchored', undefined],
  ] as const)('%s runs on %s with strategy %s and prefilter %j', (pattern, engine, strategy, literal) => {
    const m = compilePattern(pattern);
    expect([m.engine, m.strategy, m.literal]).toEqual([engine, strategy, literal]);
  });

  it.each([
    ['.*(?:NCCL error|ncclSystemError)', ['NCCL error', 'ncclSystemError']],
    ['(?:.*[^A-Za-z_])?(?:MemoryError|_ArrayMemoryError)(?::|$)', ['MemoryError']],
    ['.*abc|x(?:def|ghij)', ['abc', 'def', 'ghij']],
    ['.*loss (\\d+)', ['loss ']],
    ['.*abc|.*', undefined],
    ['(?i).*error', undefined],
  ] as const)('%s is prefiltered by any of %j', (pattern, prefilter) => {
    expect(compilePattern(pattern).prefilter).toEqual(prefilter);
  });

  it.each([
    ['(a)\\1+', /repeated backreference/],
    ['(?=x)(a|a)*', /repeated alternation/],
    ['\\Z', /invalid escape/],
    ['a**', /repetition/],
  ])('rejects %s with the reason', (pattern, reason) => {
    expect(() => compilePattern(pattern)).toThrow(PatternSyntaxError);
    expect(() => compilePattern(pattern)).toThrow(reason);
  });
});

describe('compilePattern: bounded time for backtracking patterns', () => {
  // the worst shapes the analysis allows: two unbounded quantifiers in sequence (plus lookaround or a
  // backreference), on adversarial lines of the capped length and beyond
  const worst: [string, string][] = [
    ['.*.*(?=x)y', `y${'a'.repeat(10_000)}`],
    ['.*a.*b(?<!x)c', 'ab'.repeat(5_000)],
    ['(\\w+)\\1x', 'a'.repeat(10_000)],
    ['(?:(?!zz).)*(?=.*q)y', 'a'.repeat(10_000)],
  ];

  it.each(worst)(
    '%s on a 10,000-character line stays within 100 ms per line (about 12 ms measured)',
    (pattern, line) => {
      const m = compilePattern(pattern);
      expect(m.engine).toBe('backtracking');
      m.match(line);
      const runs = 5;
      const start = performance.now();
      for (let i = 0; i < runs; i++) expect(m.match(line)).toBeNull();
      expect((performance.now() - start) / runs).toBeLessThan(100);
    },
  );

  it('reads only the first MAX_BACKTRACKING_LINE characters of a line', () => {
    const m = compilePattern('.*(?<!x)tail');
    expect(m.match(`${'a'.repeat(MAX_BACKTRACKING_LINE - 4)}tail`)).toBeUndefined();
    expect(m.match(`${'a'.repeat(MAX_BACKTRACKING_LINE)}tail`)).toBeNull();
  });
});

describe('compilePattern: linear time on hostile patterns', () => {
  const hostile = [
    '(a+)+$',
    '(a|aa)+$',
    '(a*)*b',
    '.*(a+)+\\d$',
    '(\\w+\\s?)+$',
    '(x+x+)+y',
    '(?i)(a+)+$',
    '(a+){2,50}$',
  ];
  const long = (n: number) => `${'a'.repeat(n)}!`;

  it.each(hostile)('%s over long non-matching lines completes and finds no match', (pattern) => {
    const m = compilePattern(pattern);
    for (let i = 0; i < 20; i++) expect(m.match(long(5000))).toBeNull();
  });

  it('a hostile user rule does not stall a batch of long lines through the engine', () => {
    const c = compileRules([
      rule({ name: 'evil', logPattern: '(a+)+$', faultOnMatch: true }),
      rule({ name: 'oom', logPattern: '.*out of memory.*', faultOnMatch: true }),
    ]);
    const lines = Array.from({ length: 200 }, (_, i) => ({ stream: 's', timestamp: i, text: long(5000) }));
    lines.push({ stream: 's', timestamp: 500, text: 'CUDA out of memory' });
    const { findings } = evaluateLines(c, initialRuleState(c, 0, 0), lines, 500);
    expect(findings.map((f) => f.rule)).toEqual(['oom']);
  });
});
