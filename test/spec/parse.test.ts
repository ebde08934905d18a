import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  GENERATED_NAME_ALPHABET,
  MAX_JOB_NAME_LENGTH,
  nameSuffixFrom,
  parseJobManifest,
} from '../../core/spec/parse.ts';
import { PRESET_NAMES } from '../../core/spec/preset-names.ts';
import { closestKey, formatPath } from '../../core/spec/schema.ts';
import type { FieldIssue, JobSpec, ParseResult } from '../../core/spec/types.ts';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/manifests/${name}`, import.meta.url), 'utf8');

/** A small valid manifest; each case copies it and changes one thing. */
function base(): Record<string, unknown> {
  return {
    apiVersion: 'sagemaker.amazonaws.com/v1',
    kind: 'HyperPodPyTorchJob',
    metadata: { name: 'job' },
    spec: {
      replicaSpecs: [
        { name: 'pods', replicas: 2, template: { spec: { containers: [{ name: 'pytorch', image: 'x' }] } } },
      ],
      runPolicy: {
        logMonitoringConfiguration: [
          { name: 'Hang', logPattern: '.*Loss (\\d+).*', expectedRecurringFrequencyInSeconds: 60 },
        ],
      },
    },
  };
}

/**
 * `doc` (a fresh `base()` by default) with the value at a dotted path (`[i]` for list items) set, or deleted
 * when `undefined`; nest calls to change several fields.
 */
function withField(
  path: string,
  value: unknown,
  doc: Record<string, unknown> = base(),
): Record<string, unknown> {
  const parts = path.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== '');
  let node: Record<string, unknown> = doc;
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {};
    node = node[part] as Record<string, unknown>;
  }
  const last = parts[parts.length - 1] as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return doc;
}

function specOf(result: ParseResult): JobSpec {
  if (!result.ok) throw new Error(`expected a valid manifest, got ${JSON.stringify(result.errors)}`);
  return result.spec;
}

function errorsOf(result: ParseResult): FieldIssue[] {
  if (result.ok) throw new Error('expected errors, the manifest parsed');
  return result.errors;
}

const get = (value: unknown, path: string): unknown =>
  path
    .split(/\.|\[(\d+)\]/)
    .filter((p) => p !== undefined && p !== '')
    .reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], value);

describe('parseJobManifest defaults', () => {
  const spec = specOf(parseJobManifest(base()));
  it.each([
    ['namespace', 'default'],
    ['labels', {}],
    ['annotations', {}],
    ['nprocPerNode', 'auto'],
    ['replicaSpecs[0].spares', 0],
    ['runPolicy.cleanPodPolicy', 'All'],
    ['runPolicy.ttlSecondsAfterFinished', 0],
    ['runPolicy.suspend', false],
    ['runPolicy.logMonitoringConfiguration[0].metricEvaluationDataPoints', 1],
    ['runPolicy.logMonitoringConfiguration[0].faultOnMatch', false],
    ['runPolicy.logMonitoringConfiguration[0].scope', 'job'],
    ['runPolicy.logMonitoringConfiguration[0].source', { kind: 'user' }],
    ['trainkeeper.presets', [...PRESET_NAMES]],
  ])('defaults %s to %j', (path, expected) => {
    expect(get(spec, path)).toEqual(expected);
  });

  it.each([
    [
      'replicas',
      { name: 'pods', template: { spec: { containers: [{ name: 'c' }] } } },
      'replicaSpecs[0].replicas',
      0,
    ],
    [
      'restartPolicy.scaleUpSnoozeTimeInSeconds',
      undefined,
      'runPolicy.restartPolicy.scaleUpSnoozeTimeInSeconds',
      0,
    ],
    ['restartBackoff.freeRestarts', undefined, 'trainkeeper.restartBackoff.freeRestarts', 2],
    ['restartBackoff.initialSeconds', undefined, 'trainkeeper.restartBackoff.initialSeconds', 10],
    ['restartBackoff.maxSeconds', undefined, 'trainkeeper.restartBackoff.maxSeconds', 300],
    ['restartBackoff.multiplier', undefined, 'trainkeeper.restartBackoff.multiplier', 2],
  ])('defaults %s when its object is given without it', (_name, replica, path, expected) => {
    const doc = base();
    const spec = doc.spec as Record<string, unknown>;
    if (replica)
      spec.replicaSpecs = [
        replica,
        { name: 'other', replicas: 1, template: { spec: { containers: [{ name: 'c' }] } } },
      ];
    spec.runPolicy = { restartPolicy: { evalPeriodSeconds: 60 } };
    spec.trainkeeper = { restartBackoff: {} };
    expect(get(specOf(parseJobManifest(doc)), path)).toEqual(expected);
  });

  it('leaves absent optional fields out of the output instead of setting them to undefined', () => {
    expect(Object.keys(spec.runPolicy)).toEqual([
      'cleanPodPolicy',
      'ttlSecondsAfterFinished',
      'suspend',
      'logMonitoringConfiguration',
    ]);
    expect(Object.keys(spec.trainkeeper)).toEqual(['presets']);
    expect('elasticPolicy' in spec).toBe(false);
  });

  it('keeps the pod template exactly as given, including fields it does not validate', () => {
    const doc = withField('spec.replicaSpecs[0].template', {
      metadata: { labels: { a: 'b' }, name: 'ignored-by-kubernetes' },
      spec: {
        containers: [{ name: 'c', image: 'i', env: [{ name: 'X', value: '1' }] }],
        nodeSelector: { k: 'v' },
      },
    });
    const template = specOf(parseJobManifest(doc)).replicaSpecs[0]?.template;
    expect(template).toEqual(
      (doc.spec as { replicaSpecs: { template: unknown }[] }).replicaSpecs[0]?.template,
    );
  });
});

describe('parseJobManifest accepts and normalizes', () => {
  it.each([
    ['spec.nprocPerNode', '8', 'nprocPerNode', 8],
    ['spec.nprocPerNode', 4, 'nprocPerNode', 4],
    ['spec.nprocPerNode', 'gpu', 'nprocPerNode', 'gpu'],
    ['spec.nprocPerNode', 'cpu', 'nprocPerNode', 'cpu'],
    ['spec.replicaSpecs[0].replicas', '16', 'replicaSpecs[0].replicas', 16],
    ['spec.replicaSpecs[0].spares', ' 2 ', 'replicaSpecs[0].spares', 2],
    ['spec.runPolicy.ttlSecondsAfterFinished', -1, 'runPolicy.ttlSecondsAfterFinished', -1],
    ['spec.runPolicy.jobMaxRetryCount', '50', 'runPolicy.jobMaxRetryCount', 50],
    ['spec.runPolicy.activeDeadlineSeconds', 3600, 'runPolicy.activeDeadlineSeconds', 3600],
    ['spec.runPolicy.cleanPodPolicy', 'OnlyComplete', 'runPolicy.cleanPodPolicy', 'OnlyComplete'],
    [
      'spec.runPolicy.logMonitoringConfiguration[0]',
      { name: 'R', logPattern: '(\\d+)', operator: 'lt', metricThreshold: 2.5 },
      'runPolicy.logMonitoringConfiguration[0].metricThreshold',
      2.5,
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0]',
      { name: 'R', logPattern: '(\\d+)', operator: 'eq', metricThreshold: '-0.5' },
      'runPolicy.logMonitoringConfiguration[0].metricThreshold',
      -0.5,
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].ranks',
      [0, '3'],
      'runPolicy.logMonitoringConfiguration[0].ranks',
      [0, 3],
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].scope',
      'stream',
      'runPolicy.logMonitoringConfiguration[0].scope',
      'stream',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].logPattern',
      '.*(?P<step>\\d+).*',
      'runPolicy.logMonitoringConfiguration[0].logPattern',
      '.*(?P<step>\\d+).*',
    ],
    ['spec.trainkeeper.presets', [], 'trainkeeper.presets', []],
    ['spec.trainkeeper.presets', ['oom', 'nccl'], 'trainkeeper.presets', ['oom', 'nccl']],
    ['metadata.name', 'a'.repeat(MAX_JOB_NAME_LENGTH), 'name', 'a'.repeat(MAX_JOB_NAME_LENGTH)],
    ['metadata.labels', { 'kueue.x-k8s.io/queue-name': 'q' }, 'labels', { 'kueue.x-k8s.io/queue-name': 'q' }],
  ])('accepts %s = %j as %s = %j', (path, value, outPath, expected) => {
    expect(get(specOf(parseJobManifest(withField(path, value))), outPath)).toEqual(expected);
  });

  it('adds operator and metricThreshold to the rule when both are given', () => {
    const doc = withField(
      'spec.runPolicy.logMonitoringConfiguration[0].operator',
      'gt',
      withField('spec.runPolicy.logMonitoringConfiguration[0].metricThreshold', 2),
    );
    const rule = specOf(parseJobManifest(doc)).runPolicy.logMonitoringConfiguration[0];
    expect([rule?.operator, rule?.metricThreshold]).toEqual(['gt', 2]);
  });

  it('reads JSON text the same as the parsed object', () => {
    expect(parseJobManifest(JSON.stringify(base()))).toEqual(parseJobManifest(base()));
  });
});

describe('parseJobManifest fixtures', () => {
  it.each([
    ['p5-16-nodes-log-rules.yaml', 16, ['JobStart', 'JobHangingDetection', 'LossSpike', 'LowTFLOPs']],
    ['kueue-spares.yaml', 4, []],
    ['fsdp-hyperpodrun.yaml', 4, ['JobStart', 'JobHangingDetection', 'TrainingStep']],
    ['minimal.json', 2, ['OutOfMemory']],
  ])('parses %s unchanged with %i replicas and rules %j', (file, replicas, rules) => {
    const result = parseJobManifest(fixture(file));
    const spec = specOf(result);
    expect(result.warnings).toEqual([]);
    expect(spec.replicaSpecs.reduce((n, r) => n + r.replicas, 0)).toBe(replicas);
    expect(spec.runPolicy.logMonitoringConfiguration.map((r) => r.name)).toEqual(rules);
  });

  it('reads the loss-spike and low-TFLOPs rules of the p5 job as documented', () => {
    const rules = specOf(parseJobManifest(fixture('p5-16-nodes-log-rules.yaml'))).runPolicy
      .logMonitoringConfiguration;
    expect(
      rules.slice(2).map((r) => [r.logPattern, r.operator, r.metricThreshold, r.metricEvaluationDataPoints]),
    ).toEqual([
      ['.*training_loss_step (\\d+(?:\\.\\d+)?).*', 'gt', 2, 5],
      ['.* (.+)TFLOPs.*', 'lt', 100, 5],
    ]);
  });

  it('keeps the Kueue queue labels and spares of the task-governance job', () => {
    const spec = specOf(parseJobManifest(fixture('kueue-spares.yaml')));
    expect(spec.labels['kueue.x-k8s.io/queue-name']).toBe('hyperpod-ns-team-a-localqueue');
    expect(spec.replicaSpecs[0]?.spares).toBe(2);
    expect(spec.runPolicy.suspend).toBe(true);
  });

  it('keeps the node-health affinity and hyperpodrun command of the FSDP job', () => {
    const spec = specOf(parseJobManifest(fixture('fsdp-hyperpodrun.yaml')));
    const podSpec = spec.replicaSpecs[0]?.template.spec;
    expect(podSpec?.containers[0]?.command?.[0]).toBe('hyperpodrun');
    expect(JSON.stringify(podSpec?.affinity)).toContain('"values":["Schedulable"]');
    expect(spec.trainkeeper).toEqual({
      presets: ['nccl', 'cuda', 'oom', 'xid'],
      restartBackoff: { freeRestarts: 2, initialSeconds: 15, maxSeconds: 300, multiplier: 2 },
      maxRestartsWithoutProgress: 3,
      progressRule: 'TrainingStep',
    });
  });

  it('reports every problem of the invalid manifest at once, top to bottom', () => {
    const errors = errorsOf(parseJobManifest(fixture('invalid-many-errors.yaml')));
    expect(errors.map((e) => e.path)).toEqual([
      'apiVersion',
      'metadata.name',
      'spec.nprocPerNode',
      'spec.runPolicy.jobMaxRetryCount',
      'spec.runPolicy.restartPolicy.evalPeriodSeconds',
      'spec.runPolicy.cleanPodPolicy',
      'spec.runPolicy.logMonitoringConfiguration[0].expectedStartCutoffInSeconds',
      'spec.runPolicy.logMonitoringConfiguration[1].name',
      'spec.runPolicy.logMonitoringConfiguration[1].logPattern',
      'spec.runPolicy.logMonitoringConfiguration[2].operator',
      'spec.replicaSpecs[0].replicas',
      'spec.replicaSpecs[0].template.spec.containers',
      'spec.replicaSpecs[1].name',
      'spec.replicaSpecs[1].spares',
      'spec.replicaSpecs[1].template.spec.containers[0].name',
      'spec.replicaSpecs[1].template.spec.containers[0].command',
      'spec.elasticPolicy.minReplicas',
      'spec.elasticPolicy.maxReplica',
      'spec.trainkeeper.presets[1]',
      'spec.trainkeeper.progressRule',
    ]);
  });

  it('sorts an issue about a field with a dotted label key under that key', () => {
    const doc = withField('metadata.labels', { 'kueue.x-k8s.io/queue-name': 7 });
    (doc as Record<string, unknown>).kind = 'Job';
    expect(errorsOf(parseJobManifest(doc)).map((e) => e.path)).toEqual([
      'kind',
      'metadata.labels["kueue.x-k8s.io/queue-name"]',
    ]);
  });
});

describe('parseJobManifest errors', () => {
  it.each([
    ['apiVersion', 'v1', 'apiVersion', 'must be `sagemaker.amazonaws.com/v1`'],
    ['kind', 'PyTorchJob', 'kind', 'must be `HyperPodPyTorchJob`'],
    ['kind', undefined, 'kind', 'is required'],
    ['metadata.name', 'My_Job', 'metadata.name', 'DNS-1123 label'],
    [
      'metadata.name',
      'a'.repeat(MAX_JOB_NAME_LENGTH + 1),
      'metadata.name',
      `at most ${MAX_JOB_NAME_LENGTH} characters`,
    ],
    ['metadata.name', undefined, 'metadata.name', 'is required'],
    ['metadata.namespace', 'Team A', 'metadata.namespace', 'DNS-1123 label'],
    ['metadata.labels', { app: 3 }, 'metadata.labels.app', 'must be a string'],
    ['spec.nprocPerNode', '$GPU_PER_NODE', 'spec.nprocPerNode', 'unsubstituted variable'],
    ['spec.nprocPerNode', 0, 'spec.nprocPerNode', 'a positive integer'],
    ['spec.nprocPerNode', 'tpu', 'spec.nprocPerNode', 'must be `auto`, `gpu`, `cpu` or a positive integer'],
    ['spec.replicaSpecs', [], 'spec.replicaSpecs', 'at least 1 item'],
    ['spec.replicaSpecs', undefined, 'spec.replicaSpecs', 'is required'],
    ['spec.replicaSpecs[0].replicas', 0, 'spec.replicaSpecs', 'at least one replica overall'],
    ['spec.replicaSpecs[0].replicas', 1.5, 'spec.replicaSpecs[0].replicas', 'must be an integer'],
    [
      'spec.replicaSpecs[0].replicas',
      '2.0x',
      'spec.replicaSpecs[0].replicas',
      'must be an integer, not the string "2.0x"',
    ],
    ['spec.replicaSpecs[0].spares', -1, 'spec.replicaSpecs[0].spares', 'must be at least 0'],
    [
      'spec.replicaSpecs[0].maxReplicas',
      1,
      'spec.replicaSpecs[0].maxReplicas',
      'must be at least replicas (2)',
    ],
    ['spec.replicaSpecs[0].name', 'Workers', 'spec.replicaSpecs[0].name', 'DNS-1123 label'],
    ['spec.replicaSpecs[0].name', 'w'.repeat(64), 'spec.replicaSpecs[0].name', 'at most 63 characters'],
    ['spec.replicaSpecs[0].template', undefined, 'spec.replicaSpecs[0].template', 'is required'],
    [
      'spec.replicaSpecs[0].template.spec.containers',
      [],
      'spec.replicaSpecs[0].template.spec.containers',
      'at least 1 item',
    ],
    [
      'spec.replicaSpecs[0].template.spec.containers[0].name',
      undefined,
      'spec.replicaSpecs[0].template.spec.containers[0].name',
      'is required',
    ],
    [
      'spec.replicaSpecs[0].template.spec.containers[0].command',
      'python train.py',
      'spec.replicaSpecs[0].template.spec.containers[0].command',
      'must be a list',
    ],
    [
      'spec.replicaSpecs[0].template.spec.containers[0].args',
      ['--lr', 3],
      'spec.replicaSpecs[0].template.spec.containers[0].args[1]',
      'must be a string',
    ],
    [
      'spec.replicaSpecs[0].template.spec.containers[1]',
      { name: 'pytorch' },
      'spec.replicaSpecs[0].template.spec.containers[1].name',
      'duplicates container `pytorch`',
    ],
    [
      'spec.runPolicy.restartPolicy',
      { maxFullJobRestarts: 1 },
      'spec.runPolicy.restartPolicy.evalPeriodSeconds',
      'is required',
    ],
    [
      'spec.runPolicy.restartPolicy',
      { evalPeriodSeconds: 0 },
      'spec.runPolicy.restartPolicy.evalPeriodSeconds',
      'must be at least 1',
    ],
    [
      'spec.runPolicy.cleanPodPolicy',
      'Always',
      'spec.runPolicy.cleanPodPolicy',
      'must be one of `All`, `OnlyComplete`, `None`',
    ],
    [
      'spec.runPolicy.ttlSecondsAfterFinished',
      -2,
      'spec.runPolicy.ttlSecondsAfterFinished',
      'must be at least -1',
    ],
    [
      'spec.runPolicy.startupDeadlineSeconds',
      0,
      'spec.runPolicy.startupDeadlineSeconds',
      'must be at least 1',
    ],
    ['spec.runPolicy.faultDeadlineSeconds', -5, 'spec.runPolicy.faultDeadlineSeconds', 'must be at least 1'],
    [
      'spec.runPolicy.activeDeadlineSeconds',
      'soon',
      'spec.runPolicy.activeDeadlineSeconds',
      'must be an integer',
    ],
    ['spec.runPolicy.suspend', 'yes', 'spec.runPolicy.suspend', 'must be a boolean'],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].name',
      'line\nbreak',
      'spec.runPolicy.logMonitoringConfiguration[0].name',
      'must not contain control characters',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].name',
      'n'.repeat(129),
      'spec.runPolicy.logMonitoringConfiguration[0].name',
      'at most 128 characters',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].logPattern',
      undefined,
      'spec.runPolicy.logMonitoringConfiguration[0].logPattern',
      'is required',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].logPattern',
      '(\\w+)\\1+',
      'spec.runPolicy.logMonitoringConfiguration[0].logPattern',
      'a repeated backreference',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].stopPattern',
      '(?<!x+)y',
      'spec.runPolicy.logMonitoringConfiguration[0].stopPattern',
      'look-behind requires fixed-width pattern',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].stopPattern',
      '[',
      'spec.runPolicy.logMonitoringConfiguration[0].stopPattern',
      'missing closing ]',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].metricThreshold',
      Number.POSITIVE_INFINITY,
      'spec.runPolicy.logMonitoringConfiguration[0].metricThreshold',
      'must be a number',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].metricEvaluationDataPoints',
      0,
      'spec.runPolicy.logMonitoringConfiguration[0].metricEvaluationDataPoints',
      'must be at least 1',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].faultOnMatch',
      'true',
      'spec.runPolicy.logMonitoringConfiguration[0].faultOnMatch',
      'must be a boolean',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].ranks',
      [],
      'spec.runPolicy.logMonitoringConfiguration[0].ranks',
      'at least 1 item',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].ranks',
      [-1],
      'spec.runPolicy.logMonitoringConfiguration[0].ranks[0]',
      'must be at least 0',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].scope',
      'rank',
      'spec.runPolicy.logMonitoringConfiguration[0].scope',
      'must be one of `job`, `stream`',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[1]',
      { name: 'Hang', logPattern: 'x', faultOnMatch: true },
      'spec.runPolicy.logMonitoringConfiguration[1].name',
      'duplicates rule `Hang`',
    ],
    ['spec.elasticPolicy', [1], 'spec.elasticPolicy', 'must be a mapping'],
    ['spec.trainkeeper.presets', ['gpu'], 'spec.trainkeeper.presets[0]', 'must be one of `nccl`'],
    ['spec.trainkeeper.presets', ['oom', 'oom'], 'spec.trainkeeper.presets[1]', 'lists preset `oom` twice'],
    [
      'spec.trainkeeper.restartBackoff',
      { multiplier: 0.5 },
      'spec.trainkeeper.restartBackoff.multiplier',
      'must be at least 1',
    ],
    [
      'spec.trainkeeper.restartBackoff',
      { initialSeconds: 60, maxSeconds: 30 },
      'spec.trainkeeper.restartBackoff.maxSeconds',
      'must be at least initialSeconds (60)',
    ],
    [
      'spec.trainkeeper.maxRestartsWithoutProgress',
      0,
      'spec.trainkeeper.maxRestartsWithoutProgress',
      'must be at least 1',
    ],
    [
      'spec.trainkeeper.progressRule',
      'Step',
      'spec.trainkeeper.progressRule',
      'names no rule of this job (rules: `Hang`)',
    ],
  ])('rejects %s = %j at %s', (field, value, path, message) => {
    const errors = errorsOf(parseJobManifest(withField(field, value)));
    expect(errors).toContainEqual({ path, message: expect.stringContaining(message) });
  });

  it('rejects a progressRule whose pattern has no capture group to read the step from', () => {
    const doc = withField(
      'spec.trainkeeper.progressRule',
      'Start',
      withField('spec.runPolicy.logMonitoringConfiguration[0]', {
        name: 'Start',
        logPattern: '.*Loss.*',
        expectedStartCutOffInSeconds: 60,
      }),
    );
    expect(errorsOf(parseJobManifest(doc))).toEqual([
      { path: 'spec.trainkeeper.progressRule', message: expect.stringContaining('no capture group') },
    ]);
  });

  it.each([
    ['metadata.namespce', 'metadata.namespce', 'did you mean `namespace`?'],
    ['spec.replicaSpec', 'spec.replicaSpec', 'did you mean `replicaSpecs`?'],
    ['spec.nProcPerNode', 'spec.nProcPerNode', 'did you mean `nprocPerNode`?'],
    ['spec.runPolicy.cleanpodpolicy', 'spec.runPolicy.cleanpodpolicy', 'did you mean `cleanPodPolicy`?'],
    [
      'spec.runPolicy.restartPolicy.evalPeriodSecond',
      'spec.runPolicy.restartPolicy.evalPeriodSecond',
      'did you mean `evalPeriodSeconds`?',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0].expectedStartCutoffInSeconds',
      'spec.runPolicy.logMonitoringConfiguration[0].expectedStartCutoffInSeconds',
      'did you mean `expectedStartCutOffInSeconds`?',
    ],
    ['spec.replicaSpecs[0].replica', 'spec.replicaSpecs[0].replica', 'did you mean `replicas`?'],
    ['spec.trainkeeper.preset', 'spec.trainkeeper.preset', 'did you mean `presets`?'],
    ['statuz', 'statuz', 'did you mean `status`?'],
    ['metadata.generatename', 'metadata.generatename', 'did you mean `generateName`?'],
    ['spec.elasticPolicy.minReplica', 'spec.elasticPolicy.minReplica', 'did you mean `minReplicas`?'],
    [
      'spec.elasticPolicy.replicaDiscreteValue',
      'spec.elasticPolicy.replicaDiscreteValue',
      'did you mean `replicaDiscreteValues`?',
    ],
  ])('rejects the unknown field %s with a hint', (field, path, message) => {
    const doc = withField(field, 1, withField('spec.runPolicy.restartPolicy.evalPeriodSeconds', 60));
    expect(errorsOf(parseJobManifest(doc))).toContainEqual({
      path,
      message: expect.stringContaining(message),
    });
  });

  it.each([
    [
      'a: [1\nb: 2',
      'not valid YAML/JSON: Flow sequence in block collection must be sufficiently indented and end with a ] at line 2',
    ],
    ['{"apiVersion": "x"', 'not valid YAML/JSON'],
    ['a: 1\na: 2', 'Map keys must be unique'],
    ['a: 1\n---\nb: 2\n', 'holds 2 YAML documents; submit one job per manifest'],
    ['', 'the manifest is empty'],
    ['- 1\n- 2', 'the manifest must be a mapping (a HyperPodPyTorchJob object), not a list'],
    ['just text', 'the manifest must be a mapping (a HyperPodPyTorchJob object), not the string "just text"'],
  ])('rejects the text %j as a whole document', (text, message) => {
    const errors = errorsOf(parseJobManifest(text));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toEqual({ path: '', message: expect.stringContaining(message) });
  });

  it('never throws, whatever value it is given', () => {
    for (const value of [
      null,
      0,
      true,
      [],
      { spec: null },
      { spec: { replicaSpecs: [null, 3] } },
      { spec: { runPolicy: { logMonitoringConfiguration: 'x' } } },
    ]) {
      expect(parseJobManifest(value).ok).toBe(false);
    }
  });
});

describe('parseJobManifest warnings', () => {
  it.each([
    [
      'spec.replicaSpecs[0].maxReplicas',
      4,
      'spec.replicaSpecs[0].maxReplicas',
      'accepted but not acted on: it bounds elastic scaling only, and the job has no spec.elasticPolicy',
    ],
    ['spec.runPolicy.workloadMode', 'Deployment', 'spec.runPolicy.workloadMode', 'accepted but not acted on'],
    [
      'spec.runPolicy.restartPolicy',
      { evalPeriodSeconds: 60, scaleUpSnoozeTimeInSeconds: 30 },
      'spec.runPolicy.restartPolicy.scaleUpSnoozeTimeInSeconds',
      'accepted but not acted on: it delays elastic scale-up only, and the job has no spec.elasticPolicy',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0]',
      { name: 'Noop', logPattern: '.*x.*' },
      'spec.runPolicy.logMonitoringConfiguration[0]',
      'never reports a fault',
    ],
    [
      'spec.runPolicy.logMonitoringConfiguration[0]',
      { name: 'Flat', logPattern: '.*x.*', operator: 'gt', metricThreshold: 1 },
      'spec.runPolicy.logMonitoringConfiguration[0].metricThreshold',
      'no capture group',
    ],
  ])('warns about %s = %j and still accepts the job', (field, value, path, message) => {
    const result = parseJobManifest(withField(field, value));
    expect(result.ok).toBe(true);
    expect(result.warnings).toEqual([{ path, message: expect.stringContaining(message) }]);
  });

  it.each([
    ['spares without Kueue', 'spec.replicaSpecs[0].spares', 2],
    [
      'a zero scale-up snooze',
      'spec.runPolicy.restartPolicy',
      { evalPeriodSeconds: 60, scaleUpSnoozeTimeInSeconds: 0 },
    ],
    ['a rule that only serves as the progress rule', 'spec.trainkeeper.progressRule', 'Hang'],
  ])('does not warn about %s', (_what, field, value) => {
    const result = parseJobManifest(withField(field, value));
    expect(result).toMatchObject({ ok: true, warnings: [] });
  });

  it('returns warnings alongside errors', () => {
    const doc = withField('spec.replicaSpecs[0].maxReplicas', 4);
    (doc as Record<string, unknown>).kind = 'Job';
    const result = parseJobManifest(doc);
    expect(result.ok).toBe(false);
    expect(result.warnings.map((w) => w.path)).toEqual(['spec.replicaSpecs[0].maxReplicas']);
  });
});

describe('parseJobManifest accepts what the operator accepts', () => {
  const ruleAt = (rule: Record<string, unknown>) =>
    withField('spec.runPolicy.logMonitoringConfiguration', [rule]);

  it.each([['GPU Error'], ['loss spike (rank 0)'], ['Überlauf'], ['日本語'], ['r'.repeat(128)]])(
    'accepts the rule name %j as written (the operator puts no pattern on names)',
    (name) => {
      const spec = specOf(parseJobManifest(ruleAt({ name, logPattern: '.*x.*', faultOnMatch: true })));
      expect(spec.runPolicy.logMonitoringConfiguration[0]?.name).toBe(name);
    },
  );

  it('still refuses two rules of one job with the same name', () => {
    const doc = withField('spec.runPolicy.logMonitoringConfiguration', [
      { name: 'GPU Error', logPattern: 'a', faultOnMatch: true },
      { name: 'GPU Error', logPattern: 'b', faultOnMatch: true },
    ]);
    expect(errorsOf(parseJobManifest(doc))).toEqual([
      {
        path: 'spec.runPolicy.logMonitoringConfiguration[1].name',
        message: expect.stringContaining('duplicates rule `GPU Error`'),
      },
    ]);
  });

  it.each([
    ['operator', { operator: 'gt' }, 'operator', 'is ignored without `metricThreshold`'],
    ['metricThreshold', { metricThreshold: 5 }, 'metricThreshold', 'is ignored without `operator`'],
  ])(
    'accepts %s alone and warns that metric evaluation is skipped',
    (_field, extra, warnedField, message) => {
      const result = parseJobManifest(
        ruleAt({
          name: 'Loss',
          logPattern: '.*loss (\\d+)',
          expectedRecurringFrequencyInSeconds: 60,
          ...extra,
        }),
      );
      expect(result.ok).toBe(true);
      expect(result.warnings).toEqual([
        {
          path: `spec.runPolicy.logMonitoringConfiguration[0].${warnedField}`,
          message: expect.stringContaining(message),
        },
      ]);
    },
  );

  it('says a rule with only an operator never reports a fault', () => {
    const result = parseJobManifest(ruleAt({ name: 'Loss', logPattern: '.*loss (\\d+)', operator: 'gt' }));
    expect(result.ok).toBe(true);
    expect(result.warnings.map((w) => w.message)).toContainEqual(expect.stringContaining('never reports'));
  });

  it.each([
    ['a lookbehind', '.*(?<!cuda )error (\\d+)'],
    ['a lookahead', '.*step (\\d+)(?= done)'],
    ['a backreference', '(\\w+) failed, \\1 restarting'],
    ['a named backreference', '(?P<rank>\\d+): (?P=rank) down'],
    ['a tempered token', '(?:(?!skip).)*loss (\\d+)'],
  ])('accepts %s (Python re runs it; the pattern is backtrack-safe)', (_what, logPattern) => {
    expect(parseJobManifest(ruleAt({ name: 'R', logPattern, faultOnMatch: true })).ok).toBe(true);
  });

  it.each([
    ['nested quantifiers', '(?=x)(a+)+$', 'nested quantifiers'],
    ['an overlapping repeated alternation', '(?<!y)(a|ab)*c', 'repeated alternation'],
    ['a repeated backreference', '(a+)\\1*', 'repeated backreference'],
    ['three unbounded quantifiers in sequence', '.*a.*b.*c(?=d)', 'n^3'],
    ['a variable-width lookbehind', '(?<=a+)b', 'look-behind requires fixed-width'],
    ['a backreference to an optional group', '(a)?b\\1', 'may not take part'],
  ])('refuses %s with the reason', (_what, logPattern, message) => {
    expect(errorsOf(parseJobManifest(ruleAt({ name: 'R', logPattern, faultOnMatch: true })))).toEqual([
      {
        path: 'spec.runPolicy.logMonitoringConfiguration[0].logPattern',
        message: expect.stringContaining(message),
      },
    ]);
  });

  it('accepts a job name of 63 characters, the HyperPod CLI limit', () => {
    expect(MAX_JOB_NAME_LENGTH).toBe(63);
    const name = 'j'.repeat(63);
    const doc = withField('spec.replicaSpecs[0].name', 'w'.repeat(63), withField('metadata.name', name));
    expect(specOf(parseJobManifest(doc)).name).toBe(name);
  });

  it('generates the name from metadata.generateName with the suffix it is given, as the API server does', () => {
    const doc = withField('metadata', { generateName: 'llama-' });
    const spec = specOf(parseJobManifest(doc, { nameSuffix: () => 'x7k2q' }));
    expect(spec.name).toBe('llama-x7k2q');
  });

  it('cuts a long generateName prefix to 58 characters so the name stays within 63', () => {
    const doc = withField('metadata', { generateName: 'p'.repeat(70) });
    expect(specOf(parseJobManifest(doc, { nameSuffix: () => 'abcde' })).name).toBe(`${'p'.repeat(58)}abcde`);
  });

  it('derives a repeatable suffix when no random source is given (validation runs)', () => {
    const doc = () => withField('metadata', { generateName: 'llama-' });
    const a = specOf(parseJobManifest(doc())).name;
    expect(a).toMatch(/^llama-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(specOf(parseJobManifest(doc())).name).toBe(a);
  });

  it('keeps metadata.name when generateName is given too (the name wins) and warns', () => {
    const doc = withField('metadata', { name: 'given', generateName: 'gen-' });
    const result = parseJobManifest(doc, { nameSuffix: () => 'zzzzz' });
    expect(specOf(result).name).toBe('given');
    expect(result.warnings).toEqual([
      { path: 'metadata.generateName', message: expect.stringContaining('name wins') },
    ]);
  });

  it.each([
    [{}, 'metadata.name', 'is required (or give metadata.generateName)'],
    [{ generateName: 'Bad_' }, 'metadata.generateName', 'start of a DNS-1123 label'],
    [{ generateName: '' }, 'metadata.generateName', 'must not be empty'],
  ])('refuses metadata %j', (metadata, path, message) => {
    expect(errorsOf(parseJobManifest(withField('metadata', metadata)))).toContainEqual({
      path,
      message: expect.stringContaining(message),
    });
  });

  it('accepts a kubectl get -o yaml export, ignoring each server field with a warning', () => {
    const doc = withField('metadata', {
      name: 'job',
      namespace: 'default',
      uid: '0b1c2d3e-0000-4000-8000-000000000000',
      resourceVersion: '12345',
      generation: 3,
      creationTimestamp: '2026-01-02T03:04:05Z',
      managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update' }],
      selfLink: '/apis/sagemaker.amazonaws.com/v1/namespaces/default/hyperpodpytorchjobs/job',
    });
    (doc as Record<string, unknown>).status = { conditions: [{ type: 'Running', status: 'True' }] };
    const result = parseJobManifest(doc);
    const spec = specOf(result);
    expect(spec.name).toBe('job');
    expect(JSON.stringify(spec)).not.toContain('12345');
    expect(result.warnings.map((w) => w.path)).toEqual([
      'metadata.uid',
      'metadata.resourceVersion',
      'metadata.generation',
      'metadata.creationTimestamp',
      'metadata.managedFields',
      'metadata.selfLink',
      'status',
    ]);
  });

  it('draws suffixes from the Kubernetes alphabet and spreads them over seeds', () => {
    const suffixes = Array.from({ length: 200 }, (_, i) => nameSuffixFrom(`seed-${i}`));
    for (const s of suffixes) expect([...s].every((c) => GENERATED_NAME_ALPHABET.includes(c))).toBe(true);
    expect(new Set(suffixes).size).toBeGreaterThan(195);
  });
});

describe('parseJobManifest validates spec.elasticPolicy', () => {
  const elastic = (policy: unknown) => parseJobManifest(withField('spec.elasticPolicy', policy));
  const elasticPolicyDoc = () => withField('spec.elasticPolicy', { minReplicas: 2, maxReplicas: 4 });

  it('keeps a valid policy without a warning: elastic scaling is acted on', () => {
    const policy = {
      minReplicas: 2,
      maxReplicas: 8,
      replicaDiscreteValues: [2, 4, 8],
      gracefulShutdownTimeoutInSeconds: 600,
      scalingTimeoutInSeconds: 60,
      faultyScaleDownTimeoutInSeconds: 120,
    };
    const result = elastic(policy);
    expect(specOf(result).elasticPolicy).toEqual(policy);
    expect(result.warnings).toEqual([]);
  });

  it('does not warn about replicaSpecs[].maxReplicas or the scale-up snooze when the job has an elasticPolicy, which reads both', () => {
    const doc = withField(
      'spec.runPolicy.restartPolicy',
      { evalPeriodSeconds: 60, scaleUpSnoozeTimeInSeconds: 30 },
      withField('spec.replicaSpecs[0].maxReplicas', 4, elasticPolicyDoc()),
    );
    const result = parseJobManifest(doc);
    expect(result).toMatchObject({ ok: true, warnings: [] });
    expect(specOf(result).replicaSpecs[0]!.maxReplicas).toBe(4);
    expect(specOf(result).runPolicy.restartPolicy?.scaleUpSnoozeTimeInSeconds).toBe(30);
  });

  it.each([
    [{ minReplicas: 0 }, 'spec.elasticPolicy.minReplicas', 'must be at least 1'],
    [{ maxReplicas: 'many' }, 'spec.elasticPolicy.maxReplicas', 'must be an integer'],
    [
      { minReplicas: 4, maxReplicas: 2 },
      'spec.elasticPolicy.maxReplicas',
      'must be at least minReplicas (4)',
    ],
    [{ replicaIncrementStep: 0 }, 'spec.elasticPolicy.replicaIncrementStep', 'must be at least 1'],
    [
      { replicaIncrementStep: 2, replicaDiscreteValues: [2, 4] },
      'spec.elasticPolicy.replicaDiscreteValues',
      'cannot be given with `replicaIncrementStep`',
    ],
    [{ replicaDiscreteValues: [] }, 'spec.elasticPolicy.replicaDiscreteValues', 'at least 1 item'],
    [{ replicaDiscreteValues: [4, 2] }, 'spec.elasticPolicy.replicaDiscreteValues[1]', 'ascending'],
    [{ replicaDiscreteValues: [2, 2] }, 'spec.elasticPolicy.replicaDiscreteValues[1]', 'ascending'],
    [
      { minReplicas: 2, maxReplicas: 8, replicaDiscreteValues: [1, 4] },
      'spec.elasticPolicy.replicaDiscreteValues[0]',
      'within minReplicas..maxReplicas (2..8)',
    ],
    [
      { maxReplicas: 8, replicaDiscreteValues: [4, 16] },
      'spec.elasticPolicy.replicaDiscreteValues[1]',
      'within minReplicas..maxReplicas',
    ],
    [
      { gracefulShutdownTimeoutInSeconds: -1 },
      'spec.elasticPolicy.gracefulShutdownTimeoutInSeconds',
      'at least 0',
    ],
    [{ scalingTimeoutInSeconds: 1.5 }, 'spec.elasticPolicy.scalingTimeoutInSeconds', 'must be an integer'],
    [
      { faultyScaleDownTimeoutInSeconds: -5 },
      'spec.elasticPolicy.faultyScaleDownTimeoutInSeconds',
      'at least 0',
    ],
    [{ minReplica: 1 }, 'spec.elasticPolicy.minReplica', 'did you mean `minReplicas`?'],
    ['yes', 'spec.elasticPolicy', 'must be a mapping'],
  ])('refuses %j at %s', (policy, path, message) => {
    expect(errorsOf(elastic(policy))).toContainEqual({ path, message: expect.stringContaining(message) });
  });
});

describe('closestKey and formatPath', () => {
  const keys = ['expectedStartCutOffInSeconds', 'expectedRecurringFrequencyInSeconds', 'logPattern', 'name'];
  it.each([
    ['expectedstartcutoffinseconds', 'expectedStartCutOffInSeconds'],
    ['expectedStartCutoffSeconds', 'expectedStartCutOffInSeconds'],
    ['logPatern', 'logPattern'],
    ['nam', 'name'],
    ['image', undefined],
    ['completelyUnrelatedField', undefined],
  ])('suggests for %s the key %s', (key, expected) => {
    expect(closestKey(key, keys)).toBe(expected);
  });

  it.each([
    [['spec', 'replicaSpecs', 0, 'name'], 'spec.replicaSpecs[0].name'],
    [['metadata', 'labels', 'kueue.x-k8s.io/queue-name'], 'metadata.labels["kueue.x-k8s.io/queue-name"]'],
    [[], ''],
  ])('formats %j as %s', (path, expected) => {
    expect(formatPath(path)).toBe(expected);
  });
});
