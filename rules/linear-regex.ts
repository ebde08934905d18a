/**
 * The one non-pure module of `rules/`: it switches V8's regular-expression engine into the mode that keeps
 * user patterns from stalling a process.
 *
 * `--enable-experimental-regexp-engine-on-excessive-backtracks` keeps V8's fast backtracking engine and,
 * when one match attempt backtracks too much (a catastrophic pattern such as `(a+)+$`), re-runs that
 * attempt on V8's linear-time engine. `--enable-experimental-regexp-engine` adds the `l` flag, which
 * compiles only patterns the linear engine can run; `isLinearCapable` uses it to learn, per pattern,
 * whether the fallback is available (it is not for case-insensitive patterns or large counted
 * repetitions; those go to re2js instead, see rules/matcher.ts).
 *
 * Invariants: the flags are process-wide and are set when this module is first imported, before any rule
 * pattern is compiled (every module that compiles rule patterns imports this one first). Setting them
 * again is harmless. Measured in environment.md: the fast path keeps V8's speed, `(a+)+$` over 400
 * lines of 5,000 characters takes 0.6 s.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
setFlagsFromString('--enable-experimental-regexp-engine');

/**
 * Whether V8's linear engine can run `source` with `flags`, i.e. whether a `RegExp` built from them is
 * protected by the backtrack fallback. Throws nothing: a pattern V8 cannot parse is simply not capable.
 */
export function isLinearCapable(source: string, flags: string): boolean {
  try {
    new RegExp(source, `${flags}l`);
    return true;
  } catch {
    return false;
  }
}
