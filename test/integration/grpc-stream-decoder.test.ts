/**
 * grpc-js's StreamDecoder as patched in patches/@grpc+grpc-js+1.14.7.patch: it allocates a
 * message once its 5-byte prefix is read and copies each chunk into it, so a 500 MB task zip
 * is in memory once rather than as its chunks plus their concatenation. These tests drive the
 * decoder directly (framing at every awkward chunk boundary, the compressed flag, the length
 * limit, what it keeps of its input) and then through a real grpc-js server and client.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  Client,
  credentials,
  Metadata,
  sendUnaryData,
  Server,
  ServerCredentials,
  ServerUnaryCall,
  ServiceDefinition,
  ServiceError,
  status,
} from '@grpc/grpc-js';
import {
  ExecuteTaskRequest,
  ExecuteTaskResponse,
  WorkerNodeServiceClient,
  WorkerNodeServiceService,
} from '@hivemind/shared/proto/generated/nodepool';
import { messageSizeOptions, unary } from '@hivemind/shared/proto/grpc';
import { decodeExecuteTaskRequest } from '@hivemind/shared/proto/zero-copy';
import { executeRequest } from '../support/pool';
import { freePort } from '../support/stack';

interface Decoder {
  write(data: Buffer): Buffer[];
}
const { StreamDecoder } = require('@grpc/grpc-js/build/src/stream-decoder') as { StreamDecoder: new (maxReadMessageLength: number) => Decoder };

/** A gRPC length-prefixed message: compressed flag, 4-byte big-endian length, bytes. */
function frame(payload: Buffer, compressed = false): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed ? 1 : 0;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** `data` cut at `cuts`, each piece in an allocation of its own (as the HTTP/2 stream hands them over). */
function chunked(data: Buffer, cuts: number[]): Buffer[] {
  const ends = [...cuts, data.length];
  let start = 0;
  return ends.map((end) => {
    const piece = Buffer.from(new ArrayBuffer(end - start));
    data.copy(piece, 0, start, end);
    start = end;
    return piece;
  });
}

function decodeAll(decoder: Decoder, chunks: Buffer[]): Buffer[] {
  return chunks.flatMap((c) => decoder.write(c));
}

/** Every buffer the decoder holds in its own fields (directly or in an array). */
function heldBuffers(decoder: Decoder): Uint8Array[] {
  return Object.values(decoder).flatMap((v: unknown) =>
    v instanceof Uint8Array ? [v] : Array.isArray(v) ? v.filter((x): x is Uint8Array => x instanceof Uint8Array) : [],
  );
}

// Messages of 0, 1, 4, 5 and 300 bytes, alternately compressed: a stream of 6 frames whose
// cut points cover a cut inside every header, at every header's end and inside every body.
const small = [
  { payload: Buffer.alloc(0), compressed: false },
  { payload: randomBytes(1), compressed: true },
  { payload: randomBytes(4), compressed: false },
  { payload: Buffer.alloc(0), compressed: true },
  { payload: randomBytes(5), compressed: true },
  { payload: randomBytes(300), compressed: false },
];
const smallFrames = small.map((m) => frame(m.payload, m.compressed));
const smallStream = Buffer.concat(smallFrames);

function expectSmallFrames(out: Buffer[]): void {
  expect(out).toHaveLength(smallFrames.length);
  out.forEach((message, i) => {
    expect(message[0]).toBe(small[i].compressed ? 1 : 0);
    expect(message.readUInt32BE(1)).toBe(small[i].payload.length);
    expect(message.equals(smallFrames[i])).toBe(true);
  });
}

describe('grpc-js StreamDecoder (patched)', () => {
  it('decodes several messages, zero-length ones included, from a single chunk', () => {
    expectSmallFrames(new StreamDecoder(-1).write(Buffer.from(smallStream)));
  });

  it('decodes the same messages whatever one cut splits the stream, and one byte at a time', () => {
    for (let cut = 1; cut < smallStream.length; cut++) {
      expectSmallFrames(decodeAll(new StreamDecoder(-1), chunked(smallStream, [cut])));
    }
    const bytes = Array.from({ length: smallStream.length - 1 }, (_, i) => i + 1);
    expectSmallFrames(decodeAll(new StreamDecoder(-1), chunked(smallStream, bytes)));
  });

  it('decodes the same messages from every pair of cuts within the first frames', () => {
    // Both cuts inside the first 4 frames (headers back to back with tiny bodies).
    const span = smallFrames.slice(0, 4).reduce((n, f) => n + f.length, 0);
    for (let a = 1; a < span; a++) {
      for (let b = a + 1; b <= span; b++) expectSmallFrames(decodeAll(new StreamDecoder(-1), chunked(smallStream, [a, b])));
    }
  });

  it('decodes a large message from many uneven chunks into one allocation of its own, keeping none of the chunks', () => {
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    const framed = frame(payload, true);
    // Uneven chunk sizes, the first two cutting the header (at 2 and at its end, 5).
    const cuts = [2, 5];
    for (let at = 5, step = 1; at + step < framed.length; step = (step * 7 + 13) % 70_000 || 1) cuts.push((at += step));
    const chunks = chunked(framed, cuts);
    expect(chunks.length).toBeGreaterThan(50);
    const decoder = new StreamDecoder(-1);
    const out: Buffer[] = [];
    chunks.forEach((chunk, i) => {
      out.push(...decoder.write(chunk));
      // Between writes the decoder holds no chunk (nor a slice of one): each was copied and let go.
      const held = heldBuffers(decoder);
      for (const earlier of chunks.slice(0, i + 1)) expect(held.some((b) => b.buffer === earlier.buffer)).toBe(false);
    });
    expect(out).toHaveLength(1);
    const [message] = out;
    expect(message[0]).toBe(1);
    expect(message.readUInt32BE(1)).toBe(payload.length);
    expect(message.subarray(5).equals(payload)).toBe(true);
    // One allocation exactly the framed message's size, not a pooled slab nor a chunk.
    expect(message.length).toBeGreaterThan(Buffer.poolSize);
    expect(message.byteOffset).toBe(0);
    expect(message.buffer.byteLength).toBe(message.length);
    expect(chunks.some((c) => c.buffer === message.buffer)).toBe(false);
    // And once the message is out, the decoder holds nothing of it either.
    expect(heldBuffers(decoder).some((b) => b.buffer === message.buffer)).toBe(false);
  });

  it('refuses a message over the limit as soon as its header is read, before allocating it', () => {
    const decoder = new StreamDecoder(1000);
    expect(decoder.write(frame(Buffer.alloc(1000)))).toHaveLength(1);
    const header = frame(Buffer.alloc(1001)).subarray(0, 5);
    expect(decoder.write(header.subarray(0, 3))).toEqual([]);
    expect(() => decoder.write(header.subarray(3))).toThrow('Received message larger than max (1001 vs 1000)');
    expect(heldBuffers(decoder).every((b) => b.byteLength < 1000)).toBe(true);
    // A header announcing 4 GiB is refused the same way, with nothing of that size allocated.
    const huge = Buffer.from([0, 0xff, 0xff, 0xff, 0xff]);
    expect(() => new StreamDecoder(64 << 20).write(huge)).toThrow(`Received message larger than max (${0xffffffff} vs ${64 << 20})`);
  });
});

