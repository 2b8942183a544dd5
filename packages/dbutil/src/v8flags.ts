// V8 flags switched for one call only. V8 keys a code cache (Node's for its own modules, ours
// for a program's bundle) by a hash of its flags, and a flag left changed makes everything
// compiled after it miss that cache (docs/bench.md, forty-fifth round); a flag set back puts the
// hash back. So a step that wants a flag for itself sets it, runs, and sets it back at once.

/**
 * Run `fn` with the boolean V8 flags `flags` (`--name` or `--no-name`) set, then set each back
 * to its opposite, whether fn returns or throws. The caller makes sure the process was not
 * started with one of them (it would be switched off here).
 */
export function withV8Flags<T>(flags: readonly string[], fn: () => T): T {
  const v8 = process.getBuiltinModule("node:v8");
  for (const f of flags) v8.setFlagsFromString(f);
  try {
    return fn();
  } finally {
    for (const f of flags) v8.setFlagsFromString(f.startsWith("--no-") ? `--${f.slice(5)}` : `--no-${f.slice(2)}`);
  }
}
