/**
 * The way back: a `JobSpec` as a `HyperPodPyTorchJob` manifest object (for `get` responses, `-o yaml`
 * output, and resubmitting a stored job).
 *
 * Invariant: `parseJobManifest(toManifest(spec))` succeeds and yields `spec` again (tested as a property).
 * Defaults stay explicit in the output, so the manifest still means the same if a default changes later;
 * the parser-only `source` of each rule is dropped (it is not a manifest field).
 */
import type { JobSpec } from './types.ts';

/** `spec` as a manifest object: `metadata` rebuilt from name/namespace/labels/annotations. */
export function toManifest(spec: JobSpec): Record<string, unknown> {
  const { apiVersion, kind, name, namespace, labels, annotations, runPolicy, ...rest } = spec;
  return {
    apiVersion,
    kind,
    metadata: { name, namespace, labels, annotations },
    spec: {
      ...rest,
      runPolicy: {
        ...runPolicy,
        logMonitoringConfiguration: runPolicy.logMonitoringConfiguration.map(
          ({ source: _source, ...rule }) => rule,
        ),
      },
    },
  };
}
