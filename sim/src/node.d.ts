// The two Node built-ins the simulator uses under nodejs_compat (the workers tsconfig has no Node types).
declare module "node:crypto" {
  interface Hmac {
    update(data: string | Uint8Array): Hmac;
    digest(encoding: "base64"): string;
  }
  export function createHmac(algorithm: "sha256", key: Uint8Array): Hmac;
}
declare module "node:buffer" {
  export const Buffer: { from(text: string, encoding: "base64"): Uint8Array };
}
