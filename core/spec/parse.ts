/**
 * The one way a `HyperPodPyTorchJob` manifest becomes a typed `JobSpec` (hyperpod-spec §2–3).
 *
 * Shape: text → YAML/JSON document → strict Zod schemas (structure, types, defaults, per-field rules) →
 * cross-field checks on the raw document (uniqueness, pairs of fields, references between fields) →
 * warnings for fields that are accepted but not acted on → an explicitly built `JobSpec`.
 *
 * Invariants:
 * - Every problem is reported at once: the cross-field checks read the raw document defensively, so they
 *   run even when the schema already found errors elsewhere.
 * - Each problem is `{path, message}` with a path like `spec.runPolicy.logMonitoringConfiguration[1].operator`
 *   and a plain-English message; an unknown field is an error with a "did you mean" hint.
 * - On success the output has every default applied and no field the manifest did not give (the pod
 *   template, kept as given, is the one exception: it passes through untouched apart from validation).
 * - Pure: no I/O, no clock.
 */

import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { logRuleWarnings, parseLogRules } from './log-rules.ts';
import { captureGroups, patternError } from './pattern.ts';
import { PRESET_NAMES } from './preset-names.ts';
import {
  asArray,
  asInt,
  asObject,
  asString,
  checkUnique,
  dedupe,
  defaultInt,
  describeValue,
  inDocumentOrder,
  int,
  intString,
  messageFor,
  numberString,
  optionalInt,
  type Raw,
  strict,
  toFieldIssues,
} from './schema.ts';
import type {
  ElasticPolicy,
  FieldIssue,
  JobSpec,
  LogRule,
  ParseResult,
  PodTemplateSpec,
  ReplicaSpec,
  RestartBackoff,
  RestartPolicy,
  RunPolicy,
  TrainKeeperOptions,
} from './types.ts';
import { yamlTooDeep } from './yaml-depth.ts';

/** The only `apiVersion` accepted: HyperPod's training operator CRD group/version. */
export const JOB_API_VERSION = 'sagemaker.amazonaws.com/v1';
/** The only `kind` accepted. */
export const JOB_KIND = 'HyperPodPyTorchJob';

/**
 * Longest job name accepted (`metadata.name`): 63, a DNS-1123 label, as the HyperPod CLI allows.
 *
 * Pods are named `<job>-<replica>-<index>-g<podGeneration>` (core/decide/naming.ts `podName`), and the pod
 * name becomes the pod's hostname (a DNS label, ≤ 63). When the full form would be longer, `podName`
 * shortens the `<job>-<replica>` part deterministically and tags it with a hash, so every pod name stays
 * a valid, distinct hostname whatever the job and replica names (each ≤ 63).
 */
export const MAX_JOB_NAME_LENGTH = 63;

/**
 * How many random characters the API server appends to `metadata.generateName`, and the longest prefix
 * it keeps (63 − 5): a longer prefix is cut, as Kubernetes' `SimpleNameGenerator` does.
 */
export const GENERATED_NAME_SUFFIX_LENGTH = 5;
const MAX_GENERATE_NAME_PREFIX = MAX_JOB_NAME_LENGTH - GENERATED_NAME_SUFFIX_LENGTH;

/** The alphabet of generated name suffixes: Kubernetes' (`k8s.io/apimachinery/pkg/util/rand`), no vowels. */
export const GENERATED_NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/**
 * Five characters of `GENERATED_NAME_ALPHABET` derived from `seed` (FNV-1a): a random seed (the API's id
 * port) gives a random suffix, a fixed seed a fixed one. Pure.
 */
export function nameSuffixFrom(seed: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  let out = '';
  for (let i = 0; i < GENERATED_NAME_SUFFIX_LENGTH; i++) {
    out += GENERATED_NAME_ALPHABET[h % GENERATED_NAME_ALPHABET.length];
    h = Math.floor(h / GENERATED_NAME_ALPHABET.length);
    if (h === 0) h = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  }
  return out;
}

