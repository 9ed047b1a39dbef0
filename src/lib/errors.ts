/**
 * Errors a user can act on. Each names the setting or input and says what to do; none carries secret material.
 */

/** A binding or var is missing or malformed. `binding` names it, e.g. `INTX_API_SECRET`. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly binding: string;
  constructor(binding: string, message: string) {
    super(`${binding}: ${message}`);
    this.binding = binding;
  }
}

/** A signing input (timestamp, method, URL) is unusable. */
export class SigningInputError extends TypeError {
  override readonly name = "SigningInputError";
}
