/**
 * Per-namespace authorization of API callers (AWS mode): which namespaces an IAM principal may act on.
 *
 * API Gateway's IAM authorizer (HTTP API, payload 2.0) authenticates the SigV4 signature and hands the
 * Lambda `requestContext.authorizer.iam` = `{accessKey, accountId, callerId, principalOrgId, userArn,
 * userId, cognitoIdentity}`. `userArn` is what we match:
 *
 * | caller | `userArn` |
 * |---|---|
 * | an assumed role (SSO, `aws sts assume-role`, EC2/ECS/Lambda roles) | `arn:aws:sts::<acct>:assumed-role/<RoleName>/<session>` |
 * | an IAM user | `arn:aws:iam::<acct>:user/<path/>name` |
 * | the account root | `arn:aws:iam::<acct>:root` |
 *
 * An assumed-role ARN carries the role's *name* (never its path) and the session name. A rule's `principal`
 * is either such an ARN pattern, where `*` matches any run of characters other than `/` (so `TeamA-*` never
 * reaches into the session part), or an IAM role ARN `arn:<p>:iam::<acct>:role/<path/>Name`, which matches
 * every session of that role (`arn:<p>:sts::<acct>:assumed-role/Name/*`; role names are unique in an
 * account whatever their path, so dropping the path is exact). An `assumed-role/<role>` pattern without
 * its session segment is rejected: it could never match.
 *
 * Principal tags are not matched: the IAM authorizer does not pass them to the integration (and session
 * tags cannot be looked up afterwards). Use them in the callers' IAM policies instead (see docs/deploy.md).
 *
 * Invariants: a principal's namespaces are the union over every matching rule; no rule matching = no
 * namespace. Without rules (`undefined`) every principal may act on every namespace (the open default of
 * non-production stages; production stages must configure rules, stacks/config.ts).
 */
import { z } from 'zod';

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ROLE_ARN = /^arn:([a-z-]+|\*):iam::(\d{12}|\*):role\/(?:[^/]+\/)*([^/]+)$/;

/** One mapping rule: callers whose `userArn` matches `principal` may act on `namespaces` (`*` = every). */
export const AccessRule = z
  .strictObject({
    principal: z
      .string()
      .regex(/^arn:[^:]*:(iam|sts):[^:]*:[^:]+:.+$/, 'expected an IAM or STS ARN (pattern), arn:aws:sts::…')
      .refine(
        (p) => !/:assumed-role\/[^/]*$/.test(p),
        'an assumed-role ARN is assumed-role/<role>/<session>: add /* to match every session',
      ),
    namespaces: z.union([
      z.literal('*'),
      z.array(z.string().regex(NAMESPACE, 'expected a Kubernetes namespace name')).min(1),
    ]),
  })
  .describe('principal ARN pattern → namespaces');
export type AccessRule = z.infer<typeof AccessRule>;

/** The whole mapping (at least one rule when given). */
export const AccessRules = z.array(AccessRule).min(1);

/** What a principal may act on: every namespace, or exactly these. */
export type Grant = '*' | ReadonlySet<string>;

/** The `userArn` form a rule's principal matches (role ARNs become every session of the role). */
export function effectivePattern(principal: string): string {
  const role = ROLE_ARN.exec(principal);
  if (!role) return principal;
  const [, partition, account, name] = role;
  return `arn:${partition}:sts::${account}:assumed-role/${name}/*`;
}

/** A rule's principal as an anchored regular expression (`*` = `[^/]*`, everything else literal). */
export function principalRegExp(principal: string): RegExp {
  const body = effectivePattern(principal)
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]*');
  return new RegExp(`^${body}$`);
}

/** True when `userArn` matches the rule's principal. */
export function matchesPrincipal(principal: string, userArn: string): boolean {
  return principalRegExp(principal).test(userArn);
}

/**
 * The namespaces `userArn` may act on under `rules` (`undefined` = no mapping configured = every one).
 * The principal `local` (the embedded plane's only caller, which has no IAM) is given every namespace by the
 * handler before it gets here.
 */
export function grantOf(rules: readonly AccessRule[] | undefined, userArn: string): Grant {
  if (rules === undefined) return '*';
  const out = new Set<string>();
  for (const rule of rules) {
    if (!matchesPrincipal(rule.principal, userArn)) continue;
    if (rule.namespaces === '*') return '*';
    for (const ns of rule.namespaces) out.add(ns);
  }
  return out;
}

/** True when the grant covers `namespace`. */
export function isGranted(grant: Grant, namespace: string): boolean {
  return grant === '*' || grant.has(namespace);
}

/**
 * Parses the JSON text of a mapping (`TRAINKEEPER_ACCESS`, `TRAINKEEPER_DEPLOY_ACCESS`): the rules, or
 * `{path, message}` issues (paths like `[0].principal`).
 */
export function parseAccessRules(
  text: string,
): { ok: true; rules: AccessRule[] } | { ok: false; issues: { path: string; message: string }[] } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, issues: [{ path: '', message: `not JSON: ${(err as Error).message}` }] };
  }
  const parsed = AccessRules.safeParse(value);
  if (parsed.success) return { ok: true, rules: parsed.data };
  return {
    ok: false,
    issues: parsed.error.issues.map((i) => ({
      path: i.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join(''),
      message: i.message,
    })),
  };
}
