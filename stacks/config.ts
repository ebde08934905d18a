/**
 * Per-stage deployment configuration, in one typed, zod-validated place. Pure: no SST globals, no I/O, so
 * `sst.config.ts`, the stacks and the tests all read the same thing.
 *
 * Sources, later wins per field:
 * 1. `STAGES[stage]` below (commit an entry per long-lived stage);
 * 2. environment variables (`TRAINKEEPER_DEPLOY_*`, table in docs/deploy.md), for one-off stages and CI.
 *
 * | variable | field |
 * |---|---|
 * | `TRAINKEEPER_DEPLOY_REGION` | `region` (else the entry's, else `AWS_REGION`) |
 * | `TRAINKEEPER_DEPLOY_CLUSTER_KIND` | `cluster.kind` (`hyperpod` or `eks`) |
 * | `TRAINKEEPER_DEPLOY_CLUSTER_NAME` | `cluster.name` (HyperPod or EKS cluster name) |
 * | `TRAINKEEPER_DEPLOY_HYPERPOD_CLUSTER_ARN` | `cluster.hyperPodArn` (HyperPod only; carries the cluster id) |
 * | `TRAINKEEPER_DEPLOY_EKS_CLUSTER_NAME` | `cluster.eksClusterName` (HyperPod only: its EKS orchestrator) |
 * | `TRAINKEEPER_DEPLOY_LOG_GROUP` | `logGroup` |
 * | `TRAINKEEPER_DEPLOY_ALLOWED_NAMESPACES` | `allowedNamespaces` (comma-separated) |
 * | `TRAINKEEPER_DEPLOY_ACCESS` | `access` (JSON list of `{principal, namespaces}` rules) |
 * | `TRAINKEEPER_DEPLOY_POD_SECURITY` | `podSecurity` |
 * | `TRAINKEEPER_DEPLOY_AMP_WORKSPACE_ID` | `amp` = existing workspace (absent: create one) |
 * | `TRAINKEEPER_DEPLOY_ALARM_EMAIL` | `alarmEmail` |
 * | `TRAINKEEPER_DEPLOY_RETAIN` | `retain` (`true`/`false`) |
 * | `TRAINKEEPER_DEPLOY_LOG_FILTER` | `logFilter` (`namespaces`, `labels` or `all`; see stacks/log-filter.ts) |
 * | `TRAINKEEPER_DEPLOY_LOG_FILTER_PATTERN` | `logFilter` = `{pattern}` (a custom CloudWatch filter pattern) |
 * | `TRAINKEEPER_DEPLOY_LOG_DELIVERY` | `logDelivery`: `direct`, `kinesis` or `kinesis:<shards>` (other fields kept from the entry) |
 *
 * Invariants: a parsed `StageConfig` names an existing cluster kind with every field that kind needs; the
 * region of a HyperPod ARN equals `region`; production stages (`production`, `prod`) retain data unless told
 * otherwise and must say who may act on which namespace (`access`; opening everything takes a deliberate
 * rule); every namespace an `access` rule names is one of `allowedNamespaces` (unless those are `*`).
 */
import { z } from 'zod';
import { AccessRules } from '../functions/shell/access.ts';
import { LogFilterPatternError, logFilterPattern, MAX_FILTER_PATTERN_LENGTH } from './log-filter.ts';

/** Stages treated as production: their table is retained on `sst remove` and the app is protected. */
export const PRODUCTION_STAGES: readonly string[] = ['production', 'prod'];

/** True for a production stage (retain the table, protect the stage from `sst remove`). */
export function isProductionStage(stage: string): boolean {
  return PRODUCTION_STAGES.includes(stage);
}

