import 'reflect-metadata';
import { Controller, INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod } from '@nestjs/microservices';
import { Metadata, ServerInterceptingCall, ServerInterceptor, status } from '@grpc/grpc-js';
import { ExecuteTaskRequest, ExecuteTaskResponse, WorkerNodeServiceClient, WorkerNodeServiceService } from '@hivemind/shared/proto/generated/nodepool';
import { insecure, messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { GrpcTransport, servicePackage } from '@hivemind/shared/proto/grpc-transport';
import { executeRequest } from '../support/pool';
import { freePort } from '../support/stack';

/** What the test controller saw: the decoder that ran and the calls in flight. */
const seen = { decodedBy: '', release: [] as Array<() => void> };

@Controller()
class EchoController {
  @GrpcMethod('WorkerNodeService', 'ExecuteTask')
  async executeTask(req: ExecuteTaskRequest): Promise<ExecuteTaskResponse> {
    if (req.task_id.startsWith('hold')) await new Promise<void>((resolve) => seen.release.push(resolve));
    return { success: true, message: `${seen.decodedBy}:${req.task_id}:${req.task_zip.length}` };
  }
}

@Module({ controllers: [EchoController] })
class EchoModule {}

/** Refuses calls that carry `x-refuse`, as the caller guard does, before the body is read. */
const refuseOnMetadata: ServerInterceptor = (_method, call) =>
  new ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMetadata: (md, mdNext) => {
          if (md.get('x-refuse').length > 0) call.sendStatus({ code: status.PERMISSION_DENIED, details: 'refused on metadata' });
          else mdNext(md);
        },
      }),
  });

describe('GrpcTransport (Nest microservice on grpc-js)', () => {
  let app: INestMicroservice;
  let client: WorkerNodeServiceClient;

  async function start(shutdownGraceMs: number): Promise<void> {
    const port = await freePort();
    const decode = (bytes: Buffer) => {
      seen.decodedBy = 'custom';
      return WorkerNodeServiceService.executeTask.requestDeserialize(bytes);
    };
    const transport = new GrpcTransport({
      url: `127.0.0.1:${port}`,
      package: 'nodepool',
      packageDefinition: servicePackage({ 'nodepool.WorkerNodeService': WorkerNodeServiceService }, { [WorkerNodeServiceService.executeTask.path]: decode }),
      maxMessageBytes: 4 << 20,
      interceptors: [refuseOnMetadata],
      shutdownGraceMs,
    });
    app = await NestFactory.createMicroservice(EchoModule, { strategy: transport, logger: false });
    await app.listen();
    client = new WorkerNodeServiceClient(`127.0.0.1:${port}`, insecure(), messageSizeOptions(8 << 20));
  }

  afterEach(async () => {
    seen.release.splice(0).forEach((r) => r());
    client?.close();
    await app?.close();
  });

  it('serves @GrpcMethod handlers by proto name, through the given request decoder', async () => {
    await start(5000);
    const res = await unary(client, client.executeTask, executeRequest({ task_id: 't1', task_zip: Buffer.alloc(1000) }));
    expect(res).toEqual({ success: true, message: 'custom:t1:1000' });
  });

  it('answers UNIMPLEMENTED for methods without a handler', async () => {
    await start(5000);
    await expect(unary(client, client.stopTaskExecution, { task_id: 'x' })).rejects.toMatchObject({ code: status.UNIMPLEMENTED });
  });

  it('runs the interceptors on metadata and caps messages at maxMessageBytes', async () => {
    await start(5000);
    const md = new Metadata();
    md.set('x-refuse', '1');
    await expect(unary(client, client.executeTask, executeRequest({ task_id: 't2' }), md)).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    await expect(unary(client, client.executeTask, executeRequest({ task_id: 't3', task_zip: Buffer.alloc(5 << 20) }))).rejects.toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
    });
  });

  it('lets a call in flight finish when it does so within the grace period', async () => {
    await start(10_000);
    const call = unary(client, client.executeTask, executeRequest({ task_id: 'hold-1' }));
    await waitUntil(() => seen.release.length === 1);
    const closed = app.close();
    setTimeout(() => seen.release.splice(0).forEach((r) => r()), 200);
    await expect(call).resolves.toEqual({ success: true, message: 'custom:hold-1:0' });
    await closed;
  });

  it('cuts off a call that outlives the grace period instead of waiting for it', async () => {
    await start(300);
    const call = unary(client, client.executeTask, executeRequest({ task_id: 'hold-2' }));
    await waitUntil(() => seen.release.length === 1);
    await app.close();
    await expect(call).rejects.toMatchObject({ code: expect.any(Number) });
  });
});

async function waitUntil(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}
