/**
 * The floor for relay overhead (npm run bench): a bare Worker that forwards what it gets to the same venue path,
 * method, headers and body, and streams the answer back. No auth, no signing, no clock, no pacing: the caller
 * signs. `/intx/api/v1/...` → `https://intx.sim.local/api/v1/...`; the bench routes every outbound fetch to the
 * simulator, as it does skewguard's.
 */
export default {
  fetch(request: Request): Promise<Response> {
    const { pathname, search } = new URL(request.url);
    return fetch(`https://intx.sim.local${pathname.replace(/^\/intx/, "")}${search}`, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
  },
};
