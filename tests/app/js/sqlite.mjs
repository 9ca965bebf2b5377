// The vendored SQLite build (server/static/app/vendor), the one the app runs, loaded in
// Node: an in-memory database for the store's tests. No node_modules needed.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const VENDOR = new URL('../../../server/static/app/vendor/', import.meta.url);
let sqlite3 = null;

export async function memoryDb() {
  if (!sqlite3) {
    const { default: init } = await import(new URL('sqlite3.mjs', VENDOR).href);
    const wasm = fs.readFileSync(fileURLToPath(new URL('sqlite3.wasm', VENDOR)));
    const quiet = console.warn;
    console.warn = () => {}; // "no OPFS in the main thread": expected in Node
    try {
      sqlite3 = await init({
        print() {}, printErr() {},
        instantiateWasm(imports, done) {
          WebAssembly.instantiate(wasm, imports).then((r) => done(r.instance, r.module));
          return {};
        },
      });
    } finally {
      console.warn = quiet;
    }
  }
  return new sqlite3.oo1.DB(':memory:', 'c');
}

export const APP = new URL('../../../server/static/app/js/', import.meta.url);
