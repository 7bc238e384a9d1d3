import { WorkerConfig } from '@hivemind/shared/config/worker-config';
import { loadDashboardToken } from '@hivemind/shared/http/dashboard-token';
import { errorMessage } from '@hivemind/shared/util/errors';

/**
 * The gateway's REST API as the status, pause, resume, tasks and logs commands use it:
 * on HTTP_HOST:HTTP_PORT with the dashboard token (DASHBOARD_TOKEN, else the token file).
 */

/** A failure the command reports in one sentence and exits 1 with. */
export class GatewayError extends Error {}

export interface GatewayClient {
  base: string;
  get(path: string): Promise<unknown>;
  getText(path: string): Promise<string>;
  post(path: string): Promise<unknown>;
}

/** The address the gateway's HTTP server answers on from this machine. */
export function gatewayBase(config: Pick<WorkerConfig, 'HTTP_HOST' | 'HTTP_PORT'>): string {
  const host = ['0.0.0.0', '::', ''].includes(config.HTTP_HOST) ? '127.0.0.1' : config.HTTP_HOST;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.HTTP_PORT}`;
}

export async function connectGateway(config: WorkerConfig, base = gatewayBase(config)): Promise<GatewayClient> {
  const found = await loadDashboardToken(config, false);
  if (!found) {
    throw new GatewayError(
      `no dashboard token: ${config.dashboardTokenFile} does not exist (the gateway writes it at its first start) and DASHBOARD_TOKEN is not set; run this as the user that runs the worker, or set DASHBOARD_TOKEN_FILE`,
    );
  }
  const tokenSource = config.DASHBOARD_TOKEN !== undefined ? 'DASHBOARD_TOKEN' : config.dashboardTokenFile;

  async function call(method: 'GET' | 'POST', path: string): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(base + path, { method, headers: { authorization: `Bearer ${found!.token}`, accept: 'application/json' }, signal: AbortSignal.timeout(15_000) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? errorMessage(err);
      throw new GatewayError(`the gateway is not running or not reachable at ${base} (HTTP_HOST, HTTP_PORT): ${cause}`);
    }
    if (res.status === 401) throw new GatewayError(`the gateway at ${base} refused the dashboard token from ${tokenSource}: it is not this gateway's token (check DASHBOARD_TOKEN and DASHBOARD_TOKEN_FILE)`);
    if (!res.ok) {
      const body = await res.text();
      let message = body.slice(0, 500);
      try {
        const j = JSON.parse(body) as { message?: unknown };
        if (j.message !== undefined) message = Array.isArray(j.message) ? j.message.join('; ') : String(j.message);
      } catch {
        // not JSON: the text as it came
      }
      throw new GatewayError(`${method} ${path}: the gateway answered ${res.status}: ${message}`);
    }
    return res;
  }

  return {
    base,
    get: async (path) => (await call('GET', path)).json(),
    getText: async (path) => (await call('GET', path)).text(),
    post: async (path) => (await call('POST', path)).json(),
  };
}