const HYPERPOD_ARN = /^arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):(\d{12}):cluster\/[a-z0-9]+$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const ClusterSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('hyperpod'),
    /** HyperPod cluster name (what the Lambdas resolve through SageMaker DescribeCluster). */
    name: z.string().min(1),
    /** HyperPod cluster ARN (`…:cluster/<id>`): scopes IAM and the HyperPod event pattern. */
    hyperPodArn: z.string().regex(HYPERPOD_ARN, 'expected arn:aws:sagemaker:<region>:<account>:cluster/<id>'),
    /** The EKS cluster HyperPod orchestrates with (access entry, eks:DescribeCluster). */
    eksClusterName: z.string().min(1),
  }),
  z.strictObject({
    kind: z.literal('eks'),
    /** EKS cluster name. */
    name: z.string().min(1),
  }),
]);

/** zod error callback: a missing value names where to set it. */
function missing(variable: string) {
  return (issue: { input?: unknown }) =>
    issue.input === undefined ? `required: set ${variable} or a STAGES entry` : undefined;
}

/** What `logs` receives from the application log group (modes in stacks/log-filter.ts). */
export const LogFilterSchema = z.union([
  z.enum(['namespaces', 'labels', 'all']),
  z.strictObject({ pattern: z.string().max(MAX_FILTER_PATTERN_LENGTH) }),
]);

/**
 * `logDelivery: {kinesis}`: a Kinesis data stream between the subscription filter and `logs` (stacks/triggers.ts
 * `logIngest`). Every field is optional.
 */
export const KinesisLogDeliverySchema = z.strictObject({
  kinesis: z.strictObject({
    /**
     * Provisioned shards (1–64, default 1). One shard takes 1 MB/s or 1,000 records/s of writes and feeds one
     * `logs` invocation at a time, so a job has at most this many concurrent writers.
     */
    shards: z.number().int().min(1).max(64).default(1),
    /** Seconds the event source mapping gathers records before invoking `logs` (0–300, default 2). */
    batchingWindowSeconds: z.number().int().min(0).max(300).default(2),
    /** Records (CloudWatch Logs payloads) per `logs` invocation at most (1–10,000, default 1,000). */
    batchSize: z.number().int().min(1).max(10_000).default(1000),
  }),
});

const DirectLogDeliverySchema = z.literal('direct', {
  error: 'expected "direct" or {kinesis: {shards?, batchingWindowSeconds?, batchSize?}}',
});

/** What a stage entry may give as `logDelivery`. */
export type LogDeliveryInput =
  | z.input<typeof DirectLogDeliverySchema>
  | z.input<typeof KinesisLogDeliverySchema>;
/** How the application log group's records reach `logs` (defaults applied). */
export type LogDelivery =
  | z.output<typeof DirectLogDeliverySchema>
  | z.output<typeof KinesisLogDeliverySchema>;

/**
 * How the subscription filter delivers to `logs`: `'direct'` (default: the filter invokes the Lambda) or
 * `{kinesis: {…}}` (the filter writes to a stream the Lambda reads in batches). A string is checked as
 * `'direct'`, an object as `{kinesis}`: each bad field is reported at its own path
 * (`logDelivery.kinesis.shards`), which a plain `z.union` would fold into one `logDelivery` issue.
 */
export const LogDeliverySchema = z.unknown().transform((v, ctx): LogDelivery => {
  const parsed = (
    typeof v === 'object' && v !== null ? KinesisLogDeliverySchema : DirectLogDeliverySchema
  ).safeParse(v);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
  }
  return z.NEVER;
});

