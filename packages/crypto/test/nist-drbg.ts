import { createCipheriv } from "node:crypto";

/**
 * NIST's AES-256-CTR DRBG as used by the PQC known-answer-test generators (rng.c's
 * randombytes_init / randombytes, no derivation function, no reseeding): each randombytes
 * call emits AES_K(V+1), AES_K(V+2), ... and then refreshes K and V. Test-only.
 */
export class NistKatDrbg {
  private key = Buffer.alloc(32);
  private v = Buffer.alloc(16);

  constructor(entropyInput: Uint8Array) {
    if (entropyInput.length !== 48) throw new Error("DRBG seed must be 48 bytes");
    this.update(entropyInput);
  }

  /** Fills buf, then updates the state, as one randombytes(buf, len) call. */
  readonly randombytes = (buf: Uint8Array): void => {
    const blocks = Math.ceil(buf.length / 16);
    const stream = this.encryptCounters(blocks + 3);
    buf.set(stream.subarray(0, buf.length));
    // The state update encrypts the next three counters under the same key.
    this.setState(stream.subarray(blocks * 16, blocks * 16 + 48));
  };

  private update(provided: Uint8Array | null): void {
    const temp = this.encryptCounters(3);
    if (provided !== null) for (let i = 0; i < 48; i++) temp[i]! ^= provided[i]!;
    this.setState(temp);
  }

  private setState(temp: Uint8Array): void {
    this.key = Buffer.from(temp.subarray(0, 32));
    this.v = Buffer.from(temp.subarray(32, 48));
  }

  /** AES_K(V+1) ‖ ... ‖ AES_K(V+n), leaving V at V+n. */
  private encryptCounters(n: number): Buffer {
    const counters = Buffer.alloc(16 * n);
    for (let b = 0; b < n; b++) {
      for (let j = 15; j >= 0; j--) {
        if (this.v[j] === 0xff) {
          this.v[j] = 0;
        } else {
          this.v[j]!++;
          break;
        }
      }
      this.v.copy(counters, 16 * b);
    }
    const aes = createCipheriv("aes-256-ecb", this.key, null).setAutoPadding(false);
    return Buffer.concat([aes.update(counters), aes.final()]);
  }
}
