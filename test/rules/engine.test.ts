import { describe, expect, it } from 'vitest';
import type { LogRule } from '../../core/spec/types.ts';
import {
  compileRules,
  evaluateLines,
  initialRuleState,
  loadRuleState,
  nextRuleDeadline,
  parsePythonFloat,
  RuleCompileError,
  restartRuleState,
  ruleStateGeneration,
  tickRules,
} from '../../rules/engine.ts';
import { MAX_TEXT, RuleStateSchema } from '../../rules/state.ts';
import { type L, rule, type Step, scenario } from './helpers.ts';

const iter = (n: number, loss = 2.1): string => `[Epoch 0 Batch ${n}] training_loss_step ${loss} lr 1e-4`;

type Case = [string, Partial<LogRule> & { logPattern: string }, Step[], string[]];

const semantics: Case[] = [
  // start cutoff
  [
    'a rule with a start cutoff and no match reports HANGING at the cutoff once time passes it',
    { name: 'start', logPattern: '.*Training started.*', expectedStartCutOffInSeconds: 60 },
    [{ lines: [[10, 'loading data']] }, { tick: 60 }, { tick: 61 }, { tick: 120 }],
    ['HANGING start job @60'],
  ],
  [
    'a start cutoff exactly reached is not yet a hang (HyperPod compares with >)',
    { name: 'start', logPattern: '.*Training started.*', expectedStartCutOffInSeconds: 60 },
    [{ tick: 60 }],
    [],
  ],
  [
    'a match before the start cutoff keeps the rule healthy',
    { name: 'start', logPattern: '.*Training started.*', expectedStartCutOffInSeconds: 60 },
    [{ lines: [[30, 'rank0: Training started']] }, { tick: 1000 }],
    [],
  ],
  [
    'a first match after the cutoff inside one batch still reports the hang at the cutoff',
    { name: 'start', logPattern: '.*Training started.*', expectedStartCutOffInSeconds: 60 },
    [
      {
        lines: [
          [10, 'loading'],
          [90, 'Training started'],
        ],
      },
    ],
    ['HANGING start job @60'],
  ],
  // recurring frequency
  [
    'a gap longer than the recurring frequency after a match reports HANGING at the deadline',
    { name: 'hang', logPattern: '.*Batch (\\d+).*', expectedRecurringFrequencyInSeconds: 30 },
    [
      {
        lines: [
          [5, iter(1)],
          [20, iter(2)],
        ],
      },
      { tick: 50 },
      { tick: 51 },
    ],
    ['HANGING hang job @50'],
  ],
  [
    'the recurring frequency does not apply before the first match',
    { name: 'hang', logPattern: '.*Batch (\\d+).*', expectedRecurringFrequencyInSeconds: 30 },
    [{ tick: 500 }],
    [],
  ],
  [
    'a hang that ends reports again at the next silence (once per transition)',
    { name: 'hang', logPattern: '.*Batch (\\d+).*', expectedRecurringFrequencyInSeconds: 30 },
    [{ lines: [[0, iter(1)]] }, { tick: 40 }, { tick: 45 }, { lines: [[50, iter(2)]] }, { tick: 81 }],
    ['HANGING hang job @30', 'HANGING hang job @80'],
  ],
  [
    'a silence covered by one batch is reported at the deadline inside it',
    { name: 'hang', logPattern: '.*Batch (\\d+).*', expectedRecurringFrequencyInSeconds: 30 },
    [
      {
        lines: [
          [0, iter(1)],
          [10, iter(2)],
          [100, iter(3)],
        ],
      },
    ],
    ['HANGING hang job @40'],
  ],
  // stop pattern
  [
    'the stop pattern deactivates the rule: no hang after it',
    {
      name: 'hang',
      logPattern: '.*Batch (\\d+).*',
      expectedRecurringFrequencyInSeconds: 30,
      stopPattern: '.*Training finished.*',
    },
    [
      {
        lines: [
          [0, iter(1)],
          [10, 'Training finished'],
        ],
      },
      { tick: 1000 },
    ],
    [],
  ],
  [
    'after the stop pattern even fault lines of the rule are ignored',
    { name: 'err', logPattern: '.*RuntimeError.*', faultOnMatch: true, stopPattern: '.*shutting down.*' },
    [
      {
        lines: [
          [1, 'shutting down'],
          [2, 'RuntimeError: boom'],
        ],
      },
    ],
    [],
  ],
  [
    'a line matching both patterns of a fault rule is FAULTED (logPattern is checked first)',
    { name: 'err', logPattern: '.*RuntimeError.*', faultOnMatch: true, stopPattern: '.*RuntimeError.*' },
    [{ lines: [[1, 'RuntimeError: boom']] }],
    ['FAULTED err pod-0/0 @1'],
  ],
  // faultOnMatch
  [
    'faultOnMatch reports FAULTED at the matching line',
    { name: 'oom', logPattern: '.*RuntimeError.*out of memory.*', faultOnMatch: true },
    [
      {
        lines: [
          [1, 'step 1'],
          [7, 'RuntimeError: CUDA out of memory. Tried to allocate 2 GiB'],
        ],
      },
    ],
    ['FAULTED oom pod-0/0 @7'],
  ],
  [
    'faultOnMatch on two streams reports each stream once',
    { name: 'oom', logPattern: '.*out of memory.*', faultOnMatch: true },
    [
      {
        lines: [
          [1, 'out of memory', 'pod-0/0', 0],
          [2, 'out of memory', 'pod-0/0', 0],
          [3, 'out of memory', 'pod-1/0', 8],
        ],
      },
    ],
    ['FAULTED oom pod-0/0 @1', 'FAULTED oom pod-1/0 @3'],
  ],
  [
    'logPattern is anchored at line start like re.match: a match later in the line does not count',
    { name: 'oom', logPattern: 'out of memory', faultOnMatch: true },
    [{ lines: [[1, 'RuntimeError: out of memory']] }],
    [],
  ],
  // operators and data points
  ...(
    [
      ['gt', 2, 2.5, true],
      ['gt', 2, 2, false],
      ['gteq', 2, 2, true],
      ['lt', 100, 99.9, true],
      ['lt', 100, 100, false],
      ['lteq', 100, 100, true],
      ['eq', 0, 0, true],
      ['eq', 0, 0.5, false],
      ['gt', 2.5, 2.6, true],
      ['gt', 2.5, 2.4, false],
    ] as const
  ).map(
    ([op, threshold, value, slow]): Case => [
      `operator ${op} with threshold ${threshold} and value ${value} is ${slow ? 'SLOW' : 'HEALTHY'}`,
      { name: 'm', logPattern: '.*loss ([0-9.]+).*', operator: op, metricThreshold: threshold },
      [{ lines: [[1, `step loss ${value} x`]] }],
      slow ? ['SLOW m pod-0/0 @1'] : [],
    ],
  ),
  [
    'SLOW needs metricEvaluationDataPoints consecutive slow points',
    {
      name: 'm',
      logPattern: '.*loss ([0-9.]+)',
      operator: 'gt',
      metricThreshold: 2,
      metricEvaluationDataPoints: 3,
    },
    [
      {
        lines: [
          [1, 'loss 3'],
          [2, 'loss 3'],
          [3, 'loss 3'],
        ],
      },
    ],
    ['SLOW m pod-0/0 @3'],
  ],
  [
    'a normal reading resets the consecutive counter',
    {
      name: 'm',
      logPattern: '.*loss ([0-9.]+)',
      operator: 'gt',
      metricThreshold: 2,
      metricEvaluationDataPoints: 3,
    },
    [
      {
        lines: [
          [1, 'loss 3'],
          [2, 'loss 3'],
          [3, 'loss 1'],
          [4, 'loss 3'],
          [5, 'loss 3'],
        ],
      },
    ],
    [],
  ],
  [
    'a rule that stays SLOW reports once, and again after recovering',
    { name: 'm', logPattern: '.*loss ([0-9.]+)', operator: 'gt', metricThreshold: 2 },
    [
      {
        lines: [
          [1, 'loss 3'],
          [2, 'loss 4'],
          [3, 'loss 5'],
          [4, 'loss 1'],
          [5, 'loss 6'],
        ],
      },
    ],
    ['SLOW m pod-0/0 @1', 'SLOW m pod-0/0 @5'],
  ],
  [
    'non-matching lines between slow points do not reset the counter',
    {
      name: 'm',
      logPattern: '.*loss ([0-9.]+)',
      operator: 'gt',
      metricThreshold: 2,
      metricEvaluationDataPoints: 2,
    },
    [
      {
        lines: [
          [1, 'loss 3'],
          [2, 'unrelated'],
          [3, 'loss 3'],
        ],
      },
    ],
    ['SLOW m pod-0/0 @3'],
  ],
  [
    'a match without a capture group is HEALTHY even with threshold and operator',
    { name: 'm', logPattern: '.*loss [0-9.]+', operator: 'gt', metricThreshold: 2 },
    [{ lines: [[1, 'loss 3']] }],
    [],
  ],
  [
    'a captured value Python cannot parse as float leaves the verdict unchanged',
    {
      name: 'm',
      logPattern: '.*loss (\\S+)',
      operator: 'gt',
      metricThreshold: 2,
      metricEvaluationDataPoints: 2,
    },
    [
      {
        lines: [
          [1, 'loss 3'],
          [2, 'loss abc'],
          [3, 'loss 3'],
        ],
      },
    ],
    ['SLOW m pod-0/0 @3'],
  ],
  [
    'metric data points count per stream: one straggling rank is SLOW alone',
    {
      name: 'm',
      logPattern: '.*loss ([0-9.]+)',
      operator: 'gt',
      metricThreshold: 2,
      metricEvaluationDataPoints: 2,
    },
    [
      {
        lines: [
          [1, 'loss 3', 'p/0', 0],
          [1, 'loss 1', 'p/1', 1],
          [2, 'loss 3', 'p/1', 1],
          [3, 'loss 3', 'p/0', 0],
        ],
      },
    ],
    ['SLOW m p/0 @3'],
  ],
  // scopes
  [
    'job scope: a match on any stream is progress for the whole job',
    { name: 'hang', logPattern: '.*Batch (\\d+).*', expectedRecurringFrequencyInSeconds: 30 },
    [
      {
        lines: [
          [0, iter(1), 'p/0', 0],
          [25, iter(2), 'p/1', 1],
          [50, iter(3), 'p/0', 0],
        ],
      },
      { tick: 60 },
    ],
    [],
  ],
  [
    'stream scope: one silent stream is HANGING for that stream only',
    {
      name: 'hang',
      logPattern: '.*Batch (\\d+).*',
      expectedRecurringFrequencyInSeconds: 30,
      scope: 'stream',
    },
    [
      {
        lines: [
          [0, iter(1), 'p/0', 0],
          [0, iter(1), 'p/1', 1],
          [25, iter(2), 'p/1', 1],
          [50, iter(3), 'p/1', 1],
        ],
      },
    ],
    ['HANGING hang p/0 @30'],
  ],
  [
    'stream scope: a stream seen but never matching hits the start cutoff',
    { name: 'start', logPattern: '.*Training started.*', expectedStartCutOffInSeconds: 60, scope: 'stream' },
    [
      {
        lines: [
          [1, 'Training started', 'p/0', 0],
          [5, 'loading', 'p/1', 1],
        ],
      },
      { tick: 61 },
    ],
    ['HANGING start p/1 @60'],
  ],
  [
    'stream scope: the stop pattern stops only its own stream',
    {
      name: 'hang',
      logPattern: '.*Batch (\\d+).*',
      expectedRecurringFrequencyInSeconds: 30,
      scope: 'stream',
      stopPattern: '.*done.*',
    },
    [
      {
        lines: [
          [0, iter(1), 'p/0', 0],
          [0, iter(1), 'p/1', 1],
          [10, 'done', 'p/0', 0],
        ],
      },
      { tick: 100 },
    ],
    ['HANGING hang p/1 @30'],
  ],
  [
    'job scope: the stop pattern on any stream stops the rule',
    {
      name: 'hang',
      logPattern: '.*Batch (\\d+).*',
      expectedRecurringFrequencyInSeconds: 30,
      stopPattern: '.*done.*',
    },
    [
      {
        lines: [
          [0, iter(1), 'p/0', 0],
          [0, iter(1), 'p/1', 1],
          [10, 'done', 'p/0', 0],
        ],
      },
      { tick: 100 },
    ],
    [],
  ],
  // ranks filter
  [
    'a ranks filter ignores the lines of other ranks',
    { name: 'oom', logPattern: '.*out of memory.*', faultOnMatch: true, ranks: [0] },
    [
      {
        lines: [
          [1, 'out of memory', 'p/1', 1],
          [2, 'out of memory', 'p/0', 0],
        ],
      },
    ],
    ['FAULTED oom p/0 @2'],
  ],
  [
    'a ranks filter makes a job-wide hang depend on the listed ranks only',
    { name: 'hang', logPattern: '.*Batch (\\d+).*', expectedRecurringFrequencyInSeconds: 30, ranks: [0] },
    [
      {
        lines: [
          [0, iter(1), 'p/0', 0],
          [20, iter(2), 'p/1', 1],
          [40, iter(3), 'p/1', 1],
        ],
      },
    ],
    ['HANGING hang job @30'],
  ],
  // time and ordering
  [
    'lines out of order across streams are sorted by time: no false gap',
    { name: 'hang', logPattern: '.*Batch (\\d+).*', expectedRecurringFrequencyInSeconds: 10 },
    [
      {
        lines: [
          [0, iter(1), 'p/0', 0],
          [18, iter(3), 'p/0', 0],
          [9, iter(2), 'p/1', 1],
        ],
      },
    ],
    [],
  ],
  [
    'lines stamped before the generation start are ignored',
    { name: 'oom', logPattern: '.*out of memory.*', faultOnMatch: true },
    [{ lines: [[-5, 'out of memory']], now: 1 }],
    [],
  ],
  [
    'the batch time is the later of now and the latest line',
    { name: 'start', logPattern: '.*Training started.*', expectedStartCutOffInSeconds: 60 },
    [{ lines: [[10, 'loading']], now: 70 }],
    ['HANGING start job @60'],
  ],
];

