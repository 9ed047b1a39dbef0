/**
 * Imported keys, each imported once: a promise until its import settles, then the key itself, so a warm lookup has
 * nothing to await. A failed import is forgotten, and the next use tries again. The runtime (src/runtime.ts) keeps
 * one for the isolate: accounts' HMAC keys (by their credentials), webhook routes' and sinks' Standard Webhooks keys
 * (`hook <route>`, `whsec <binding>`) and the console's session key (`session`). The configuration does not change
 * for the runtime's life, so an id stands for one secret.
 */
export class Keys {
  readonly #keys = new Map<unknown, CryptoKey | Promise<CryptoKey>>();

  /** The key `id` stands for, imported by `load` on first use (a bad secret may throw there, synchronously). */
  get(id: string | object, load: () => Promise<CryptoKey>): CryptoKey | Promise<CryptoKey> {
    const known = this.#keys.get(id);
    if (known) return known;
    const pending = load();
    this.#keys.set(id, pending);
    pending.then(
      (key) => this.#keys.set(id, key),
      () => this.#keys.delete(id),
    );
    return pending;
  }
}
