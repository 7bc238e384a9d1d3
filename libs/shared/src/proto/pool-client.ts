import { ChannelCredentials, Metadata } from '@grpc/grpc-js';
import { bearer, insecure, isAuthError, messageSizeOptions, unary, UnaryFn } from './grpc';
import {
  MasterNodeServiceClient,
  NodeManagerServiceClient,
  UserServiceClient,
  WorkerNodeServiceClient,
} from './generated/nodepool';

export interface PoolCredentials {
  username: string;
  password: string;
}

export class PoolLoginError extends Error {
  readonly code = 'POOL_LOGIN_REFUSED';
}

/**
 * A client of one Node Pool: its four services on one address, a login, and calls
 * that carry `authorization: Bearer <token>` and log in again once on an auth error.
 */
export class PoolClient {
  readonly users: UserServiceClient;
  readonly nodes: NodeManagerServiceClient;
  readonly workers: WorkerNodeServiceClient;
  readonly master: MasterNodeServiceClient;
  private token: string | null = null;
  private loggingIn: Promise<string> | null = null;

  constructor(
    readonly address: string,
    private readonly creds: PoolCredentials,
    opts: {
      maxMessageBytes: number;
      callTimeoutMs: number;
      channelCredentials?: ChannelCredentials;
      /** Called as a login starts because the pool refused the token a call carried. */
      onRelogin?: (err: unknown) => void;
    },
  ) {
    const c = opts.channelCredentials ?? insecure();
    const o = messageSizeOptions(opts.maxMessageBytes);
    this.users = new UserServiceClient(address, c, o);
    this.nodes = new NodeManagerServiceClient(address, c, o);
    this.workers = new WorkerNodeServiceClient(address, c, o);
    this.master = new MasterNodeServiceClient(address, c, o);
    this.callTimeoutMs = opts.callTimeoutMs;
    this.onRelogin = opts.onRelogin;
  }

  private readonly onRelogin?: (err: unknown) => void;

  private readonly callTimeoutMs: number;

  get username(): string {
    return this.creds.username;
  }

  get loggedIn(): boolean {
    return this.token !== null;
  }

  /** Logs in (one login at a time however many callers ask) and returns the token. */
  login(): Promise<string> {
    if (!this.loggingIn) {
      this.loggingIn = unary(this.users, this.users.login, { username: this.creds.username, password: this.creds.password }, new Metadata(), this.callTimeoutMs)
        .then((res) => {
          if (!res.success || !res.token) throw new PoolLoginError(`the Node Pool refused the login of "${this.creds.username}": ${res.message || 'no reason given'}`);
          this.token = res.token;
          return res.token;
        })
        .finally(() => {
          this.loggingIn = null;
        });
    }
    return this.loggingIn;
  }

  async currentToken(): Promise<string> {
    return this.token ?? this.login();
  }

  /**
   * An authenticated call. `build` gets the token (for requests that repeat it in a
   * field). On an auth error it logs in again and retries once.
   */
  async call<Req, Res>(client: object, fn: UnaryFn<Req, Res>, build: (token: string) => Req, timeoutMs = this.callTimeoutMs): Promise<Res> {
    const token = await this.currentToken();
    try {
      return await unary(client, fn, build(token), bearer(token), timeoutMs);
    } catch (err) {
      if (!isAuthError(err)) throw err;
      const fresh = await this.relogin(token, err);
      return unary(client, fn, build(fresh), bearer(fresh), timeoutMs);
    }
  }

  /**
   * A token the pool refused: log in again, once however many calls carried it. A call
   * whose token was already replaced (another call logged in meanwhile) takes the new one.
   */
  private relogin(refused: string, err: unknown): Promise<string> {
    if (this.token !== null && this.token !== refused) return Promise.resolve(this.token);
    if (this.loggingIn) return this.loggingIn;
    this.token = null;
    this.onRelogin?.(err);
    return this.login();
  }

  close(): void {
    for (const c of [this.users, this.nodes, this.workers, this.master]) c.close();
  }
}