/** The validated configuration of one stage. */
export const StageConfigSchema = z
  .strictObject({
    stage: z.string().min(1),
    region: z
      .string({ error: missing('TRAINKEEPER_DEPLOY_REGION') })
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region such as us-west-2'),
    cluster: z
      .unknown()
      .superRefine((v, ctx) => {
        if (v === undefined) {
          ctx.addIssue({
            code: 'custom',
            message:
              'required: set TRAINKEEPER_DEPLOY_CLUSTER_KIND and TRAINKEEPER_DEPLOY_CLUSTER_NAME, or a STAGES entry',
          });
        }
      })
      .pipe(ClusterSchema),
    /** Log group Container Insights / Fluent Bit writes pod logs to. */
    logGroup: z.string().min(1).optional(),
    allowedNamespaces: z
      .array(z.union([z.literal('*'), z.string().regex(NAMESPACE, 'expected a Kubernetes namespace name')]))
      .min(1)
      .default(['default']),
    /**
     * Which IAM principals may act on which namespaces (functions/shell/access.ts). Absent: every caller the
     * API's IAM authorizer lets in may act on every namespace — allowed only outside production.
     */
    access: AccessRules.optional(),
    podSecurity: z.enum(['privileged', 'baseline', 'restricted']).default('baseline'),
    /** `{create: true}`: a workspace per stage; `{workspaceId}`: push to an existing one. */
    amp: z
      .union([
        z.strictObject({ create: z.literal(true) }),
        z.strictObject({ workspaceId: z.string().regex(/^ws-[0-9a-f-]+$/, 'expected ws-…') }),
      ])
      .default({ create: true }),
    alarmEmail: z.email().optional(),
    retain: z.boolean().optional(),
    logFilter: LogFilterSchema.default('namespaces'),
    /**
     * `'direct'` (default): the subscription filter invokes `logs` (one invocation per payload). `{kinesis}`:
     * the filter writes to a Kinesis data stream and `logs` reads it in batches, reconciling each job once per
     * batch — for jobs of more than about 1,000 pods or clusters with thousands of log streams (docs/deploy.md).
     */
    logDelivery: LogDeliverySchema.default('direct'),
    /** Restarts (any level) within 5 minutes that make a storm. */
    restartStormThreshold: z.number().int().positive().default(10),
    logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  })
  .superRefine((c, ctx) => {
    if (c.access === undefined && isProductionStage(c.stage)) {
      ctx.addIssue({
        code: 'custom',
        path: ['access'],
        message:
          'a production stage must map IAM principals to namespaces (set access or TRAINKEEPER_DEPLOY_ACCESS, docs/deploy.md)',
      });
    }
    if (c.access && !c.allowedNamespaces.includes('*')) {
      for (const [i, rule] of c.access.entries()) {
        if (rule.namespaces === '*') continue;
        for (const ns of rule.namespaces) {
          if (!c.allowedNamespaces.includes(ns)) {
            ctx.addIssue({
              code: 'custom',
              path: ['access', i, 'namespaces'],
              message: `${ns} is not one of allowedNamespaces (${c.allowedNamespaces.join(', ')})`,
            });
          }
        }
      }
    }
    try {
      logFilterPattern(c.logFilter, c.allowedNamespaces);
    } catch (err) {
      if (!(err instanceof LogFilterPatternError)) throw err;
      ctx.addIssue({ code: 'custom', path: ['logFilter'], message: err.message });
    }
    if (c.cluster.kind === 'hyperpod') {
      const region = HYPERPOD_ARN.exec(c.cluster.hyperPodArn)?.[1];
      if (region && region !== c.region) {
        ctx.addIssue({
          code: 'custom',
          path: ['cluster', 'hyperPodArn'],
          message: `the cluster is in ${region}, the stage deploys to ${c.region}`,
        });
      }
    }
  })
  .transform((c) => ({
    ...c,
    logGroup: c.logGroup ?? `/aws/containerinsights/${eksName(c.cluster)}/application`,
    retain: c.retain ?? isProductionStage(c.stage),
  }));

/** The stage configuration the stacks consume (every default applied). */
export type StageConfig = z.output<typeof StageConfigSchema>;
/** What a stage entry or the environment may give. */
export type StageInput = Partial<Omit<z.input<typeof StageConfigSchema>, 'logDelivery'>> & {
  logDelivery?: LogDeliveryInput;
};

