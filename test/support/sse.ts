/** A Server-Sent Events response being read: what came so far, and a way to stop reading. */
export interface FollowedStream {
  status: number;
  type: string | null;
  text: () => string;
  close: () => Promise<void>;
}

/** Follows an SSE endpoint (GET), collecting its body as it arrives until `close()`. */
export async function followStream(url: string, headers: Record<string, string> = {}): Promise<FollowedStream> {
  const abort = new AbortController();
  const res = await fetch(url, { headers, signal: abort.signal });
  let body = '';
  const reading = (async () => {
    const reader = res.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      body += Buffer.from(value).toString();
    }
  })().catch(() => undefined);
  return { status: res.status, type: res.headers.get('content-type'), text: () => body, close: async () => (abort.abort(), await reading) };
}
