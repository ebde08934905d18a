/**
 * The rule presets TrainKeeper ships (`rules/presets/<name>.yaml`), applied to every job unless its
 * `spec.trainkeeper.presets` narrows or empties the list. Named here so that the manifest parser can
 * validate names without loading the YAML.
 */
export const PRESET_NAMES = ['nccl', 'cuda', 'oom', 'xid', 'checkpoint', 'agent'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];
