import { dropbear_exit } from "@dropbear-ts/dbutil";

// The post-quantum KEMs run in WebAssembly modules compiled from assembly/ (their files say
// why), committed as base64 in the *_wasm.ts files beside this one.

/** The part of the WebAssembly global used here (TypeScript's ES2022 library declares none of it). */
interface WebAssemblyApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: object };
}

/** This Node's WebAssembly, or undefined where it is switched off (--jitless). */
function webAssembly(): WebAssemblyApi | undefined {
  return (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly;
}

/**
 * Whether the KEMs can run here: not without WebAssembly (--jitless), where the algorithm tables
 * leave them out, as a C build without DROPBEAR_SNTRUP761 and DROPBEAR_MLKEM768 does.
 */
export function pqKemsUsable(): boolean {
  return webAssembly() !== undefined;
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
    // V8 reserves several GiB of address space for a module's memory: under an address-space
    // limit (ulimit -v, systemd's LimitAS) that fails, and the exchange must end with why.
    if (e instanceof RangeError) dropbear_exit(`${algorithm}: no address space for its WebAssembly memory (ulimit -v?)`);
    throw e;
  }
  // WebAssembly gives the exports untyped; the caller names their types.
  return instance.exports as Exports;
}
