import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Metadata, sendUnaryData, Server, ServerUnaryCall, status, UntypedHandleCall } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { DEVPOOL_CONFIG, DevpoolConfig } from '@hivemind/shared/config/devpool-config';
import { LOGGER } from '@hivemind/shared/logging/logger';
import {
  MasterNodeServiceService,
  NodeManagerServiceService,
  UserServiceService,
  WorkerNodeServiceService,
} from '@hivemind/shared/proto/generated/nodepool';
import { bindServer, createGrpcServer, grpcErrorText, shutdownServer, unary } from '@hivemind/shared/proto/grpc';
import { serverCredentials } from '@hivemind/shared/security/tls';
import { authRejected, TokenAuthority, TokenClaims } from './auth';
import { PoolState } from './pool-state';
import { WorkerDialer } from './worker-dialer';
import { errorMessage } from '@hivemind/shared/util/errors';

type Handler<Req, Res> = (req: Req, user: TokenClaims, md: Metadata) => Res | Promise<Res>;

/**
 * The pool side of the protocol on DEVPOOL_PORT: UserService, NodeManagerService,
 * MasterNodeService and the pool's half of WorkerNodeService. Every call but Login
 * needs `authorization: Bearer <jwt>`, refused as the deployed pool refuses it.
 */
@Injectable()
export class DevpoolServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private server: Server | null = null;
  port = 0;

  constructor(
    @Inject(DEVPOOL_CONFIG) private readonly config: DevpoolConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly state: PoolState,
    private readonly tokens: TokenAuthority,
    private readonly dialer: WorkerDialer,
  ) {}

  /** Wraps a handler with Bearer auth and error mapping. */
  private authed<Req, Res>(name: string, fn: Handler<Req, Res>): UntypedHandleCall {
    return (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => {
      const user = this.tokens.fromMetadata(call.metadata);
      if (!user) {
        this.logger.debug({ method: name, peer: call.getPeer() }, 'call without a valid token');
        cb(authRejected(), null);
        return;
      }
      Promise.resolve()
        .then(() => fn(call.request, user, call.metadata))
        .then((res) => cb(null, res))
        .catch((err) => {
          this.logger.error({ method: name, err }, 'handler failed');
          cb({ code: status.INTERNAL, details: errorMessage(err) }, null);
        });
    };
  }

  private refuseWorkerSide = (_call: unknown, cb: sendUnaryData<never>) =>
    cb({ code: status.UNIMPLEMENTED, details: 'ExecuteTask and StopTaskExecution are served by workers, not by the pool' }, null);

  async onApplicationBootstrap(): Promise<void> {
    const s = this.state;
    const server = createGrpcServer(this.config.maxMessageBytes);

    server.addService(UserServiceService, {
      login: (call: ServerUnaryCall<{ username: string; password: string }, unknown>, cb: sendUnaryData<unknown>) => {
        const u = s.checkPassword(call.request.username, call.request.password);
        cb(null, u ? { success: true, message: 'login successful', token: this.tokens.issue(u) } : { success: false, message: 'invalid username or password', token: '' });
      },
      transfer: this.authed('Transfer', (req: { receiver_username: string; amount: number }, user) => {
        const from = s.users.get(user.username);
        const to = s.users.get(req.receiver_username);
        if (!from || !to) return { success: false, message: `unknown user ${req.receiver_username}` };
        if (!(req.amount > 0) || from.balance < req.amount) return { success: false, message: 'invalid amount or insufficient balance' };
        from.balance -= req.amount;
        to.balance += req.amount;
        return { success: true, message: `transferred ${req.amount} CPT to ${to.username}` };
      }),
      getBalance: this.authed('GetBalance', (_req: unknown, user) => {
        const u = s.users.get(user.username);
        return u ? { success: true, message: '', balance: u.balance } : { success: false, message: 'unknown user', balance: 0 };
      }),
      refreshToken: (call: ServerUnaryCall<{ old_token: string }, unknown>, cb: sendUnaryData<unknown>) => {
        const claims = this.tokens.verify(call.request.old_token);
        const u = claims ? s.users.get(claims.username) : undefined;
        cb(null, u ? { success: true, message: 'token refreshed', new_token: this.tokens.issue(u) } : { success: false, message: 'token invalid or expired', new_token: '' });
      },
    });

    server.addService(NodeManagerServiceService, {
      registerWorkerNode: this.authed('RegisterWorkerNode', (req: Parameters<PoolState['registerNode']>[0]) => {
        const res = s.registerNode(req);
        this.logger.debug({ node: req.node_id, host: `${req.hostname}:${req.port}`, docker: req.docker_status, cpuScore: req.cpu_score, cores: req.cpu_cores, memoryGb: req.memory_gb }, 'node registered');
        return res;
      }),
      reportStatus: this.authed(
        'ReportStatus',
        (req: { node_id: string; status: string; cpu_usage: number; memory_usage: number; gpu_usage: number; gpu_memory_usage: number; running_tasks: number; docker_status: string }) => {
          const ok = s.reportStatus(
            req.node_id,
            req.status,
            { cpu: req.cpu_usage, memory: req.memory_usage, gpu: req.gpu_usage, gpuMemory: req.gpu_memory_usage },
            req.running_tasks,
            req.docker_status,
          );
          if (ok === 'changed') this.logger.info({ node: req.node_id, status: req.status }, 'node status changed');
          else if (ok) this.logger.debug({ node: req.node_id, status: req.status }, 'node status reported');
          return ok ? { success: true, message: 'status recorded' } : { success: false, message: `node ${req.node_id} is not registered` };
        },
      ),
    });

    server.addService(MasterNodeServiceService, {
      uploadTask: this.authed('UploadTask', (req: Parameters<PoolState['upload']>[1], user) => {
        const res = s.upload(user.username, req);
        this.logger.info({ taskId: req.task_id, owner: user.username, bytes: req.task_zip?.length, ok: res.success }, 'task uploaded');
        return res;
      }),
      getTaskResult: this.authed('GetTaskResult', (req: { task_id: string }, user) => {
        const t = s.tasks.get(req.task_id);
        if (!t || t.owner !== user.username) return { success: false, message: `no task ${req.task_id} of yours`, result_zip: Buffer.alloc(0) };
        if (!t.result) return { success: false, message: `no result yet (status ${t.status})`, result_zip: Buffer.alloc(0) };
        return { success: true, message: t.status, result_zip: t.result };
      }),
      getAllUserTasks: this.authed('GetAllUserTasks', (_req: unknown, user) => ({
        tasks: [...s.tasks.values()].filter((t) => t.owner === user.username).map((t) => s.taskInfo(t)),
      })),
      stopTask: this.authed('StopTask', async (req: { task_id: string }, user) => {
        const t = s.tasks.get(req.task_id);
        if (!t || t.owner !== user.username) return { success: false, message: `no task ${req.task_id} of yours` };
        const nodeId = t.nodeId;
        s.stop(req.task_id);
        const node = nodeId ? s.nodes.get(nodeId) : undefined;
        if (!node) return { success: true, message: 'task stopped' };
        const client = this.dialer.client(node.hostname, node.port);
        try {
          const res = await unary(client, client.stopTaskExecution, { task_id: req.task_id }, this.dialer.metadata(), 50_000);
          return { success: true, message: `task stopped; worker says: ${res.message}` };
        } catch (err) {
          return { success: true, message: `task stopped; the worker could not be told: ${grpcErrorText(err)}` };
        } finally {
          client.close();
        }
      }),
      getTasklog: this.authed('GetTasklog', (req: { task_id: string }, user) => {
        const t = s.tasks.get(req.task_id);
        if (!t || t.owner !== user.username) return { success: false, log: '' };
        return { success: true, log: t.log };
      }),
    });

    server.addService(WorkerNodeServiceService, {
      executeTask: this.refuseWorkerSide,
      stopTaskExecution: this.refuseWorkerSide,
      taskOutputUpload: this.authed('TaskOutputUpload', (req: { task_id: string; output: string }) =>
        s.appendOutput(req.task_id, req.output) ? { success: true, message: '' } : { success: false, message: `unknown task ${req.task_id}` },
      ),
      taskOutput: this.authed('TaskOutput', (req: { task_id: string; output: string }) =>
        s.appendOutput(req.task_id, req.output) ? { success: true, message: '' } : { success: false, message: `unknown task ${req.task_id}` },
      ),
      taskResultUpload: this.authed('TaskResultUpload', (req: { task_id: string; result_zip: Buffer }, user) => {
        const res = s.storeResult(req.task_id, req.result_zip, user.username);
        this.logger.info({ taskId: req.task_id, bytes: req.result_zip?.length, ok: res.success }, 'result received');
        return res;
      }),
      taskUsage: this.authed(
        'TaskUsage',
        (req: { task_id: string; token: string; cpu_usage: number; memory_usage: number; gpu_usage: number; gpu_memory_usage: number }) => {
          const usage = { cpu: req.cpu_usage, memory: req.memory_usage, gpu: req.gpu_usage, gpuMemory: req.gpu_memory_usage };
          // task_id "0": node-wide usage, with the node id in `token`.
          const ok = req.task_id === '0' ? s.setNodeUsage(req.token, usage) : s.setUsage(req.task_id, usage);
          return ok ? { success: true, message: '' } : { success: false, message: `unknown ${req.task_id === '0' ? 'node' : 'task'}` };
        },
      ),
    });

    const creds = serverCredentials({
      cert: this.config.DEVPOOL_TLS_CERT,
      key: this.config.DEVPOOL_TLS_KEY,
      names: { cert: 'DEVPOOL_TLS_CERT', key: 'DEVPOOL_TLS_KEY', clientCa: '' },
    });
    this.port = await bindServer(server, `${this.config.DEVPOOL_BIND}:${this.config.DEVPOOL_PORT}`, creds);
    this.server = server;
    this.logger.info({ port: this.port, users: [...s.users.keys()], tls: Boolean(this.config.DEVPOOL_TLS_CERT) }, 'devpool listening');
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.server) await shutdownServer(this.server, 2000);
  }
}