/** Options of `parseJobManifest`. */
export interface ParseOptions {
  /**
   * The random suffix for a manifest that gives `metadata.generateName` and no `metadata.name`: five
   * lowercase letters or digits (see `nameSuffixFrom`). Callers that create jobs pass a random source
   * (the API: its id port); without it the suffix is derived from the prefix and namespace, so a
   * validation run is repeatable.
   */
  nameSuffix?: () => string;
}

/**
 * Fields of a `kubectl get -o yaml` export that the API server sets: accepted and ignored (with a
 * warning each), so an exported job can be submitted again.
 */
const SERVER_METADATA_FIELDS = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
  'ownerReferences',
  'finalizers',
] as const;

/** Where a manifest keeps its log rules. */
const RULES_PATH = 'spec.runPolicy.logMonitoringConfiguration';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL_MESSAGE =
  'must be a DNS-1123 label: lowercase letters, digits and `-`, starting and ending with a letter or digit';

/** The manifest's Zod issues as field issues; a document that is not a mapping gets one plain sentence. */
function manifestIssues(issues: readonly z.core.$ZodIssue[], raw: unknown): FieldIssue[] {
  return issues.flatMap((issue) =>
    issue.path.length === 0 && issue.code === 'invalid_type'
      ? [
          {
            path: '',
            message: `the manifest must be a mapping (a ${JOB_KIND} object), not ${describeValue(raw)}`,
          },
        ]
      : toFieldIssues([issue]),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Schemas

const dnsLabel = (max: number) => z.string().min(1).max(max).regex(DNS_LABEL, { error: DNS_LABEL_MESSAGE });
const stringMap = z.record(z.string(), z.string());

const containerSchema = z.looseObject({
  name: dnsLabel(63),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
});

const templateSchema = z.looseObject({
  metadata: z.looseObject({ labels: stringMap.optional(), annotations: stringMap.optional() }).optional(),
  spec: z.looseObject({ containers: z.array(containerSchema).min(1) }),
});

/** A `generateName` prefix: a DNS label that may end with `-` (Kubernetes validates it as a prefix). */
const generateNameSchema = z
  .string()
  .min(1)
  .regex(/^[a-z0-9][-a-z0-9]*$/, {
    error:
      'must be the start of a DNS-1123 label: lowercase letters, digits and `-`, starting with a letter or digit',
  });

const replicaSpecSchema = strict({
  name: dnsLabel(63),
  replicas: defaultInt(0, 0),
  spares: defaultInt(0, 0),
  maxReplicas: optionalInt(1),
  template: templateSchema,
});

const restartPolicySchema = strict({
  numRestartBeforeFullJobRestart: optionalInt(0),
  evalPeriodSeconds: int(1),
  maxFullJobRestarts: optionalInt(0),
  maxNumRepeatOffendersToAvoid: optionalInt(0),
  scaleUpSnoozeTimeInSeconds: defaultInt(0, 0),
});

const runPolicySchema = strict({
  jobMaxRetryCount: optionalInt(0),
  restartPolicy: restartPolicySchema.optional(),
  cleanPodPolicy: z.enum(['All', 'OnlyComplete', 'None']).default('All'),
  ttlSecondsAfterFinished: defaultInt(-1, 0),
  activeDeadlineSeconds: optionalInt(1),
  startupDeadlineSeconds: optionalInt(1),
  faultDeadlineSeconds: optionalInt(1),
  suspend: z.boolean().default(false),
  workloadMode: z.string().min(1).optional(),
  /** Validated by `parseLogRules` (core/spec/log-rules.ts), the validator of every rule list. */
  logMonitoringConfiguration: z.unknown().optional(),
});

const restartBackoffSchema = strict({
  freeRestarts: defaultInt(0, 2),
  initialSeconds: defaultInt(1, 10),
  maxSeconds: defaultInt(1, 300),
  multiplier: z.preprocess(numberString, z.number().min(1).default(2)),
});

const trainkeeperSchema = strict({
  presets: z.array(z.enum(PRESET_NAMES)).default([...PRESET_NAMES]),
  restartBackoff: restartBackoffSchema.optional(),
  maxRestartsWithoutProgress: optionalInt(1),
  progressRule: z.string().min(1).optional(),
  inProcessRestart: z.boolean().optional(),
});

const nprocError = (issue: { input?: unknown }): string =>
  `must be \`auto\`, \`gpu\`, \`cpu\` or a positive integer, not ${describeValue(issue.input)}`;
const nprocSchema = z.preprocess(
  intString,
  z.union([z.literal(['auto', 'gpu', 'cpu']), z.number().int().min(1, { error: nprocError })], {
    error: nprocError,
  }),
);

/**
 * `spec.elasticPolicy` (hyperpod-spec §2.5, operator ≥ 1.2): every field checked; core/decide/elastic.ts
 * acts on it (docs/elastic.md). Cross-field rules are in `elasticPolicyErrors`.
 */
const elasticPolicySchema = strict({
  minReplicas: optionalInt(1),
  maxReplicas: optionalInt(1),
  replicaIncrementStep: optionalInt(1),
  replicaDiscreteValues: z.array(int(1)).min(1).optional(),
  gracefulShutdownTimeoutInSeconds: optionalInt(0),
  scalingTimeoutInSeconds: optionalInt(0),
  faultyScaleDownTimeoutInSeconds: optionalInt(0),
});

/** Server-set metadata fields: any value (they are ignored). */
const serverMetadata = Object.fromEntries(
  SERVER_METADATA_FIELDS.map((k) => [k, z.unknown().optional()]),
) as Record<(typeof SERVER_METADATA_FIELDS)[number], z.ZodOptional<z.ZodUnknown>>;

const manifestSchema = strict({
  apiVersion: z.literal(JOB_API_VERSION),
  kind: z.literal(JOB_KIND),
  metadata: strict({
    /** Filled from `generateName` before the schema runs when only that is given (`withGeneratedName`). */
    name: dnsLabel(MAX_JOB_NAME_LENGTH),
    generateName: generateNameSchema.optional(),
    namespace: dnsLabel(63).default('default'),
    labels: stringMap.default({}),
    annotations: stringMap.default({}),
    ...serverMetadata,
  }),
  spec: strict({
    nprocPerNode: nprocSchema.default('auto'),
    replicaSpecs: z.array(replicaSpecSchema).min(1),
    runPolicy: runPolicySchema.default(() => runPolicySchema.parse({})),
    elasticPolicy: elasticPolicySchema.optional(),
    trainkeeper: trainkeeperSchema.default(() => trainkeeperSchema.parse({})),
  }),
  /** A `kubectl get -o yaml` export's status: ignored (with a warning). */
  status: z.unknown().optional(),
});

type Manifest = z.output<typeof manifestSchema>;

// ---------------------------------------------------------------------------------------------------------
// Cross-field checks and warnings on the raw document (defensive: any shape may arrive here)

function crossFieldErrors(doc: Raw): FieldIssue[] {
  const errors: FieldIssue[] = [];
  const spec = asObject(doc.spec) ?? {};
  const replicaSpecs = asArray(spec.replicaSpecs);

  errors.push(...checkUnique(replicaSpecs, 'spec.replicaSpecs', 'replica set'));
  const counts = replicaSpecs.map((r) => asInt(asObject(r)?.replicas ?? 0));
  if (replicaSpecs.length > 0 && counts.every((c) => c !== undefined) && counts.every((c) => c === 0)) {
    errors.push({
      path: 'spec.replicaSpecs',
      message: 'must ask for at least one replica overall (every replica set has replicas: 0)',
    });
  }
  replicaSpecs.forEach((r, i) => {
    const replica = asObject(r);
    const path = `spec.replicaSpecs[${i}]`;
    const replicas = asInt(replica?.replicas);
    const maxReplicas = asInt(replica?.maxReplicas);
    if (replicas !== undefined && maxReplicas !== undefined && maxReplicas < replicas) {
      errors.push({ path: `${path}.maxReplicas`, message: `must be at least replicas (${replicas})` });
    }
    const podSpec = asObject(asObject(replica?.template)?.spec);
    errors.push(
      ...checkUnique(asArray(podSpec?.containers), `${path}.template.spec.containers`, 'container'),
    );
  });

  errors.push(...elasticPolicyErrors(asObject(spec.elasticPolicy)));

  const rules = asArray(asObject(spec.runPolicy)?.logMonitoringConfiguration);

  const tk = asObject(spec.trainkeeper) ?? {};
  const presets = asArray(tk.presets);
  const seenPresets = new Set<unknown>();
  presets.forEach((p, i) => {
    if (seenPresets.has(p))
      errors.push({ path: `spec.trainkeeper.presets[${i}]`, message: `lists preset \`${String(p)}\` twice` });
    seenPresets.add(p);
  });
  const backoff = asObject(tk.restartBackoff);
  if (backoff) {
    const initial = asInt(backoff.initialSeconds ?? 10);
    const max = asInt(backoff.maxSeconds ?? 300);
    if (initial !== undefined && max !== undefined && max < initial) {
      errors.push({
        path: 'spec.trainkeeper.restartBackoff.maxSeconds',
        message: `must be at least initialSeconds (${initial})`,
      });
    }
  }
  const progressRule = asString(tk.progressRule);
  if (progressRule !== undefined) {
    const ruleNames = [...new Set(rules.map((r) => asString(asObject(r)?.name)))].filter(
      (n): n is string => n !== undefined,
    );
    const target = rules.map(asObject).find((r) => r?.name === progressRule);
    if (!target) {
      errors.push({
        path: 'spec.trainkeeper.progressRule',
        message: `names no rule of this job (${ruleNames.length > 0 ? `rules: ${ruleNames.map((n) => `\`${n}\``).join(', ')}` : 'it has no logMonitoringConfiguration rules'})`,
      });
    } else {
      const pattern = asString(target.logPattern);
      if (pattern !== undefined && patternError(pattern) === undefined && captureGroups(pattern) < 1) {
        errors.push({
          path: 'spec.trainkeeper.progressRule',
          message: `names rule \`${progressRule}\`, whose logPattern has no capture group to read the training step from`,
        });
      }
    }
  }
  return errors;
}

/**
 * `spec.elasticPolicy` across its fields: min ≤ max, `replicaIncrementStep` or `replicaDiscreteValues`
 * (not both), discrete values strictly ascending and within [min, max].
 */
function elasticPolicyErrors(policy: Raw | undefined): FieldIssue[] {
  if (!policy) return [];
  const path = 'spec.elasticPolicy';
  const errors: FieldIssue[] = [];
  const min = asInt(policy.minReplicas);
  const max = asInt(policy.maxReplicas);
  if (min !== undefined && max !== undefined && max < min) {
    errors.push({ path: `${path}.maxReplicas`, message: `must be at least minReplicas (${min})` });
  }
  if (policy.replicaIncrementStep !== undefined && policy.replicaDiscreteValues !== undefined) {
    errors.push({
      path: `${path}.replicaDiscreteValues`,
      message: 'cannot be given with `replicaIncrementStep`: sizes come from one or the other',
    });
  }
  const values = asArray(policy.replicaDiscreteValues).map(asInt);
  values.forEach((v, i) => {
    if (v === undefined) return;
    const at = `${path}.replicaDiscreteValues[${i}]`;
    const prev = values[i - 1];
    if (i > 0 && prev !== undefined && v <= prev) {
      errors.push({
        path: at,
        message: `must be greater than the value before it (${prev}): list sizes once each, in ascending order`,
      });
    }
    if ((min !== undefined && v < min) || (max !== undefined && v > max)) {
      errors.push({
        path: at,
        message: `must lie within minReplicas..maxReplicas (${min ?? 1}..${max ?? '∞'})`,
      });
    }
  });
  return errors;
}

const NOT_ACTED_ON = 'accepted but not acted on';

/** Whether some container of some replica spec names `--inprocess-restart` in its command or args. */
function passesInProcessFlag(replicaSpecs: unknown): boolean {
  return asArray(replicaSpecs).some((r) =>
    asArray(asObject(asObject(asObject(r)?.template)?.spec)?.containers).some((c) => {
      const container = asObject(c);
      return [...asArray(container?.command), ...asArray(container?.args)].some(
        (word) => typeof word === 'string' && /(^|\s)--inprocess-restart(\s|=|$)/.test(word),
      );
    }),
  );
}

function warningsFor(doc: Raw): FieldIssue[] {
  const warnings: FieldIssue[] = [];
  const metadata = asObject(doc.metadata) ?? {};
  for (const key of SERVER_METADATA_FIELDS) {
    if (metadata[key] !== undefined) {
      warnings.push({
        path: `metadata.${key}`,
        message:
          key === 'ownerReferences' || key === 'finalizers'
            ? `${NOT_ACTED_ON}: ignored (TrainKeeper jobs are not Kubernetes objects)`
            : 'is set by the API server: ignored (an exported object is submitted as a new job)',
      });
    }
  }
  if (metadata.generateName !== undefined && metadata.name !== undefined) {
    warnings.push({
      path: 'metadata.generateName',
      message: 'ignored: metadata.name is given, and a given name wins (as in Kubernetes)',
    });
  }
  if (doc.status !== undefined) {
    warnings.push({
      path: 'status',
      message: 'is set by the control plane: ignored (an exported object is submitted as a new job)',
    });
  }
  const spec = asObject(doc.spec) ?? {};
  // core/decide/elastic.ts reads a replica spec's maxReplicas and the scale-up snooze only for a job with
  // spec.elasticPolicy; without one they change nothing.
  const isElastic = spec.elasticPolicy !== undefined;
  asArray(spec.replicaSpecs).forEach((r, i) => {
    if (!isElastic && asObject(r)?.maxReplicas !== undefined) {
      warnings.push({
        path: `spec.replicaSpecs[${i}].maxReplicas`,
        message: `${NOT_ACTED_ON}: it bounds elastic scaling only, and the job has no spec.elasticPolicy`,
      });
    }
  });
  if (asObject(spec.trainkeeper)?.inProcessRestart === true && !passesInProcessFlag(spec.replicaSpecs)) {
    warnings.push({
      path: 'spec.trainkeeper.inProcessRestart',
      message:
        'no container command or args passes --inprocess-restart to trainkeeper-agent (hyperpodrun): unless a script does, the agents restart the workers at process level instead (a correct recovery, only slower)',
    });
  }
  const runPolicy = asObject(spec.runPolicy) ?? {};
  const snooze = asInt(asObject(runPolicy.restartPolicy)?.scaleUpSnoozeTimeInSeconds);
  if (!isElastic && snooze !== undefined && snooze > 0) {
    warnings.push({
      path: 'spec.runPolicy.restartPolicy.scaleUpSnoozeTimeInSeconds',
      message: `${NOT_ACTED_ON}: it delays elastic scale-up only, and the job has no spec.elasticPolicy`,
    });
  }
  if (runPolicy.workloadMode !== undefined) {
    warnings.push({
      path: 'spec.runPolicy.workloadMode',
      message: `${NOT_ACTED_ON}: it selects an elastic-training deployment mode`,
    });
  }
  const progressRule = asObject(spec.trainkeeper)?.progressRule;
  asArray(runPolicy.logMonitoringConfiguration).forEach((r, i) => {
    const rule = asObject(r);
    if (!rule) return;
    const path = `${RULES_PATH}[${i}]`;
    const acts =
      rule.expectedStartCutOffInSeconds !== undefined ||
      rule.expectedRecurringFrequencyInSeconds !== undefined ||
      (rule.metricThreshold !== undefined && rule.operator !== undefined) ||
      rule.faultOnMatch === true;
    if (!acts && rule.name !== progressRule) {
      warnings.push({
        path,
        message:
          'never reports a fault: it sets none of expectedStartCutOffInSeconds, expectedRecurringFrequencyInSeconds, metricThreshold/operator, faultOnMatch',
      });
    }
    const pattern = asString(rule.logPattern);
    if (
      rule.metricThreshold !== undefined &&
      rule.operator !== undefined &&
      pattern !== undefined &&
      patternError(pattern) === undefined
    ) {
      if (captureGroups(pattern) < 1) {
        warnings.push({
          path: `${path}.metricThreshold`,
          message: 'is never compared: logPattern has no capture group (group 1 holds the metric)',
        });
      }
    }
  });
  warnings.push(...logRuleWarnings(runPolicy.logMonitoringConfiguration, RULES_PATH));
  return warnings;
}

// ---------------------------------------------------------------------------------------------------------
// Output

/**
 * Drops keys whose value is `undefined` so the output carries only what was given or defaulted. Callers
 * write `defined({...} satisfies X)`: the literal is checked against `X` (excess properties included)
 * before the absent optionals are dropped.
 */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function toJobSpec(m: Manifest, rules: LogRule[]): JobSpec {
  const { runPolicy: rp, trainkeeper: tk } = m.spec;
  const rs = rp.restartPolicy;
  const restartPolicy: RestartPolicy | undefined = rs
    ? defined({
        numRestartBeforeFullJobRestart: rs.numRestartBeforeFullJobRestart,
        evalPeriodSeconds: rs.evalPeriodSeconds,
        maxFullJobRestarts: rs.maxFullJobRestarts,
        maxNumRepeatOffendersToAvoid: rs.maxNumRepeatOffendersToAvoid,
        scaleUpSnoozeTimeInSeconds: rs.scaleUpSnoozeTimeInSeconds,
      } satisfies RestartPolicy)
    : undefined;
  const runPolicy: RunPolicy = defined({
    jobMaxRetryCount: rp.jobMaxRetryCount,
    restartPolicy,
    cleanPodPolicy: rp.cleanPodPolicy,
    ttlSecondsAfterFinished: rp.ttlSecondsAfterFinished,
    activeDeadlineSeconds: rp.activeDeadlineSeconds,
    startupDeadlineSeconds: rp.startupDeadlineSeconds,
    faultDeadlineSeconds: rp.faultDeadlineSeconds,
    suspend: rp.suspend,
    workloadMode: rp.workloadMode,
    logMonitoringConfiguration: rules,
  } satisfies RunPolicy);
  const trainkeeper: TrainKeeperOptions = defined({
    presets: tk.presets,
    restartBackoff: tk.restartBackoff satisfies RestartBackoff | undefined,
    maxRestartsWithoutProgress: tk.maxRestartsWithoutProgress,
    progressRule: tk.progressRule,
    inProcessRestart: tk.inProcessRestart,
  } satisfies TrainKeeperOptions);
  const replicaSpecs = m.spec.replicaSpecs.map(
    (r): ReplicaSpec =>
      defined({
        name: r.name,
        replicas: r.replicas,
        spares: r.spares,
        maxReplicas: r.maxReplicas,
        template: r.template satisfies PodTemplateSpec,
      } satisfies ReplicaSpec),
  );
  return defined({
    apiVersion: m.apiVersion,
    kind: m.kind,
    name: m.metadata.name,
    namespace: m.metadata.namespace,
    labels: m.metadata.labels,
    annotations: m.metadata.annotations,
    nprocPerNode: m.spec.nprocPerNode,
    replicaSpecs,
    runPolicy,
    elasticPolicy: m.spec.elasticPolicy satisfies ElasticPolicy | undefined,
    trainkeeper,
  } satisfies JobSpec);
}

// ---------------------------------------------------------------------------------------------------------
// Entry point

/** YAML (JSON is YAML) text → one plain document, or the syntax errors with their line and column. */
function readDocument(text: string): { ok: true; value: unknown } | { ok: false; errors: FieldIssue[] } {
  // The YAML parser recurses per level and has no depth limit: refuse deep text before it overflows.
  const deep = yamlTooDeep(text);
  if (deep) return { ok: false, errors: [{ path: '', message: deep.message }] };
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(docs)) return { ok: true, value: undefined };
  const errors: FieldIssue[] = [];
  for (const doc of docs) {
    for (const e of doc.errors) {
      errors.push({ path: '', message: `not valid YAML/JSON: ${e.message.split(':\n')[0]}` });
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  const nonEmpty = docs.filter((d) => d.contents !== null);
  if (nonEmpty.length > 1) {
    return {
      ok: false,
      errors: [{ path: '', message: `holds ${nonEmpty.length} YAML documents; submit one job per manifest` }],
    };
  }
  try {
    return { ok: true, value: nonEmpty[0]?.toJS() };
  } catch (err) {
    // Alias problems (an alias before its anchor, alias expansion beyond the limit) surface only here.
    return { ok: false, errors: [{ path: '', message: `not valid YAML: ${(err as Error).message}` }] };
  }
}

/**
 * `raw` with `metadata.name` generated from `metadata.generateName` when only that is given, as the API
 * server does: the prefix (cut to 58 characters) and a five-character suffix. Anything else is returned
 * as it is (a bad prefix is reported by the schema at `metadata.generateName`, and a missing name at
 * `metadata.name`).
 */
function withGeneratedName(raw: unknown, options: ParseOptions): unknown {
  const doc = asObject(raw);
  const metadata = asObject(doc?.metadata);
  if (!doc || !metadata || metadata.name !== undefined) return raw;
  const prefix = asString(metadata.generateName);
  if (prefix === undefined || !generateNameSchema.safeParse(prefix).success) return raw;
  const namespace = asString(metadata.namespace) ?? 'default';
  const suffix = options.nameSuffix?.() ?? nameSuffixFrom(`${namespace}/${prefix}`);
  const name = prefix.slice(0, MAX_GENERATE_NAME_PREFIX) + suffix;
  return { ...doc, metadata: { ...metadata, name } };
}

/**
 * Parse and validate a `HyperPodPyTorchJob` manifest: YAML or JSON text, or an already-parsed value (an
 * API body). Never throws for bad input: every problem comes back in `errors` at once; `warnings` list
 * fields that are accepted but not acted on, in both outcomes. A manifest with `metadata.generateName` and
 * no name gets a generated name (`options.nameSuffix`); server fields of an exported object are ignored
 * with a warning each.
 */
export function parseJobManifest(input: string | unknown, options: ParseOptions = {}): ParseResult {
  let given: unknown = input;
  if (typeof input === 'string') {
    const read = readDocument(input);
    if (!read.ok) return { ok: false, errors: read.errors, warnings: [] };
    given = read.value;
  }
  if (given === undefined || given === null) {
    return { ok: false, errors: [{ path: '', message: 'the manifest is empty' }], warnings: [] };
  }
  const raw = withGeneratedName(given, options);
  const result = manifestSchema.safeParse(raw, { error: messageFor });
  const doc = asObject(raw) ?? {};
  const rules = parseLogRules(
    asObject(asObject(doc.spec)?.runPolicy)?.logMonitoringConfiguration ?? [],
    RULES_PATH,
  );
  const errors = [
    ...(result.success ? [] : manifestIssues(result.error.issues, raw)),
    ...(rules.ok ? [] : rules.errors),
    ...crossFieldErrors(doc),
  ].map((e) =>
    e.path === 'metadata.name' && e.message === 'is required'
      ? { ...e, message: 'is required (or give metadata.generateName)' }
      : e,
  );
  const warnings = warningsFor(asObject(given) ?? {});
  if (!result.success || !rules.ok || errors.length > 0) {
    return {
      ok: false,
      errors: inDocumentOrder(dedupe(errors), raw),
      warnings: inDocumentOrder(warnings, raw),
    };
  }
  return { ok: true, spec: toJobSpec(result.data, rules.rules), warnings };
}
