/**
 * The rule presets TrainKeeper ships, and the rules a job actually runs (`effectiveRules`).
 *
 * Each preset is a module of plain data beside this one (`rules/presets/<name>.ts` exports its `rules`),
 * imported like any other code: a bundle carries the presets with no files to copy and no I/O at load.
 * They are checked once, when this module is first imported, by the one rule validator
 * (`parseLogRules`, the manifest's): a bad preset fails the import loudly, not a job later. Patterns with
 * a backslash are written as `String.raw` literals, so they read exactly as they would in a manifest.
 *
 * Invariants: preset rules are named `preset.<preset>.<rule>` (a user rule with the same name makes
 * `compileRules` throw a duplicate-name error), carry `source: {kind: 'preset', preset}`, use
 * HyperPod's field names and defaults, and every pattern compiles in the RE2 dialect (checked at load).
 * Every name in `PRESET_NAMES` has rules here and nothing else does (the `Record` type says so).
 */
import { parseLogRules } from '../../core/spec/log-rules.ts';
import { PRESET_NAMES, type PresetName } from '../../core/spec/preset-names.ts';
import type { JobSpec, LogRule, LogRuleInput } from '../../core/spec/types.ts';
import { rules as agent } from './agent.ts';
import { rules as checkpoint } from './checkpoint.ts';
import { rules as cuda } from './cuda.ts';
import { rules as nccl } from './nccl.ts';
import { rules as oom } from './oom.ts';
import { rules as xid } from './xid.ts';

/** Each preset's rules as written. */
const PRESET_SOURCES: Readonly<Record<PresetName, readonly LogRuleInput[]>> = {
  nccl,
  cuda,
  oom,
  xid,
  checkpoint,
  agent,
};

/** One preset's rules, validated, defaulted and labelled. @throws Error naming the preset and every issue. */
function loadPreset(preset: PresetName): LogRule[] {
  const parsed = parseLogRules(PRESET_SOURCES[preset], 'rules');
  if (!parsed.ok) {
    const issues = parsed.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
    throw new Error(`rules/presets/${preset}.ts: ${issues}`);
  }
  return parsed.rules.map((r) => ({
    ...r,
    name: `preset.${preset}.${r.name}`,
    source: { kind: 'preset', preset },
  }));
}

/** Every preset's rules, loaded once. */
const PRESETS: ReadonlyMap<string, readonly LogRule[]> = new Map(PRESET_NAMES.map((p) => [p, loadPreset(p)]));

/**
 * The rules of the named presets, in the order given (duplicates once). Returns fresh objects.
 * @throws Error naming an unknown preset (the manifest parser validates names first).
 */
export function loadPresetRules(names: readonly string[]): LogRule[] {
  const out: LogRule[] = [];
  for (const name of new Set(names)) {
    const rules = PRESETS.get(name);
    if (!rules)
      throw new Error(`unknown rule preset ${JSON.stringify(name)} (known: ${PRESET_NAMES.join(', ')})`);
    for (const r of rules) out.push(structuredClone(r));
  }
  return out;
}

/**
 * The rules a job runs: its own `logMonitoringConfiguration` first, then the presets selected by
 * `spec.trainkeeper.presets` (every preset by default, `[]` for none).
 */
export function effectiveRules(spec: JobSpec): LogRule[] {
  return [...spec.runPolicy.logMonitoringConfiguration, ...loadPresetRules(spec.trainkeeper.presets)];
}
