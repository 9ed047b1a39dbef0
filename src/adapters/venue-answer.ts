/**
 * Reading a venue's answer: at most MAX_RESPONSE_BYTES of it, every `Content-Encoding` undone, and withheld when it
 * echoes the request's credentials (a gateway or debug page that reflects the request). A redirect is never followed.
 */
import { readAtMost } from "./stream.ts";
import { UpstreamError } from "./venue-errors.ts";

/** The most of a venue's answer skewguard reads into memory (order books and fills are paginated well below). */
export const MAX_RESPONSE_BYTES = 2 * 1024 * 1024;

/** A read answer: the response to pass on (its bytes read and decoded), and its body as text. */
export interface VenueAnswer {
  response: Response;
  text: string;
}

/**
 * The Worker's `read` step: a redirect is an UpstreamError; otherwise the answer is read (a HEAD's body is not), and
 * the echo check runs on what the caller will read: the body with every Content-Encoding undone (and passed on so).
 * An answer that cannot be undone cannot be checked, so it is not passed on either. `sent` holds the key,
 * passphrase, secret and signature of the request.
 */
export async function readAnswer(
  response: Response,
  method: string,
  url: string,
  attempt: number,
  sent: readonly string[],
): Promise<VenueAnswer> {
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel();
    throw new UpstreamError("redirect", attempt, `to ${locationHost(response.headers.get("location"), url)}`);
  }
  const raw = method === "HEAD" ? await cancelled(response) : await readBytes(response, MAX_RESPONSE_BYTES, attempt);
  let body: Uint8Array<ArrayBuffer>;
  try {
    body = await decodedBody(raw, response.headers, attempt);
  } catch (err) {
    if (echoes(new Uint8Array(0), response.headers, sent)) {
      throw new UpstreamError("withheld", attempt, `status ${response.status}`);
    }
    throw err;
  }
  const text = new TextDecoder().decode(body);
  if (echoes(body, response.headers, sent, text)) {
    throw new UpstreamError("withheld", attempt, `status ${response.status}`);
  }
  return { response: rebuilt(response, body), text };
}

/**
 * The venue's answer again, from the bytes already read and decoded: without `content-encoding` (they are decoded,
 * so labelled so they would be decoded twice, or compressed again by the runtime) and `content-length`.
 */
function rebuilt(response: Response, body: Uint8Array<ArrayBuffer>): Response {
  const headers = new Headers(response.headers);
  headers.delete("content-encoding");
  headers.delete("content-length");
  return new Response(body.byteLength === 0 ? null : body, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}

/** A HEAD answer has no body, whatever its content-length says. */
async function cancelled(response: Response): Promise<Uint8Array<ArrayBuffer>> {
  await response.body?.cancel();
  return new Uint8Array(0);
}

/** The host a redirect points at, for the error message; never the path or query, which may carry data. */
function locationHost(location: string | null, base: string): string {
  if (location === null) return "nowhere (no Location)";
  return URL.canParse(location, base) ? new URL(location, base).host : "an unparsable Location";
}

/** Reads the whole body, at most `limit` bytes; a body that breaks off or is over the limit is an UpstreamError. */
async function readBytes(response: Response, limit: number, attempt: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  let bytes: Uint8Array<ArrayBuffer> | null = null;
  if (declared <= limit) {
    try {
      bytes = await readAtMost(response.body, limit);
    } catch {
      throw new UpstreamError("broken", attempt);
    }
  } else await response.body?.cancel();
  if (!bytes) throw new UpstreamError("too_large", attempt, `over ${limit} bytes`);
  return bytes;
}

/** The codings skewguard undoes, by their `Content-Encoding` names (`x-gzip` is gzip's old name, RFC 9110). */
const CODINGS = new Map<string, "gzip" | "deflate">([
  ["gzip", "gzip"],
  ["x-gzip", "gzip"],
  ["deflate", "deflate"],
]);

/**
 * The body with every coding of `Content-Encoding` undone, last applied first, at most MAX_RESPONSE_BYTES of it.
 * A coding skewguard cannot undo (`br`, `compress`, `zstd`...) or bytes that do not decode are `undecodable`.
 */
async function decodedBody(
  bytes: Uint8Array<ArrayBuffer>,
  headers: Headers,
  attempt: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const header = headers.get("content-encoding");
  if (header === null || bytes.byteLength === 0) return bytes;
  const codings = header
    .split(",")
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== "" && coding !== "identity");
  const unknown = codings.find((coding) => !CODINGS.has(coding));
  if (unknown !== undefined) {
    // The name is shown to the caller: a plain token only (the headers were checked for echoes before this is shown).
    const name = /^[\w.+-]{1,32}$/.test(unknown) ? unknown : "that is not a plain name";
    throw new UpstreamError("undecodable", attempt, `unsupported content-encoding ${name}`);
  }
  // workerd's fetch undoes a lone `gzip` itself and keeps the header (and only that: not `deflate`, nor `gzip, gzip`;
  // test/workers/hardening.test.ts pins it): bytes without gzip's magic number are then already plain. A fetch that
  // does not (a stand-in in tests) hands over the gzip bytes, which start with it.
  if (codings.length === 1 && CODINGS.get(codings[0] ?? "") === "gzip" && !(bytes[0] === 0x1f && bytes[1] === 0x8b)) {
    return bytes;
  }
  let out = bytes;
  for (const coding of codings.reverse()) {
    const format = CODINGS.get(coding) === "gzip" ? "gzip" : zlibWrapped(out) ? "deflate" : "deflate-raw";
    let decoded: Uint8Array<ArrayBuffer> | null;
    try {
      const stream = new Blob([out]).stream().pipeThrough(new DecompressionStream(format));
      decoded = await readAtMost(stream, MAX_RESPONSE_BYTES);
    } catch {
      throw new UpstreamError("undecodable", attempt, `content-encoding ${coding} does not decode`);
    }
    if (!decoded) throw new UpstreamError("too_large", attempt, `over ${MAX_RESPONSE_BYTES} bytes decoded`);
    out = decoded;
  }
  return out;
}