/** A service of one unary method that answers with the bytes it was sent. */
const echoService: ServiceDefinition = {
  echo: {
    path: '/hivemind.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

function echo(client: Client, body: Buffer): Promise<Buffer> {
  const d = echoService.echo;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(d.path, d.requestSerialize, d.responseDeserialize, body, new Metadata(), { deadline: Date.now() + 120_000 }, (err, res) =>
      err ? reject(err) : resolve(res as Buffer),
    ),
  );
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('grpc-js server and client with the patched decoder', () => {
  const MAX = 96 << 20;
  let server: Server;
  let address: string;
  /** What the ExecuteTask handler saw of the zip. */
  const seen: { digest: string; length: number; viewOfLarger: boolean }[] = [];

  beforeAll(async () => {
    // A bare grpc-js server: this tests grpc-js itself, under the project's patch.
    server = new Server(messageSizeOptions(MAX));
    server.addService(echoService, {
      echo: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, call.request),
    });
    // ExecuteTask decoded as the gateway decodes it: the zip a view of the received message.
    server.addService(
      { ...WorkerNodeServiceService, executeTask: { ...WorkerNodeServiceService.executeTask, requestDeserialize: decodeExecuteTaskRequest } },
      {
        executeTask: (call: ServerUnaryCall<ExecuteTaskRequest, ExecuteTaskResponse>, cb: sendUnaryData<ExecuteTaskResponse>) => {
          const zip = call.request.task_zip;
          seen.push({ digest: sha256(zip), length: zip.length, viewOfLarger: zip.buffer.byteLength > zip.byteLength && zip.byteOffset > 0 });
          cb(null, { success: true, message: 'seen' });
        },
        stopTaskExecution: (_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => cb({ code: status.UNIMPLEMENTED }, null),
      },
    );
    const port = await freePort();
    await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
  });

  afterAll(async () => {
    server.forceShutdown();
  });

  it('round-trips a 64 MB message intact both ways', async () => {
    const client = new Client(address, credentials.createInsecure(), messageSizeOptions(MAX));
    try {
      const body = randomBytes(64 << 20);
      const back = await echo(client, body);
      expect(back.length).toBe(body.length);
      expect(back.equals(body)).toBe(true);
    } finally {
      client.close();
    }
  });

  it('round-trips gzip-compressed messages (the compressed flag reaches the decompressor)', async () => {
    const client = new Client(address, credentials.createInsecure(), { ...messageSizeOptions(MAX), 'grpc.default_compression_algorithm': 2 });
    try {
      const body = Buffer.alloc(5 << 20, 'hivemind ');
      const back = await echo(client, body);
      expect(back.equals(body)).toBe(true);
    } finally {
      client.close();
    }
  });

  it('hands ExecuteTask a 64 MB zip intact, as a view of the one received message', async () => {
    const client = new WorkerNodeServiceClient(address, credentials.createInsecure(), messageSizeOptions(MAX));
    try {
      const zip = randomBytes(64 << 20);
      const res = await unary(client, client.executeTask, executeRequest({ task_id: 'big-1', task_zip: zip }), new Metadata(), 120_000);
      expect(res).toMatchObject({ success: true, message: 'seen' });
      expect(seen).toEqual([{ digest: sha256(zip), length: zip.length, viewOfLarger: true }]);
    } finally {
      client.close();
    }
  });

  it('refuses a message over the server limit with RESOURCE_EXHAUSTED', async () => {
    const client = new Client(address, credentials.createInsecure(), messageSizeOptions(MAX * 2));
    try {
      const err = (await echo(client, Buffer.alloc(MAX + 1)).catch((e: unknown) => e)) as ServiceError;
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(err.details).toBe(`Received message larger than max (${MAX + 1} vs ${MAX})`);
    } finally {
      client.close();
    }
  });
});