/** The EKS cluster behind the configured cluster (HyperPod's orchestrator, or the EKS cluster itself). */
export function eksName(cluster: {
  kind: 'hyperpod' | 'eks';
  name: string;
  eksClusterName?: string;
}): string {
  return cluster.kind === 'hyperpod' ? (cluster.eksClusterName ?? cluster.name) : cluster.name;
}

/**
 * Committed stage entries. `ci` is a fictitious stage used by the offline tests and `sst install --stage ci`;
 * it is never deployed. Add real stages here (or use the environment variables).
 */
export const STAGES: Record<string, StageInput> = {
  ci: {
    region: 'us-west-2',
    cluster: {
      kind: 'hyperpod',
      name: 'ml-cluster',
      hyperPodArn: 'arn:aws:sagemaker:us-west-2:123456789012:cluster/abcd1234efgh',
      eksClusterName: 'ml-eks',
    },
    allowedNamespaces: ['team-a', 'team-b'],
    access: [
      { principal: 'arn:aws:iam::123456789012:role/TeamA-Engineers', namespaces: ['team-a'] },
      { principal: 'arn:aws:sts::123456789012:assumed-role/TeamB-*/*', namespaces: ['team-b'] },
      { principal: 'arn:aws:iam::123456789012:role/MLPlatform-Admin', namespaces: '*' },
    ],
    alarmEmail: 'oncall@example.com',
  },
};