describe('rule engine: HyperPod log-monitoring semantics', () => {
  it.each(semantics)('%s', (_name, partial, steps, expected) => {
    expect(scenario([rule(partial)], steps).findings).toEqual(expected);
  });

  it('a finding carries rule, verdict, reason, stream, rank, time, text, value and generation', () => {
    const { raw } = scenario(
      [rule({ name: 'loss', logPattern: '.*loss ([0-9.]+)', operator: 'gt', metricThreshold: 2 })],
      [{ lines: [[3, 'step 9 loss 4.5', 'pod-1/2', 10]] }],
    );
    expect(raw).toEqual([
      {
        rule: 'loss',
        verdict: 'SLOW',
        reason: 'LogSlow_loss',
        stream: 'pod-1/2',
        rank: 10,
        at: 3000,
        text: 'step 9 loss 4.5',
        value: 4.5,
        generation: 1,
      },
    ]);
  });

  it('a hang finding uses the LogHang reason and carries the last matched line', () => {
    const { raw } = scenario(
      [rule({ name: 'JobHang', logPattern: '.*Batch (\\d+).*', expectedRecurringFrequencyInSeconds: 5 })],
      [{ lines: [[1, iter(7)]] }, { tick: 10 }],
    );
    expect(raw).toEqual([
      {
        rule: 'JobHang',
        verdict: 'HANGING',
        reason: 'LogHang_JobHang',
        stream: 'job',
        at: 6000,
        text: iter(7),
        generation: 1,
      },
    ]);
  });

  it('every captured metric is returned as a value with its rule, time and rank', () => {
    const { values } = scenario(
      [rule({ name: 'step', logPattern: '.*Batch (\\d+).*' })],
      [
        {
          lines: [
            [1, iter(41), 'p/0', 0],
            [2, 'noise', 'p/0', 0],
            [3, iter(42), 'p/1', 1],
          ],
        },
      ],
    );
    expect(values).toEqual([
      { rule: 'step', value: 41, at: 1000, rank: 0 },
      { rule: 'step', value: 42, at: 3000, rank: 1 },
    ]);
  });

  it('returns only the values of the rule named by valuesOf, and none for null, with the same findings', () => {
    const c = compileRules([
      rule({ name: 'step', logPattern: '.*Batch (\\d+).*' }),
      rule({ name: 'loss', logPattern: '.*loss ([0-9.]+)', operator: 'gt', metricThreshold: 2 }),
    ]);
    const lines = [1, 2, 3].map((i) => ({ stream: 's', timestamp: i, text: `Batch ${i} loss 3` }));
    const all = evaluateLines(c, initialRuleState(c, 0, 0), lines, 10);
    const step = evaluateLines(c, initialRuleState(c, 0, 0), lines, 10, { valuesOf: 'step' });
    const none = evaluateLines(c, initialRuleState(c, 0, 0), lines, 10, { valuesOf: null });
    expect(all.values.map((v) => v.rule)).toEqual(['step', 'loss', 'step', 'loss', 'step', 'loss']);
    expect(step.values).toEqual(all.values.filter((v) => v.rule === 'step'));
    expect(none.values).toEqual([]);
    expect(step.findings).toEqual(all.findings);
    expect(none.state).toEqual(all.state);
  });

  it('the input state is never modified', () => {
    const c = compileRules([
      rule({ name: 'm', logPattern: '.*loss ([0-9.]+)', operator: 'gt', metricThreshold: 2 }),
    ]);
    const state = initialRuleState(c, 1, 0);
    const before = structuredClone(state);
    evaluateLines(c, state, [{ stream: 's', timestamp: 5, text: 'loss 3' }], 5);
    tickRules(c, state, 100_000);
    expect(state).toEqual(before);
  });

  it('the stored text is truncated and the state stays JSON that the schema parses', () => {
    const c = compileRules([
      rule({ name: 'm', logPattern: '.*loss ([0-9.]+)', operator: 'gt', metricThreshold: 2 }),
    ]);
    const long = `loss 3 ${'x'.repeat(5000)}`;
    const { state } = evaluateLines(
      c,
      initialRuleState(c, 4, 0),
      [{ stream: 's', timestamp: 5, text: long }],
      5,
    );
    const roundTrip = JSON.parse(JSON.stringify(state));
    expect(RuleStateSchema.parse(roundTrip)).toEqual(state);
    expect(state.rules.m?.job.lastText?.length).toBe(MAX_TEXT);
    expect(ruleStateGeneration(roundTrip)).toBe(4);
    expect(ruleStateGeneration({ nonsense: true })).toBeUndefined();
  });

  it('a restart generation restarts timers: no hang while workers restart, a fresh cutoff after', () => {
    const rules = [
      rule({
        name: 'hang',
        logPattern: '.*Batch (\\d+).*',
        expectedStartCutOffInSeconds: 60,
        expectedRecurringFrequencyInSeconds: 30,
      }),
    ];
    const c = compileRules(rules);
    let state = initialRuleState(c, 1, 0);
    state = evaluateLines(
      c,
      state,
      [{ stream: 's', rank: 0, timestamp: 10_000, text: iter(1) }],
      10_000,
    ).state;
    // restart at t=35 s; workers report RUNNING at t=100 s
    state = restartRuleState(c, state, 2, 100_000);
    expect(tickRules(c, state, 90_000).findings).toEqual([]);
    expect(tickRules(c, state, 160_000).findings).toEqual([]);
    const late = tickRules(c, state, 161_000).findings;
    expect(late.map((f) => [f.verdict, f.at, f.generation])).toEqual([['HANGING', 160_000, 2]]);
    expect(state.clock).toBe(100_000);
  });

  it('loadRuleState keeps a stored state of the current generation and starts fresh otherwise', () => {
    const c = compileRules([rule({ name: 'a', logPattern: 'x' })]);
    const stored = initialRuleState(c, 3, 50);
    expect(loadRuleState(c, JSON.parse(JSON.stringify(stored)), 3, 999)).toEqual(stored);
    expect(loadRuleState(c, stored, 4, 999).startedAt).toBe(999);
    expect(loadRuleState(c, 'garbage', 4, 7).generation).toBe(4);
  });

  it('nextRuleDeadline gives the earliest pending deadline', () => {
    const c = compileRules([
      rule({ name: 'start', logPattern: '.*started', expectedStartCutOffInSeconds: 60 }),
      rule({ name: 'hang', logPattern: '.*Batch', expectedRecurringFrequencyInSeconds: 30 }),
    ]);
    let state = initialRuleState(c, 1, 0);
    expect(nextRuleDeadline(c, state)).toBe(60_000);
    state = evaluateLines(c, state, [{ stream: 's', timestamp: 5000, text: 'Batch 1' }], 5000).state;
    expect(nextRuleDeadline(c, state)).toBe(35_000);
  });

  it('rules added to the spec get fresh slots and removed rules drop out of the state', () => {
    const c1 = compileRules([rule({ name: 'old', logPattern: 'x', faultOnMatch: true })]);
    const state = evaluateLines(
      c1,
      initialRuleState(c1, 1, 0),
      [{ stream: 's', timestamp: 1, text: 'x' }],
      1,
    ).state;
    const c2 = compileRules([rule({ name: 'new', logPattern: 'y', faultOnMatch: true })]);
    const out = evaluateLines(c2, state, [{ stream: 's', timestamp: 2, text: 'y' }], 2);
    expect(Object.keys(out.state.rules)).toEqual(['new']);
    expect(out.findings.map((f) => f.rule)).toEqual(['new']);
  });
});

