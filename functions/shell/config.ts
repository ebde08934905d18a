/**
 * Handler configuration, read once from the environment at module scope and validated with zod so that a
 * misconfigured Lambda fails at cold start with every bad variable named, not on its first job.
 *
 * | variable | meaning |
 * |---|---|
 * | `TRAINKEEPER_MODE` | `aws` (default) or `local` (embedded control plane: no IAM principal needed) |
 * | `TRAINKEEPER_TABLE` | DynamoDB table name (required) |
 * | `TRAINKEEPER_DYNAMO_ENDPOINT` | DynamoDB endpoint override (dynalite / DynamoDB Local) |
 * | `AWS_REGION` | region (required in `aws` mode; Lambda sets it) |
 * | `TRAINKEEPER_CLUSTER_KIND` | `hyperpod`, `eks` or `local` (default `local` in local mode, else required) |
 * | `TRAINKEEPER_CLUSTER_NAME` | SageMaker HyperPod cluster name (`hyperpod`) or EKS cluster name (`eks`) |
 * | `TRAINKEEPER_KUBECONFIG` | kubeconfig file for `local` (or any cluster reachable with one) |
 * | `TRAINKEEPER_KUBE_ENDPOINT` | API server URL for `local` when no kubeconfig is given |
 * | `TRAINKEEPER_ALLOWED_NAMESPACES` | comma-separated namespaces jobs may target; `*` = any (default `default`) |
 * | `TRAINKEEPER_ACCESS` | JSON list of `{principal, namespaces}` rules: which IAM principals may act on which namespaces (functions/shell/access.ts); absent = every principal on every namespace |
 * | `TRAINKEEPER_POD_SECURITY` | `privileged`, `baseline` (default) or `restricted` |
 * | `TRAINKEEPER_AMP_REMOTE_WRITE_URL` | Amazon Managed Prometheus (or any) remote-write URL; absent = no push |
 * | `TRAINKEEPER_EVENT_BUS` | EventBridge bus for lifecycle events; absent = not published |
 * | `TRAINKEEPER_LOG_LEVEL` | `debug`, `info` (default), `warn`, `error` |
 * | `TRAINKEEPER_STAGE` | stage name, a dimension of the CloudWatch EMF metrics (default `dev`) |
 * | `TRAINKEEPER_AGENT_CONCURRENCY` | agent calls through `pods/proxy` in flight at once per invocation, over all jobs (default 64) |
 * | `TRAINKEEPER_ACT_MARGIN_SECONDS` | no agent call is started when the invocation has less than this left (default 10); the next trigger makes the rest |
 */
import { z } from 'zod';
import { DEFAULT_AGENT_CONCURRENCY } from '../../adapters/kube/concurrency.ts';
import { ValidationError } from '../../core/errors.ts';
import { type AccessRule, parseAccessRules } from './access.ts';

const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const EnvSchema = z
  .object({
    TRAINKEEPER_MODE: z.enum(['aws', 'local']).default('aws'),
    TRAINKEEPER_TABLE: z.string().trim().min(1, 'the DynamoDB table name is required'),
    TRAINKEEPER_DYNAMO_ENDPOINT: optionalString.pipe(z.url().optional()),
    AWS_REGION: optionalString,
    TRAINKEEPER_CLUSTER_KIND: z.enum(['hyperpod', 'eks', 'local']).optional(),
    TRAINKEEPER_CLUSTER_NAME: optionalString,
    TRAINKEEPER_KUBECONFIG: optionalString,
    TRAINKEEPER_KUBE_ENDPOINT: optionalString.pipe(z.url().optional()),
    TRAINKEEPER_ALLOWED_NAMESPACES: z.string().default('default'),
    TRAINKEEPER_ACCESS: optionalString,
    TRAINKEEPER_POD_SECURITY: z.enum(['privileged', 'baseline', 'restricted']).default('baseline'),
    TRAINKEEPER_AMP_REMOTE_WRITE_URL: optionalString.pipe(z.url().optional()),
    TRAINKEEPER_EVENT_BUS: optionalString,
    TRAINKEEPER_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    TRAINKEEPER_STAGE: z.string().trim().min(1).default('dev'),
    TRAINKEEPER_AGENT_CONCURRENCY: optionalString.pipe(
      z.coerce
        .number<string>({ error: 'must be a whole number from 1 to 1024' })
        .int('must be a whole number from 1 to 1024')
        .min(1, 'must be a whole number from 1 to 1024')
        .max(1024, 'must be a whole number from 1 to 1024')
        .optional(),
    ),
    TRAINKEEPER_ACT_MARGIN_SECONDS: optionalString.pipe(
      z.coerce
        .number<string>({ error: 'must be a number of seconds from 0 to 900' })
        .min(0, 'must be a number of seconds from 0 to 900')
        .max(900, 'must be a number of seconds from 0 to 900')
        .optional(),
    ),
  })
  .superRefine((env, ctx) => {
    const kind = env.TRAINKEEPER_CLUSTER_KIND ?? (env.TRAINKEEPER_MODE === 'local' ? 'local' : undefined);
    if (!kind) {
      ctx.addIssue({
        code: 'custom',
        path: ['TRAINKEEPER_CLUSTER_KIND'],
        message: 'set to hyperpod or eks (or local)',
      });
    }
    if ((kind === 'hyperpod' || kind === 'eks') && !env.TRAINKEEPER_CLUSTER_NAME) {
      ctx.addIssue({
        code: 'custom',
        path: ['TRAINKEEPER_CLUSTER_NAME'],
        message: `a ${kind} cluster needs its name`,
      });
    }
    if (kind === 'local' && !env.TRAINKEEPER_KUBECONFIG && !env.TRAINKEEPER_KUBE_ENDPOINT) {
      ctx.addIssue({
        code: 'custom',
        path: ['TRAINKEEPER_KUBECONFIG'],
        message: 'a local cluster needs TRAINKEEPER_KUBECONFIG or TRAINKEEPER_KUBE_ENDPOINT',
      });
    }
    if (env.TRAINKEEPER_ACCESS !== undefined) {
      const access = parseAccessRules(env.TRAINKEEPER_ACCESS);
      if (!access.ok) {
        for (const issue of access.issues) {
          ctx.addIssue({
            code: 'custom',
            path: ['TRAINKEEPER_ACCESS'],
            message: `${issue.path} ${issue.message}`.trim(),
          });
        }
      }
    }
    if (env.TRAINKEEPER_MODE === 'aws' && !env.AWS_REGION) {
      ctx.addIssue({ code: 'custom', path: ['AWS_REGION'], message: 'the AWS region is required' });
    }
  });

