// WebSocket clients for workerd tests: open one through a fetch (the Worker's handler or the simulator), collect its
// frames as parsed JSON, and wait for one that matches.

export interface Frame {
  [field: string]: unknown;
}

export interface TestSocket {
  socket: WebSocket;
  /** Every text frame received so far, raw. */
  raw: string[];
  frames: Frame[];
  closed: { code: number; reason: string } | undefined;
  /** The first frame (already received or coming) that `match` accepts, within `ms`. */
  next(match: (f: Frame) => boolean, ms?: number): Promise<Frame>;
  /** Resolves when the socket closes, within `ms`. */
  closing(ms?: number): Promise<{ code: number; reason: string }>;
  send(message: object): void;
}

/** Accepts `response`'s WebSocket and records what arrives. Throws when the response is not an upgrade. */
export function track(response: Response): TestSocket {
  const socket = response.webSocket;
  if (!socket) throw new Error(`not upgraded: ${response.status}`);
  socket.accept();
  const t: TestSocket = {
    socket,
    raw: [],
    frames: [],
    closed: undefined,
    next: (match, ms = 4000) => poll(() => t.frames.find(match), ms, "frame"),
    closing: (ms = 4000) => poll(() => t.closed, ms, "close"),
    send: (message) => socket.send(JSON.stringify(message)),
  };
  socket.addEventListener("message", (event) => {
    const text = typeof event.data === "string" ? event.data : "";
    t.raw.push(text);
    t.frames.push(JSON.parse(text) as Frame);
  });
  socket.addEventListener("close", (event) => {
    t.closed = { code: event.code, reason: event.reason };
  });
  return t;
}

async function poll<T>(get: () => T | undefined, ms: number, what: string): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const found = get();
    if (found !== undefined) return found;
    if (Date.now() > until) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** base64(HMAC-SHA256(secret, time + key + "CBINTLMD" + passphrase)): INTX's subscription signature, by hand. */
export async function feedSignature(secret: string, time: string, key: string, passphrase: string): Promise<string> {
  const raw = Uint8Array.from(atob(secret), (c) => c.charCodeAt(0));
  const hmac = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", hmac, new TextEncoder().encode(`${time}${key}CBINTLMD${passphrase}`));
  return btoa(String.fromCharCode(...new Uint8Array(mac)));
}
