/**
 * Rule lists submitted after the job (API `PUT …/rules`, the `UpdateRules` command on the bus), validated
 * by the manifest parser itself so that defaults, extensions and messages are the same as at submission.
 */
import { z } from 'zod';
import type { JobRef } from '../core/ports.ts';
import { parseJobManifest } from '../core/spec/parse.ts';
import type { FieldIssue, LogRule } from '../core/spec/types.ts';

const RulesBody = z.union([
  z.array(z.unknown()),
  z
    .object({ logMonitoringConfiguration: z.array(z.unknown()) })
    .transform((v) => v.logMonitoringConfiguration),
]);

/**
 * Validates a rule list with the manifest parser itself (same defaults, same messages): the rules are
 * placed in a minimal manifest for the job and parsed; issue paths are re-rooted at `rules[i]`.
 */
export function validateRules(
  rules: unknown,
  ref: JobRef,
): { ok: true; rules: LogRule[] } | { ok: false; errors: FieldIssue[] } {
  const list = RulesBody.safeParse(rules);
  if (!list.success) {
    return { ok: false, errors: [{ path: 'rules', message: 'expected a list of log rules' }] };
  }
  const prefix = 'spec.runPolicy.logMonitoringConfiguration';
  const manifest = {
    apiVersion: 'sagemaker.amazonaws.com/v1',
    kind: 'HyperPodPyTorchJob',
    metadata: { name: ref.name, namespace: ref.namespace },
    spec: {
      replicaSpecs: [
        {
          name: 'rules',
          replicas: 1,
          template: { spec: { containers: [{ name: 'rules', image: 'rules' }] } },
        },
      ],
      runPolicy: { logMonitoringConfiguration: list.data },
    },
  };
  const parsed = parseJobManifest(manifest);
  if (!parsed.ok) {
    return {
      ok: false,
      errors: parsed.errors.map((e) => ({
        path: e.path.startsWith(prefix) ? `rules${e.path.slice(prefix.length)}` : e.path,
        message: e.message,
      })),
    };
  }
  return { ok: true, rules: parsed.spec.runPolicy.logMonitoringConfiguration };
}