describe('compileRules', () => {
  it.each([
    ['a repeated backreference', '(a+)\\1+', 'logPattern'],
    ['a dangerous lookahead', '(?=x)(x+)+y', 'logPattern'],
    ['an unbalanced group', '.*(abc', 'logPattern'],
  ] as const)('rejects %s with an error naming the rule and field', (_n, pattern, field) => {
    const bad = () => compileRules([rule({ name: 'MyRule', logPattern: pattern })]);
    expect(bad).toThrow(RuleCompileError);
    expect(bad).toThrow(new RegExp(`rule "MyRule": ${field}`));
  });

  it('rejects a bad stop pattern naming the field', () => {
    expect(() => compileRules([rule({ name: 'R', logPattern: 'x', stopPattern: '(?<!y+)z' })])).toThrow(
      /rule "R": stopPattern/,
    );
  });

  it('rejects duplicate rule names', () => {
    expect(() =>
      compileRules([rule({ name: 'R', logPattern: 'x' }), rule({ name: 'R', logPattern: 'y' })]),
    ).toThrow(RuleCompileError);
  });
});

describe('parsePythonFloat', () => {
  it.each([
    ['2', 2],
    ['2.5', 2.5],
    [' 3.25 ', 3.25],
    ['1e-3', 0.001],
    ['1_000', 1000],
    ['.5', 0.5],
    ['5.', 5],
    ['-inf', Number.NEGATIVE_INFINITY],
    ['abc', undefined],
    ['', undefined],
    ['1.2.3', undefined],
    ['12.5 ', 12.5],
  ] as const)('float(%j) is %s', (text, expected) => {
    expect(parsePythonFloat(text)).toBe(expected);
  });

  it('nan parses to NaN', () => {
    expect(parsePythonFloat('nan')).toBeNaN();
  });
});

