/**
 * copy/progress: the events the copy engine reports. The CLI renders them (bars on a TTY, lines in CI,
 * JSON); library callers may pass their own reporter or none.
 */
import type { Descriptor } from '../oci/index.js';

/** `skipped`: the destination already had the blob, or mounted it from the source repository. */
export type BlobOutcome = 'copied' | 'skipped';

export interface CopyProgress {
  blobStarted?(descriptor: Descriptor): void;
  blobBytes?(descriptor: Descriptor, transferred: number): void;
  blobFinished?(descriptor: Descriptor, outcome: BlobOutcome): void;
  manifestWritten?(digest: string, role: 'image' | 'index' | 'attachment'): void;
}
