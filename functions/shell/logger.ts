/**
 * A structured logger for the handlers: one JSON object per line, which CloudWatch Logs Insights indexes
 * field by field. Handlers receive it as a port (`Deps.log`) so tests can capture what was logged.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The logging port. Fields must be JSON-serialisable; errors are rendered with name, message and cause. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Renders an unknown thrown value as plain JSON (name, message, retryable, cause chain). */
export function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const out: Record<string, unknown> = { name: err.name, message: err.message };
    if ('retryable' in err) out.retryable = (err as { retryable: unknown }).retryable;
    if (err.cause !== undefined) out.cause = describeError(err.cause);
    return out;
  }
  return { message: String(err) };
}

function render(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!fields) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields))
    out[key] = value instanceof Error ? describeError(value) : value;
  return out;
}

/**
 * A logger writing JSON lines through `write` (default: `console.log`, which Lambda ships to CloudWatch).
 * Lines below `level` are dropped.
 */
export function jsonLogger(
  options: { level?: LogLevel; component?: string; write?: (line: string) => void } = {},
): Logger {
  const min = ORDER[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => console.log(line));
  const emit = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    write(
      JSON.stringify({
        level,
        message,
        ...(options.component ? { component: options.component } : {}),
        ...render(fields),
      }),
    );
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** One captured log entry (see `memoryLogger`). */
export interface LogEntry {
  level: LogLevel;
  message: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps entries in memory: for tests and for the local control plane's quiet mode. */
export function memoryLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const emit = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    entries.push({ level, message, fields: render(fields) });
  };
  return { entries, debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}