describe('rule names as fault reasons', () => {
  const fault = (name: string) => rule({ name, logPattern: `.*${name.length}x`, faultOnMatch: true });
  const reasonsOf = (rules: LogRule[], text: string) =>
    scenario(rules, [{ lines: [[1, text]] }]).raw.map((f) => [f.rule, f.reason]);

  it.each([
    ['GPU Error', 'LogFault_GPUError'],
    ['loss spike!', 'LogFault_lossSpike'],
    ['Fehler Überlauf', 'LogFault_FehlerUberlauf'],
    ['preset.nccl.watchdog-timeout', 'LogFault_preset.nccl.watchdog-timeout'],
    ['JobStart', 'LogFault_JobStart'],
  ])('a rule named %j reports reason %s and keeps its name in the finding', (name, reason) => {
    expect(reasonsOf([fault(name)], `${name.length}x`)).toEqual([[name, reason]]);
  });

  it('gives two names that map alike distinct reasons, whatever their order, and leaves a name kept as written alone', () => {
    const names = ['GPU Error', 'GPU  Error', 'GPUError'];
    const rules = names.map((name, i) => rule({ name, logPattern: `.*r${i}`, faultOnMatch: true }));
    const line = 'r0 r1 r2';
    const forward = new Map(reasonsOf(rules, line) as [string, string][]);
    const backward = new Map(reasonsOf([...rules].reverse(), line) as [string, string][]);
    expect(forward).toEqual(backward);
    expect(forward.get('GPUError')).toBe('LogFault_GPUError');
    expect(forward.get('GPU Error')).toMatch(/^LogFault_GPUError_[0-9a-f]{8}$/);
    expect(forward.get('GPU  Error')).toMatch(/^LogFault_GPUError_[0-9a-f]{8}$/);
    expect(new Set(forward.values()).size).toBe(3);
  });

  it('gives a name with nothing reason-safe a hashed reason', () => {
    const [[, reason] = []] = reasonsOf([fault('日本語')], '3x');
    expect(reason).toMatch(/^LogFault_Rule_[0-9a-f]{8}$/);
  });

  it.each(['__proto__', 'constructor', 'toString'])(
    'keeps the state of a rule named %s as its own and carries it across batches',
    (name) => {
      const r = rule({ name, logPattern: '.*step', expectedRecurringFrequencyInSeconds: 10 });
      const { findings, state } = scenario([r], [{ lines: [[1, 'step']] }, { tick: 20 }]);
      expect(findings).toEqual([`HANGING ${name} job @11`]);
      expect(Object.hasOwn(state.rules, name)).toBe(true);
      expect(Object.getPrototypeOf(state.rules)).toBe(Object.prototype);
    },
  );
});

