/** Types for `snappyjs` (ships none): snappy BLOCK format, as Prometheus remote write requires. */
declare module 'snappyjs' {
  const snappy: {
    compress<T extends Uint8Array | ArrayBuffer>(input: T): T;
    uncompress<T extends Uint8Array | ArrayBuffer>(input: T, maxLength?: number): T;
  };
  export default snappy;
}
