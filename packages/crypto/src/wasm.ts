import { dropbear_exit, softLimit } from "@dropbear-ts/dbutil";

// The post-quantum KEMs run in WebAssembly modules compiled from assembly/ (their files say
// why), committed as base64 in the *_wasm.ts files beside this one.

/** The part of the WebAssembly global used here (TypeScript's ES2022 library declares none of it). */
interface WebAssemblyApi {
  readonly Memory: new (descriptor: { initial: number }) => object;
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: object };
}

/** This Node's WebAssembly, or undefined where it is switched off (--jitless). */
function webAssembly(): WebAssemblyApi | undefined {
  return (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly;
}

/**
 * Whether the KEMs can run here: not without WebAssembly (--jitless), nor where no WebAssembly
 * memory can be had; the algorithm tables then leave them out, as a C build without
 * DROPBEAR_SNTRUP761 and DROPBEAR_MLKEM768 does, so the peer settles on another exchange.
 */
export function pqKemsUsable(): boolean {
  if (kemsUsable === undefined) {
    const wasm = webAssembly();
    kemsUsable = wasm !== undefined && memoryObtainable(wasm);
  }
  return kemsUsable;
}

/** pqKemsUsable's answer, found once: each KEM's table entries ask. */
let kemsUsable: boolean | undefined;

/**
 * Whether a WebAssembly memory can be made. V8 reserves several GiB of address space for each;
 * under an address-space limit (ulimit -v, systemd's LimitAS) Node 20's V8 then fails, where
 * Node 24's falls back to a memory without guard regions. Only a limited process tries one:
 * under a limit the try costs some 50 ms, unlimited it is certain to work.
 */
function memoryObtainable(wasm: WebAssemblyApi): boolean {
  const limit = softLimit("Max address space");
  if (limit === null || limit === Infinity) {
    return true;
  }
  try {
    new wasm.Memory({ initial: 1 });
    return true;
  } catch (e) {
    if (e instanceof RangeError) return false;
    throw e;
  }
}

/**
 * Compile and instantiate a module (no imports) and return its exports, typed by the caller
 * after what its assembly/ source declares. Should an algorithm the tables left out be reached
 * anyway, the exchange ends with a reason, not a TypeError.
 */
export function instantiateWasm<Exports>(base64: string, algorithm: string): Exports {
  const wasm = webAssembly();
  if (wasm === undefined) dropbear_exit(`${algorithm} needs WebAssembly, which this Node has switched off (--jitless?)`);
  const module = new wasm.Module(Buffer.from(base64, "base64"));
  let instance: { readonly exports: object };
  try {
    instance = new wasm.Instance(module, {});
  } catch (e) {
    // No address space for the module's memory after all (memoryObtainable): a limit lowered
    // since the tables were made, or the space used up meanwhile. The exchange ends with why.
    if (e instanceof RangeError) dropbear_exit(`${algorithm}: no address space for its WebAssembly memory (ulimit -v?)`);
    throw e;
  }
  // WebAssembly gives the exports untyped; the caller names their types.
  return instance.exports as Exports;
}