/** A stage configuration that failed validation; `issues` carries every field path. */
export class StageConfigError extends Error {
  /** Every problem, each with its dotted field path. */
  readonly issues: { path: string; message: string }[];
  constructor(stage: string, issues: { path: string; message: string }[]) {
    super(
      `invalid TrainKeeper configuration for stage "${stage}": ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    );
    this.name = 'StageConfigError';
    this.issues = issues;
  }
}

function fromEnv(env: Record<string, string | undefined>): StageInput {
  const v = (k: string) => {
    const s = env[k]?.trim();
    return s === '' ? undefined : s;
  };
  const out: Record<string, unknown> = {};
  const region = v('TRAINKEEPER_DEPLOY_REGION');
  if (region) out.region = region;
  const kind = v('TRAINKEEPER_DEPLOY_CLUSTER_KIND');
  const name = v('TRAINKEEPER_DEPLOY_CLUSTER_NAME');
  const arn = v('TRAINKEEPER_DEPLOY_HYPERPOD_CLUSTER_ARN');
  const eks = v('TRAINKEEPER_DEPLOY_EKS_CLUSTER_NAME');
  if (kind || name || arn || eks) {
    out.cluster = {
      ...(kind ? { kind } : {}),
      ...(name ? { name } : {}),
      ...(arn ? { hyperPodArn: arn } : {}),
      ...(eks ? { eksClusterName: eks } : {}),
    };
  }
  const map: [string, string, (s: string) => unknown][] = [
    ['TRAINKEEPER_DEPLOY_LOG_GROUP', 'logGroup', (s) => s],
    [
      'TRAINKEEPER_DEPLOY_ALLOWED_NAMESPACES',
      'allowedNamespaces',
      (s) =>
        s
          .split(',')
          .map((n) => n.trim())
          .filter((n) => n !== ''),
    ],
    [
      'TRAINKEEPER_DEPLOY_ACCESS',
      'access',
      (s) => {
        try {
          return JSON.parse(s);
        } catch {
          return s; // the schema names what is wrong with it
        }
      },
    ],
    ['TRAINKEEPER_DEPLOY_POD_SECURITY', 'podSecurity', (s) => s],
    ['TRAINKEEPER_DEPLOY_AMP_WORKSPACE_ID', 'amp', (s) => ({ workspaceId: s })],
    ['TRAINKEEPER_DEPLOY_ALARM_EMAIL', 'alarmEmail', (s) => s],
    ['TRAINKEEPER_DEPLOY_RETAIN', 'retain', (s) => (s === 'true' ? true : s === 'false' ? false : s)],
    ['TRAINKEEPER_DEPLOY_LOG_FILTER', 'logFilter', (s) => s],
    ['TRAINKEEPER_DEPLOY_LOG_FILTER_PATTERN', 'logFilter', (s) => ({ pattern: s })],
    ['TRAINKEEPER_DEPLOY_LOG_DELIVERY', 'logDelivery', logDeliveryFromEnv],
  ];
  for (const [key, field, parse] of map) {
    const s = v(key);
    if (s !== undefined) out[field] = parse(s);
  }
  return out as StageInput;
}

/**
 * `direct` → `'direct'`; `kinesis` → `{kinesis: {}}`; `kinesis:<shards>` → `{kinesis: {shards}}`. Anything else
 * is passed on as it is, for the schema to name (`logDelivery`, `logDelivery.kinesis.shards`).
 */
function logDeliveryFromEnv(s: string): unknown {
  if (s === 'kinesis') return { kinesis: {} };
  const shards = /^kinesis:(.*)$/.exec(s)?.[1]?.trim();
  if (shards === undefined) return s;
  return { kinesis: { shards: /^\d+$/.test(shards) ? Number(shards) : shards } };
}

/**
 * The configuration of `stage`: its `STAGES` entry overlaid with the environment, validated. A cluster given
 * in the environment replaces the entry's cluster field by field (same kind) or whole (another kind); a
 * `kinesis` delivery in the environment keeps the entry's other `kinesis` fields.
 * Throws `StageConfigError` listing every bad field (`cluster.hyperPodArn: …`).
 */
export function stageConfig(
  stage: string,
  env: Record<string, string | undefined> = {},
  stages: Record<string, StageInput> = STAGES,
): StageConfig {
  const base = stages[stage] ?? {};
  const over = fromEnv(env);
  const baseCluster = base.cluster as Record<string, unknown> | undefined;
  const overCluster = over.cluster as Record<string, unknown> | undefined;
  const cluster =
    overCluster && baseCluster && (overCluster.kind === undefined || overCluster.kind === baseCluster.kind)
      ? { ...baseCluster, ...overCluster }
      : (overCluster ?? baseCluster);
  const baseKinesis = kinesisFields(base.logDelivery);
  const overKinesis = kinesisFields(over.logDelivery);
  const logDelivery =
    baseKinesis && overKinesis
      ? { kinesis: { ...baseKinesis, ...overKinesis } }
      : (over.logDelivery ?? base.logDelivery);
  // AWS_REGION (the shell's default) only fills a region nothing else gives: it must not move a stage.
  const region = over.region ?? base.region ?? (env.AWS_REGION?.trim() || undefined);
  const parsed = StageConfigSchema.safeParse({
    ...base,
    ...over,
    ...(region ? { region } : {}),
    ...(cluster ? { cluster } : {}),
    ...(logDelivery !== undefined ? { logDelivery } : {}),
    stage,
  });
  if (!parsed.success) {
    throw new StageConfigError(
      stage,
      parsed.error.issues.map((i: z.core.$ZodIssue) => ({
        path: i.path.join('.') || '(root)',
        message: i.message,
      })),
    );
  }
  return parsed.data;
}

/** The `kinesis` fields of a `logDelivery` input, if it is an object with an object `kinesis`. */
function kinesisFields(v: unknown): Record<string, unknown> | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const k = (v as { kinesis?: unknown }).kinesis;
  return typeof k === 'object' && k !== null ? (k as Record<string, unknown>) : undefined;
}

/**
 * The stage's region when its configuration is valid, else `undefined` (for `sst.config.ts`'s `app()`,
 * which must not throw: the full `StageConfigError` comes from `run()`).
 */
export function stageRegion(
  stage: string,
  env: Record<string, string | undefined> = {},
  stages: Record<string, StageInput> = STAGES,
): string | undefined {
  try {
    return stageConfig(stage, env, stages).region;
  } catch (err) {
    if (err instanceof StageConfigError) return undefined;
    throw err;
  }
}
