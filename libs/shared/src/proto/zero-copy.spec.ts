import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { ExecuteTaskRequest } from './generated/nodepool';
import { decodeExecuteTaskRequest } from './zero-copy';

const sample = (zip: Buffer): ExecuteTaskRequest => ({ task_id: 'task-7', task_zip: zip, cpu_usage: 1.5, gpu_usage: 0.25, memory_gb: 3, gpu_memory_gb: 1 });

describe('decodeExecuteTaskRequest', () => {
  it('decodes the same message as the generated decoder', () => {
    for (const zip of [Buffer.alloc(0), Buffer.from('PK\x03\x04 some zip bytes'), Buffer.alloc(70_000, 7)]) {
      const bytes = Buffer.from(ExecuteTaskRequest.encode(sample(zip)).finish());
      expect(decodeExecuteTaskRequest(bytes)).toEqual(ExecuteTaskRequest.decode(bytes));
    }
  });

  it('gives task_zip as a view of the received bytes, not a copy', () => {
    const bytes = Buffer.from(ExecuteTaskRequest.encode(sample(Buffer.alloc(1024, 1))).finish());
    const msg = decodeExecuteTaskRequest(bytes);
    expect(msg.task_zip.buffer).toBe(bytes.buffer);
    bytes[bytes.indexOf(1)] = 9;
    expect(msg.task_zip[0]).toBe(9);
  });

  it('keeps the last task_zip when the field repeats, and skips unknown fields', () => {
    const w = new BinaryWriter();
    w.uint32((1 << 3) | 2).string('t1');
    w.uint32((2 << 3) | 2).bytes(Buffer.from('first'));
    w.uint32((99 << 3) | 0).uint64(12345);
    w.uint32((2 << 3) | 2).bytes(Buffer.from('second'));
    w.uint32((5 << 3) | 0).int32(4);
    const bytes = Buffer.from(w.finish());
    const msg = decodeExecuteTaskRequest(bytes);
    expect(msg).toEqual(ExecuteTaskRequest.decode(bytes));
    expect(msg.task_zip.toString()).toBe('second');
    expect(msg.memory_gb).toBe(4);
  });

  it('refuses truncated input as the generated decoder does', () => {
    const bytes = Buffer.from(ExecuteTaskRequest.encode(sample(Buffer.alloc(100))).finish()).subarray(0, 50);
    expect(() => ExecuteTaskRequest.decode(bytes)).toThrow();
    expect(() => decodeExecuteTaskRequest(bytes)).toThrow();
  });
});
