/**
 * The rule presets TrainKeeper ships (`rules/presets/<name>.ts`), applied to every job unless its
 * `spec.trainkeeper.presets` narrows or empties the list. Part of the manifest language: the parser
 * validates `spec.trainkeeper.presets` against these names; `rules/presets/index.ts` holds one rule list
 * per name (its type makes a name without rules, or rules without a name, a compile error).
 */
export const PRESET_NAMES = ['nccl', 'cuda', 'oom', 'xid', 'checkpoint', 'agent'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];
