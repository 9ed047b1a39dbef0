/**
 * Webhook senders (`HOOKS` `verify`): who may call a route, and how an inbound call proves it. One table,
 * `SENDERS`, holds each kind's options, their parsing and its verifier; adding a kind is one entry there, and the
 * compiler names every other place that must know it. Pure: WebCrypto only, no I/O, no state (the caller keeps
 * the imported key).
 */
import { secretsEqual } from "./digest.ts";
import { keysOf, positiveInteger } from "./parse.ts";
import { oversizedSignatures, verifyWebhook } from "./standard-webhooks.ts";

/** TradingView's published webhook source addresses (docs/protocol.md, "Webhook senders"). */
export const TRADINGVIEW_IPS: readonly string[] = ["52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"];

/** Each kind's options. */
interface SenderOptions {
  /** Signed by the sender: `webhook-id`, `webhook-timestamp`, `webhook-signature`. */
  "standard-webhooks": {
    /** How far `webhook-timestamp` may be from now. */
    toleranceSeconds: number;
  };
  /** A passphrase in the body, from TradingView's addresses. */
  tradingview: {
    /** The body field carrying the passphrase (removed before mapping). */
    passphraseField: string;
    /** Allowed `CF-Connecting-IP` values; null = any address. */
    sourceIps: readonly string[] | null;
  };
  /** `Authorization: Bearer <the secret>`. */
  bearer: Record<never, never>;
}

export type VerifyMethod = keyof SenderOptions;
/** A route's sender: its kind (`verify`) and that kind's options. */
export type Sender<K extends VerifyMethod = VerifyMethod> = { [P in K]: { verify: P } & SenderOptions[P] }[K];

/** An inbound call, as a verifier sees it. */
export interface Inbound {
  headers: Headers;
  body: Uint8Array<ArrayBuffer>;
  secret: string;
  /** The binding holding `secret`, to name in a message. */
  secretBinding: string;
  /** `secret` imported as a Standard Webhooks key (`webhookKey`); the caller keeps it between calls. */
  webhookKey: () => Promise<CryptoKey>;
  now: number;
}

/** The sender proved who it is (the payload and the idempotency key it chose, if any), or the HTTP refusal. */
export type Verified =
  | { ok: true; payload: unknown; key: string | undefined }
  | { ok: false; status: 400 | 401 | 403 | 503; code: string; message: string };

interface SenderSpec<K extends VerifyMethod> {
  /** This kind's options from a route entry; a bad one is reported through `problem`, and its default kept. */
  parse(raw: Record<string, unknown>, problem: (message: string) => void): Sender<K>;
  verify(sender: Sender<K>, call: Inbound): Promise<Verified>;
  /** The `content-type`s a call may have. */
  mediaTypes: RegExp;
  /** `timeout_ms` when the route sets none. */
  timeoutMs: number;
  /** The signature does not cover the route, so two routes may not share a secret (config.ts). */
  secretPerRoute: boolean;
  /** What this kind requires of the route's `dedupe_seconds`. */
  dedupeProblem(sender: Sender<K>, dedupeSeconds: number): string | undefined;
}

const JSON_ONLY = /^application\/json(\s*;|$)/i;

const refused = (status: 400 | 401 | 403 | 503, code: string, message: string): Verified => ({
  ok: false,
  status,
  code,
  message,
});
const unauthorized = (message: string) => refused(401, "unauthenticated", message);

function parsed(body: Uint8Array<ArrayBuffer>, key: string | undefined): Verified {
  try {
    return { ok: true, payload: JSON.parse(new TextDecoder().decode(body)), key };
  } catch {
    return refused(400, "bad_json", "the webhook body is not valid JSON");
  }
}

async function verifyStandardWebhooks(sender: Sender<"standard-webhooks">, call: Inbound): Promise<Verified> {
  const oversized = oversizedSignatures(call.headers.get("webhook-signature"));
  if (oversized) return refused(400, "bad_signature_header", oversized);
  const id = call.headers.get("webhook-id");
  let key: CryptoKey;
  try {
    key = await call.webhookKey();
  } catch {
    return refused(503, "hook_not_configured", `the secret binding ${call.secretBinding} is not a whsec_ key`);
  }
  const options = { toleranceSeconds: sender.toleranceSeconds, now: call.now };
  const ok = await verifyWebhook(key, call.headers, call.body, options);
  if (!ok || id === null) return unauthorized("webhook signature missing, invalid, or outside the time tolerance");
  return parsed(call.body, id);
}

async function verifyTradingView(sender: Sender<"tradingview">, call: Inbound): Promise<Verified> {
  const ip = call.headers.get("cf-connecting-ip") ?? "";
  if (sender.sourceIps !== null && !sender.sourceIps.includes(ip)) {
    return refused(403, "forbidden_source", "this source address may not call this route");
  }
  const verified = parsed(call.body, undefined);
  if (!verified.ok) return verified;
  const { payload } = verified;
  const field = sender.passphraseField;
  const given = typeof payload === "object" && payload !== null ? Reflect.get(payload, field) : "";
  if (!(await secretsEqual(typeof given === "string" ? given : "", call.secret))) {
    return unauthorized(`missing or wrong ${field}`);
  }
  if (typeof payload === "object" && payload !== null) Reflect.deleteProperty(payload, field);
  return verified;
}

