import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
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

describe('compilePattern: Python re.match parity', () => {
  it('matches and captures exactly like Python re.match over a table of rule patterns and log lines', () => {
    const expected = pythonMatch(table);
    const actual = table.map(([p, l]) => ours(p, l));
    expect(actual.map((a, i) => [table[i], a])).toEqual(expected.map((e, i) => [table[i], e]));
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
    ['(a)\\1', /backreferences/],
    ['(?=x)', /lookahead/],
    ['\\Z', /invalid escape/],
    ['a**', /repetition/],
  ])('rejects %s with the reason', (pattern, reason) => {
    expect(() => compilePattern(pattern)).toThrow(PatternSyntaxError);
    expect(() => compilePattern(pattern)).toThrow(reason);
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