/** Whether `deflate` bytes carry the zlib header HTTP's `deflate` names (RFC 9110); some servers send raw deflate. */
function zlibWrapped(bytes: Uint8Array): boolean {
  const [cmf = 0, flg = 0] = bytes;
  return (cmf & 0x0f) === 8 && ((cmf << 8) | flg) % 31 === 0;
}

/** Values shorter than this are not searched for: a test's one-letter key would match any body. */
const MIN_SECRET_LENGTH = 8;

/** HTML's named character references for what base64 and keys hold besides letters and digits. */
const NAMED_ENTITIES: Record<string, string> = {
  plus: "+",
  sol: "/",
  equals: "=",
  amp: "&",
  lowbar: "_",
  hyphen: "-",
  dash: "-",
  period: ".",
  colon: ":",
  quot: '"',
  apos: "'",
  lt: "<",
  gt: ">",
};

/**
 * `text` with the escapes a page or an API may write a reflected header in undone: JSON's `\uXXXX` and `\/`,
 * HTML's numeric (`&#43;`, `&#x2B;`) and named (`&plus;`) references, and percent-escapes, in any case, until
 * nothing changes (an escape inside another, `&#92;u002B`), at most four rounds.
 */
export function unescaped(text: string): string {
  // Every escape starts with one of these: without them there is nothing to undo (the common case, checked once).
  if (!/[\\&%]/.test(text)) return text;
  let current = text;
  for (let round = 0; round < 4; round++) {
    const next = current
      .replace(/\\u([0-9a-f]{4})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
      .replace(/\\\//g, "/")
      .replace(/&#x0*([0-9a-f]{1,6});?/gi, (m, hex: string) => fromCodePoint(Number.parseInt(hex, 16), m))
      .replace(/&#0*([0-9]{1,7});?/g, (m, dec: string) => fromCodePoint(Number.parseInt(dec, 10), m))
      .replace(/&([a-z]+);/gi, (m, name: string) => NAMED_ENTITIES[name.toLowerCase()] ?? m)
      .replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    if (next === current) break;
    current = next;
  }
  return current;
}

function fromCodePoint(code: number, otherwise: string): string {
  return code <= 0x10ffff ? String.fromCodePoint(code) : otherwise;
}

/**
 * The texts a reader could make of `body`: UTF-8, and, when it may hold UTF-16 (a NUL byte, which UTF-16 puts
 * beside every ASCII character, or a value that is not ASCII), UTF-16 in both byte orders, from either byte.
 */
function readings(body: Uint8Array, values: readonly string[], utf8?: string): string[] {
  const texts = [utf8 ?? new TextDecoder().decode(body)];
  const ascii = values.every((value) => [...value].every((c) => c.charCodeAt(0) < 0x80));
  if (body.includes(0) || !ascii) {
    for (const label of ["utf-16le", "utf-16be"]) {
      texts.push(new TextDecoder(label).decode(body), new TextDecoder(label).decode(body.subarray(1)));
    }
  }
  return texts;
}

/**
 * Whether the body (decoded already) or a header echoes any of `values` (the key, passphrase, secret and signature
 * just sent): a gateway or debug page that reflects the request. The body is read as UTF-8 and as UTF-16 in both
 * byte orders, and each text is searched as is and with its escapes undone (`unescaped`). `utf8`: the body already
 * decoded as UTF-8, when the caller has it.
 */
export function echoes(body: Uint8Array, headers: Headers, values: readonly string[], utf8?: string): boolean {
  const searched = values.filter((value) => value.length >= MIN_SECRET_LENGTH);
  if (searched.length === 0) return false;
  let headerText = "";
  for (const [name, value] of headers) headerText += `${name}: ${value}\n`;
  const texts = [headerText, ...readings(body, searched, utf8)].flatMap((text) => [text, unescaped(text)]);
  return searched.some((value) => texts.some((text) => text.includes(value)));
}

/** Reads at most `maxBytes` of a body as UTF-8 text, cancelling the rest. */
export async function readText(response: Response, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  if (!response.body) return { text: "", truncated: false };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: text + decoder.decode(), truncated: false };
    const room = maxBytes - size;
    size += value.byteLength;
    if (value.byteLength > room) {
      await reader.cancel();
      return { text: text + decoder.decode(value.subarray(0, room)), truncated: true };
    }
    text += decoder.decode(value, { stream: true });
  }
}
