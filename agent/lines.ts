/**
 * Splits a byte stream into whole lines, torchrun-style prefixed, so that output of many workers never
 * interleaves mid-line on the agent's stdout.
 *
 * Invariants: every emitted chunk is a sequence of complete lines, each `prefix + bytes + "\n"`; no line body
 * exceeds `maxLine` bytes (longer lines are split into several prefixed lines); a final unterminated line
 * is emitted by `flush()`. Bytes are never decoded, so multi-byte characters pass through untouched except
 * where a line is split at the cap.
 */

/** Default cap of one forwarded line's body (bytes). */
export const MAX_LINE_BYTES = 64 * 1024;

const NL = 0x0a;

/** One stream's splitter: `push` chunks, `flush` at end of stream. Not shared between streams. */
export class LineSplitter {
  private prefix: Buffer;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** `emit` receives whole prefixed lines, several at once when a chunk held several. */
  constructor(
    prefix: string,
    private readonly emit: (lines: Buffer) => void,
    private readonly maxLine = MAX_LINE_BYTES,
  ) {
    this.prefix = Buffer.from(prefix);
  }

  /** Changes the prefix of the lines emitted from now on (a standby worker taking over a local rank). */
  setPrefix(prefix: string): void {
    this.prefix = Buffer.from(prefix);
  }

  /** Feeds a chunk; emits every line it completes. */
  push(chunk: Buffer): void {
    const out: Buffer[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NL, start);
      const end = nl === -1 ? chunk.length : nl;
      let piece = chunk.subarray(start, end);
      // Cut overlong lines at the cap, including what was buffered before.
      while (this.pendingBytes + piece.length > this.maxLine) {
        const take = this.maxLine - this.pendingBytes;
        this.pending.push(piece.subarray(0, take));
        this.line(out);
        piece = piece.subarray(take);
      }
      if (nl === -1) {
        if (piece.length) {
          // Copy: the stream may reuse its buffer.
          this.pending.push(Buffer.from(piece));
          this.pendingBytes += piece.length;
        }
        break;
      }
      this.pending.push(piece);
      this.pendingBytes += piece.length;
      this.line(out);
      start = nl + 1;
    }
    if (out.length) this.emit(Buffer.concat(out));
  }

  /** Emits a final unterminated line, if any (call when the stream ends). */
  flush(): void {
    if (this.pendingBytes === 0) return;
    const out: Buffer[] = [];
    this.line(out);
    this.emit(Buffer.concat(out));
  }

  private line(out: Buffer[]): void {
    out.push(this.prefix, ...this.pending, Buffer.from('\n'));
    this.pending = [];
    this.pendingBytes = 0;
  }
}
