/**
 * Colours for the CLI's human output: on only when the stream is a terminal and `NO_COLOR` is not set
 * (`FORCE_COLOR` forces them on). picocolors' own default also switches colours on whenever `CI` is set,
 * even into a pipe or a file, so the CLI decides per stream instead.
 */
import { createColors } from 'picocolors';

/** True when output to `stream` may carry ANSI colours. */
export function colorsEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if ('NO_COLOR' in env && env.NO_COLOR !== '') return false;
  if ('FORCE_COLOR' in env && env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/** Colours for stderr (progress and warnings) and stdout (results). */
export const errColors = createColors(colorsEnabled(process.stderr));
export const outColors = createColors(colorsEnabled(process.stdout));