async function verifyBearer(_: Sender<"bearer">, call: Inbound): Promise<Verified> {
  const token = /^Bearer (\S+)$/.exec(call.headers.get("authorization") ?? "")?.[1] ?? "";
  if (!(await secretsEqual(token, call.secret))) return unauthorized("missing or wrong bearer token");
  return parsed(call.body, call.headers.get("idempotency-key") ?? undefined);
}

function parseSourceIps(raw: Record<string, unknown>, problem: (message: string) => void): readonly string[] | null {
  const value = raw.source_ips;
  if (value === "any") return null;
  if (value === undefined) return TRADINGVIEW_IPS;
  const ips: unknown[] = Array.isArray(value) ? value : [];
  const list = ips.flatMap((ip) => (typeof ip === "string" && ip !== "" ? [ip] : []));
  if (Array.isArray(value) && list.length === ips.length) return list;
  problem('source_ips must be a list of addresses, or "any"');
  return TRADINGVIEW_IPS;
}

function parsePassphraseField(raw: Record<string, unknown>, problem: (message: string) => void): string {
  const value = raw.passphrase_field ?? "passphrase";
  if (typeof value === "string" && value !== "") return value;
  problem("passphrase_field must be a field name");
  return "passphrase";
}

/** Every sender kind: the one place that says what each takes and how it is checked. */
export const SENDERS: { [K in VerifyMethod]: SenderSpec<K> } = {
  "standard-webhooks": {
    parse: (raw, problem) => ({
      verify: "standard-webhooks",
      toleranceSeconds: positiveInteger(raw.tolerance_seconds, 300, "tolerance_seconds", problem),
    }),
    verify: verifyStandardWebhooks,
    mediaTypes: JSON_ONLY,
    timeoutMs: 10_000,
    secretPerRoute: true,
    // A message stamped `tolerance` in the future is accepted until `tolerance` past its stamp: 2 × tolerance apart.
    dedupeProblem: ({ toleranceSeconds }, dedupeSeconds) =>
      dedupeSeconds >= 2 * toleranceSeconds
        ? undefined
        : `dedupe_seconds must be at least 2 × tolerance_seconds (${2 * toleranceSeconds}): a message stamped up to ` +
          "tolerance_seconds ahead is accepted for 2 × tolerance_seconds, and a replay after its record expired would act again",
  },
  tradingview: {
    parse: (raw, problem) => ({
      verify: "tradingview",
      sourceIps: parseSourceIps(raw, problem),
      passphraseField: parsePassphraseField(raw, problem),
    }),
    verify: verifyTradingView,
    // TradingView labels a JSON alert text/plain when it is not valid JSON; it must parse as JSON all the same.
    mediaTypes: /^(application\/json|text\/plain)(\s*;|$)/i,
    // TradingView gives up after 3 s.
    timeoutMs: 2_500,
    secretPerRoute: false,
    dedupeProblem: () => undefined,
  },
  bearer: {
    parse: () => ({ verify: "bearer" }),
    verify: verifyBearer,
    mediaTypes: JSON_ONLY,
    timeoutMs: 10_000,
    secretPerRoute: false,
    dedupeProblem: () => undefined,
  },
};

const KINDS = keysOf(SENDERS);

/**
 * A route's sender. Every kind's options are checked on every route (a bad `source_ips` is a problem on a bearer
 * route too); the route keeps its own kind's. Undefined, reported, when `verify` names no kind.
 */
export function parseSender(raw: Record<string, unknown>, problem: (message: string) => void): Sender | undefined {
  const kind = KINDS.find((k) => k === raw.verify);
  if (kind === undefined) problem(`verify must be ${KINDS.slice(0, -1).join(", ")} or ${KINDS.at(-1)}`);
  return KINDS.map((k): Sender => SENDERS[k].parse(raw, problem)).find((sender) => sender.verify === kind);
}

/** Verifies an inbound call by its route's sender kind. */
export function verifySender<K extends VerifyMethod>(sender: Sender<K>, call: Inbound): Promise<Verified> {
  const spec: SenderSpec<K> = SENDERS[sender.verify];
  return spec.verify(sender, call);
}

/** What the route's sender kind requires of its `dedupe_seconds`, if it is not met. */
export function senderDedupeProblem<K extends VerifyMethod>(
  sender: Sender<K>,
  dedupeSeconds: number,
): string | undefined {
  const spec: SenderSpec<K> = SENDERS[sender.verify];
  return spec.dedupeProblem(sender, dedupeSeconds);
}
