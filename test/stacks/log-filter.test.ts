/**
 * The subscription filter pattern the stack deploys (stacks/log-filter.ts), checked with CloudWatch Logs'
 * filter-pattern semantics (local/logs/filter-pattern.ts, the local stand-in's matcher) over the records
 * the local shipper emits in each dialect (stock Container Insights with Labels Off, Labels On, raw text).
 */
import { describe, expect, it } from 'vitest';
import { AGENT_RECORD_MARKER, AgentRecord } from '../../core/agent-protocol.ts';
import { POD_LABELS } from '../../core/observations.ts';
import { eventMessage, type LogDialect } from '../../local/logs/container-insights.ts';
import { compileFilterPattern, parseFilterPattern } from '../../local/logs/filter-pattern.ts';
import type { CapturedLine } from '../../local/shipper.ts';
import { StageConfigError, stageConfig } from '../../stacks/config.ts';
import {
  LABELS_FILTER_PATTERN,
  LogFilterPatternError,
  logFilterPattern,
  MAX_FILTER_PATTERN_LENGTH,
  namespaceFilterPattern,
} from '../../stacks/log-filter.ts';

const agentLine = JSON.stringify({
  trainkeeper: AGENT_RECORD_MARKER,
  ts: '2026-06-01T17:20:25.000Z',
  namespace: 'team-a',
  pod: 'llama-pods-0-g1',
  job: 'llama',
  generation: 1,
  state: 'RUNNING',
  kind: 'heartbeat',
});

const line = (over: Partial<CapturedLine>): CapturedLine => ({
  namespace: 'team-a',
  pod: 'llama-pods-0-g1',
  container: 'pytorch',
  node: 'ip-10-1-2-3',
  stream: 'stdout',
  line: '[default0]: iteration 10 loss 2.31',
  timestamp: 1_780_334_425_000,
  ...over,
});

const passes = (pattern: string, over: Partial<CapturedLine>, dialect: LogDialect = 'stock') =>
  compileFilterPattern(pattern)(eventMessage(line(over), dialect));

const EKS_ENV = {
  TRAINKEEPER_DEPLOY_REGION: 'eu-west-1',
  TRAINKEEPER_DEPLOY_CLUSTER_KIND: 'eks',
  TRAINKEEPER_DEPLOY_CLUSTER_NAME: 'train-eks',
};

describe('the default (namespaces) filter pattern', () => {
  const pattern = logFilterPattern('namespaces', ['team-a', 'team-b']);

  it('is a JSON pattern over the record namespace of each allowed namespace', () => {
    expect(pattern).toBe(
      '{ $.kubernetes.namespace_name = "team-a" || $.kubernetes.namespace_name = "team-b" }',
    );
    expect(parseFilterPattern(pattern).kind).toBe('json');
  });

  it.each<[string, Partial<CapturedLine>, boolean]>([
    ['a training line of a TrainKeeper pod, stock add-on (Labels Off)', {}, true],
    ['an agent status line, stock add-on', { line: agentLine }, true],
    ['a line of a pod in the other allowed namespace', { namespace: 'team-b', pod: 'x' }, true],
    ['a line of kube-system', { namespace: 'kube-system', pod: 'coredns-1' }, false],
    [
      'a line of another namespace whose pod prints an agent record',
      { namespace: 'web', line: agentLine },
      false,
    ],
    ['a line of a namespace whose name extends an allowed one', { namespace: 'team-a-dev' }, false],
  ])('with the stock add-on, passes %s: %s', (_, over, expected) => {
    expect(passes(pattern, over)).toBe(expected);
    expect(passes(pattern, over, 'labels')).toBe(expected);
  });

  it('passes nothing of a raw (plain text) shipper: a JSON pattern matches no plain line', () => {
    expect(passes(pattern, {}, 'raw')).toBe(false);
  });

  it('is the empty pattern (every event) when the namespaces are *', () => {
    expect(namespaceFilterPattern(['*'])).toBe('');
    expect(logFilterPattern('namespaces', ['team-a', '*'])).toBe('');
  });

  it('names each namespace once', () => {
    expect(namespaceFilterPattern(['a', 'a'])).toBe('{ $.kubernetes.namespace_name = "a" }');
  });

  it('is refused when it exceeds CloudWatch’s 1024 characters', () => {
    const many = Array.from({ length: 40 }, (_, i) => `namespace-number-${i}`);
    expect(() => logFilterPattern('namespaces', many)).toThrow(LogFilterPatternError);
    expect(() => logFilterPattern('namespaces', many)).toThrow(/40 namespaces is \d+ characters.*1024/);
    const fit = Array.from({ length: 20 }, (_, i) => `team-${i}`);
    expect(logFilterPattern('namespaces', fit).length).toBeLessThanOrEqual(MAX_FILTER_PATTERN_LENGTH);
  });
});