/** Where the Kubernetes API is: found through SageMaker/EKS, or given directly for the local stand-in. */
export type ClusterConfig =
  | { kind: 'hyperpod'; name: string }
  | { kind: 'eks'; name: string }
  | { kind: 'local'; kubeconfig?: string; endpoint?: string };

/** Validated handler configuration. Invariant: every field is checked; nothing reads `process.env` later. */
export interface Config {
  mode: 'aws' | 'local';
  tableName: string;
  dynamoEndpoint?: string;
  region?: string;
  cluster: ClusterConfig;
  /** Namespaces jobs may target; `['*']` allows any. */
  allowedNamespaces: string[];
  /**
   * Which IAM principals may act on which namespaces (every API route checks it, functions/shell/access.ts).
   * Absent: every principal may act on every namespace (submissions still only to `allowedNamespaces`).
   */
  access?: AccessRule[];
  podSecurityLevel: 'privileged' | 'baseline' | 'restricted';
  ampRemoteWriteUrl?: string;
  eventBusName?: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Stage name (EMF dimension). EMF records are written in `aws` mode only. */
  stage: string;
  /**
   * Agent calls in flight at once, shared by every job of an invocation (the Kubernetes adapter's one
   * limit). Each is a `pods/proxy` request the API server counts against its in-flight limit.
   */
  agentConcurrency: number;
  /**
   * `act` starts no agent call when the invocation has less than this left (ms): what is left is recorded
   * (`AgentCallsCutShort`) and made by the next trigger. Covers the calls in flight and the final write.
   */
  actMarginMs: number;
}

/** Default of `TRAINKEEPER_ACT_MARGIN_SECONDS`: room for the calls in flight and the last decide and write. */
export const DEFAULT_ACT_MARGIN_SECONDS = 10;

/**
 * Parses the environment into a `Config`. Throws a `ValidationError` listing every bad variable
 * (`{path: 'TRAINKEEPER_TABLE', message}`) so the cold start fails with a readable message.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ValidationError(
      `invalid TrainKeeper configuration: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  const e = parsed.data;
  const access = e.TRAINKEEPER_ACCESS !== undefined ? parseAccessRules(e.TRAINKEEPER_ACCESS) : undefined;
  const kind = e.TRAINKEEPER_CLUSTER_KIND ?? 'local';
  const cluster: ClusterConfig =
    kind === 'local'
      ? {
          kind,
          ...(e.TRAINKEEPER_KUBECONFIG ? { kubeconfig: e.TRAINKEEPER_KUBECONFIG } : {}),
          ...(e.TRAINKEEPER_KUBE_ENDPOINT ? { endpoint: e.TRAINKEEPER_KUBE_ENDPOINT } : {}),
        }
      : { kind, name: e.TRAINKEEPER_CLUSTER_NAME as string };
  return {
    mode: e.TRAINKEEPER_MODE,
    tableName: e.TRAINKEEPER_TABLE,
    ...(e.TRAINKEEPER_DYNAMO_ENDPOINT ? { dynamoEndpoint: e.TRAINKEEPER_DYNAMO_ENDPOINT } : {}),
    ...(e.AWS_REGION ? { region: e.AWS_REGION } : {}),
    cluster,
    allowedNamespaces: e.TRAINKEEPER_ALLOWED_NAMESPACES.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
    ...(access?.ok ? { access: access.rules } : {}),
    podSecurityLevel: e.TRAINKEEPER_POD_SECURITY,
    ...(e.TRAINKEEPER_AMP_REMOTE_WRITE_URL ? { ampRemoteWriteUrl: e.TRAINKEEPER_AMP_REMOTE_WRITE_URL } : {}),
    ...(e.TRAINKEEPER_EVENT_BUS ? { eventBusName: e.TRAINKEEPER_EVENT_BUS } : {}),
    logLevel: e.TRAINKEEPER_LOG_LEVEL,
    stage: e.TRAINKEEPER_STAGE,
    agentConcurrency: e.TRAINKEEPER_AGENT_CONCURRENCY ?? DEFAULT_AGENT_CONCURRENCY,
    actMarginMs: (e.TRAINKEEPER_ACT_MARGIN_SECONDS ?? DEFAULT_ACT_MARGIN_SECONDS) * 1000,
  };
}

/** True when jobs may be submitted to `namespace` under this configuration. */
export function isNamespaceAllowed(config: Pick<Config, 'allowedNamespaces'>, namespace: string): boolean {
  return config.allowedNamespaces.includes('*') || config.allowedNamespaces.includes(namespace);
}
