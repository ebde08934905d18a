/**
 * The rule presets TrainKeeper ships, and the rules a job actually runs (`effectiveRules`).
 *
 * Not pure: this module reads `rules/presets/<name>.yaml` with `node:fs` ONCE, when it is first imported,
 * and validates them (a bad preset file fails the import loudly, not a job later). Everything it returns
 * is plain data. The files are found next to this module in the source tree, or — in a Lambda bundle whose
 * handler is `functions/<name>.mjs` — at `rules/presets/*.yaml` of the bundle root (the stacks copy them
 * there with `copyFiles`).
 *
 * Invariants: preset rules are named `preset.<preset>.<rule>` (a user rule with the same name makes
 * `compileRules` throw a duplicate-name error), carry `source: {kind: 'preset', preset}`, use
 * HyperPod's field names and defaults, and every pattern compiles (checked at load).
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import type { JobSpec, LogRule } from '../../core/spec/types.ts';
import { compilePattern } from '../matcher.ts';
import { PRESET_NAMES, type PresetName } from '../../core/spec/preset-names.ts';

const PresetRule = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/),
  logPattern: z.string().min(1),
  stopPattern: z.string().min(1).optional(),
  expectedStartCutOffInSeconds: z.number().positive().optional(),
  expectedRecurringFrequencyInSeconds: z.number().positive().optional(),
  metricThreshold: z.number().optional(),
  operator: z.enum(['gt', 'gteq', 'lt', 'lteq', 'eq']).optional(),
  metricEvaluationDataPoints: z.number().int().min(1).default(1),
  faultOnMatch: z.boolean().default(false),
  scope: z.enum(['job', 'stream']).default('job'),
});

const PresetFile = z.strictObject({ rules: z.array(PresetRule).min(1) });

/** Where a preset file is: beside this module (source), or under the bundle root (functions/*.mjs). */
function presetFile(preset: PresetName): URL {
  const candidates = [
    new URL(`./${preset}.yaml`, import.meta.url),
    new URL(`../rules/presets/${preset}.yaml`, import.meta.url),
  ];
  const found = candidates.find((url) => existsSync(url));
  if (!found)
    throw new Error(`rule preset ${preset}: no ${preset}.yaml beside the module or under rules/presets/`);
  return found;
}

function loadPreset(preset: PresetName): LogRule[] {
  const file = presetFile(preset);
  const parsed = PresetFile.safeParse(parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`rules/presets/${preset}.yaml: ${issues}`);
  }
  return parsed.data.rules.map((r) => {
    const rule: LogRule = { ...r, name: `preset.${preset}.${r.name}`, source: { kind: 'preset', preset } };
    for (const field of ['logPattern', 'stopPattern'] as const) {
      const pattern = rule[field];
      if (pattern !== undefined) compilePattern(pattern); // throws with the reason
    }
    return rule;
  });
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