describe('the labels filter pattern (for a shipper with Labels On)', () => {
  it.each<[string, Partial<CapturedLine>, LogDialect, boolean]>([
    [
      'a training line of a labelled TrainKeeper pod',
      { labels: { [POD_LABELS.job]: 'llama' } },
      'labels',
      true,
    ],
    ['an agent status line of a pod shipped without labels', { line: agentLine }, 'stock', true],
    [
      'an agent status line of a labelled pod',
      { line: agentLine, labels: { [POD_LABELS.job]: 'l' } },
      'labels',
      true,
    ],
    ['a training line of a pod shipped without labels (the stock add-on)', {}, 'stock', false],
    [
      'a line of another workload with its own labels',
      { pod: 'web-1', labels: { app: 'web' } },
      'labels',
      false,
    ],
    ['a line that merely says trainkeeper', { pod: 'x', line: 'trainkeeper is great' }, 'labels', false],
  ])('passes %s: %s', (_, over, dialect, expected) => {
    expect(passes(LABELS_FILTER_PATTERN, over, dialect)).toBe(expected);
    expect(passes(logFilterPattern('all', []), over, dialect)).toBe(true);
  });

  it('is the OR of the job label key and the agent record marker', () => {
    expect(logFilterPattern('labels', ['team-a'])).toBe('?"trainkeeper.dev/job" ?"agent/v1"');
    expect(logFilterPattern('all', ['team-a'])).toBe('');
  });

  it('uses a sample agent line the agent record schema accepts', () => {
    expect(AgentRecord.safeParse(JSON.parse(agentLine)).success).toBe(true);
  });
});

describe('logFilter in the stage configuration', () => {
  it('defaults to the namespaces filter', () => {
    expect(stageConfig('ci').logFilter).toBe('namespaces');
  });

  it('takes a custom pattern from TRAINKEEPER_DEPLOY_LOG_FILTER_PATTERN', () => {
    const c = stageConfig('x', { ...EKS_ENV, TRAINKEEPER_DEPLOY_LOG_FILTER_PATTERN: '?ERROR ?WARN' }, {});
    expect(c.logFilter).toEqual({ pattern: '?ERROR ?WARN' });
    expect(logFilterPattern(c.logFilter, c.allowedNamespaces)).toBe('?ERROR ?WARN');
  });

  it('fails at configuration time, naming logFilter, when the namespaces filter exceeds 1024 characters', () => {
    const many = Array.from({ length: 40 }, (_, i) => `namespace-number-${i}`).join(',');
    const build = () => stageConfig('x', { ...EKS_ENV, TRAINKEEPER_DEPLOY_ALLOWED_NAMESPACES: many }, {});
    expect(build).toThrow(StageConfigError);
    expect(build).toThrow(/logFilter: the namespaces filter over 40 namespaces/);
    expect(() =>
      stageConfig(
        'x',
        { ...EKS_ENV, TRAINKEEPER_DEPLOY_ALLOWED_NAMESPACES: many, TRAINKEEPER_DEPLOY_LOG_FILTER: 'all' },
        {},
      ),
    ).not.toThrow();
  });

  it('refuses a custom pattern longer than 1024 characters and an unknown mode', () => {
    expect(() =>
      stageConfig('x', { ...EKS_ENV, TRAINKEEPER_DEPLOY_LOG_FILTER_PATTERN: 'x'.repeat(1025) }, {}),
    ).toThrow(/logFilter/);
    expect(() => stageConfig('x', { ...EKS_ENV, TRAINKEEPER_DEPLOY_LOG_FILTER: 'trainkeeper' }, {})).toThrow(
      /logFilter/,
    );
  });
});
