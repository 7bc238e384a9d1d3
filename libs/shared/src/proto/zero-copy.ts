import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { ExecuteTaskRequest } from './generated/nodepool';

/** Field number of `task_zip` in ExecuteTaskRequest (see proto/nodepool.proto). */
const TASK_ZIP_FIELD = 2;

/**
 * Decodes an ExecuteTaskRequest with `task_zip` as a view of the received bytes. The
 * generated decoder copies every bytes field (`Buffer.from(reader.bytes())`), and for a
 * 500 MB zip that copy is a second copy in memory on top of the message grpc-js received
 * (allocated once: patches/@grpc+grpc-js+1.14.7.patch). Here the zip is sliced out without
 * copying and every other field goes through the generated decoder, so the result is the
 * same message.
 */
export function decodeExecuteTaskRequest(buf: Buffer): ExecuteTaskRequest {
  const reader = new BinaryReader(buf);
  let zip: Uint8Array | null = null;
  const rest: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const [field, wireType] = reader.tag();
    if (field === TASK_ZIP_FIELD && wireType === WireType.LengthDelimited) {
      // The last occurrence of a scalar field wins, as in any protobuf decoder.
      zip = reader.bytes();
    } else {
      reader.skip(wireType, field);
      rest.push(buf.subarray(start, reader.pos));
    }
  }
  const message = ExecuteTaskRequest.decode(Buffer.concat(rest));
  if (zip) message.task_zip = Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
  return message;
}