describe('per-stream entries', () => {
  const metric = rule({
    name: 'm',
    logPattern: '.*training_loss_step (\\d+(?:\\.\\d+)?).*',
    metricThreshold: 5,
    operator: 'gt',
    metricEvaluationDataPoints: 3,
  });
  const streams = (state: ReturnType<typeof scenario>['state'], name = 'm') =>
    Object.keys(state.rules[name]?.streams ?? {}).sort();

  it('a job-scope rule keeps none for a healthy stream, one while a streak or a SLOW verdict lasts', () => {
    const healthy = Array.from({ length: 64 }, (_, i): L => [1, iter(1, 2.1), `pod-${i}/0`, i]);
    expect(streams(scenario([metric], [{ lines: healthy }]).state)).toEqual([]);

    const streak: Step[] = [{ lines: [...healthy, [2, iter(2, 9), 'pod-7/0', 7]] }];
    expect(streams(scenario([metric], streak).state)).toEqual(['pod-7/0']);

    const slow = [
      ...streak,
      { lines: [[3, iter(3, 9), 'pod-7/0', 7]] as L[] },
      { lines: [[4, iter(4, 9), 'pod-7/0', 7]] as L[] },
    ];
    const slowRun = scenario([metric], slow);
    expect(slowRun.findings).toEqual(['SLOW m pod-7/0 @4']);
    expect(streams(slowRun.state)).toEqual(['pod-7/0']);

    // recovered: HEALTHY again, nothing left to remember; a new streak starts from nothing, as before
    const recovered = scenario([metric], [...slow, { lines: [[5, iter(5, 1), 'pod-7/0', 7]] }]);
    expect(streams(recovered.state)).toEqual([]);
    const again = scenario(
      [metric],
      [
        ...slow,
        { lines: [[5, iter(5, 1), 'pod-7/0', 7]] },
        ...[6, 7, 8].map((t): Step => ({ lines: [[t, iter(t, 9), 'pod-7/0', 7]] })),
      ],
    );
    expect(again.findings).toEqual(['SLOW m pod-7/0 @4', 'SLOW m pod-7/0 @8']);
  });

  it('finds the same whether a healthy stream kept its entry or not: one batch, or one batch per line', () => {
    const lines: L[] = [];
    for (let t = 1; t <= 40; t++)
      for (let p = 0; p < 4; p++) lines.push([t, iter(t, p === 2 && t % 7 < 4 ? 9 : 2), `pod-${p}/0`, p]);
    const whole = scenario([metric], [{ lines }]);
    const split = scenario(
      [metric],
      lines.map((l): Step => ({ lines: [l] })),
    );
    expect(split.findings).toEqual(whole.findings);
    expect(whole.findings.length).toBeGreaterThan(1);
  });

  it('a stream-scope rule keeps every stream it has seen (its timers are per stream)', () => {
    const perStream = rule({
      name: 's',
      logPattern: '.*training_loss_step.*',
      expectedRecurringFrequencyInSeconds: 30,
      scope: 'stream',
    });
    const { state } = scenario(
      [perStream],
      [
        {
          lines: [
            [1, iter(1), 'pod-0/0', 0],
            [1, iter(1), 'pod-1/0', 1],
          ],
        },
      ],
    );
    expect(streams(state, 's')).toEqual(['pod-0/0', 'pod-1/0']);
  });
});
