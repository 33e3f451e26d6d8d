// Sends HTTP requests with Node's built-in fetch (no package) and prints what came back,
// for tests/inference/rest_door_test.py: an independent HTTP client for the REST door.
//
//   node rest_fetch_client.mjs < requests.json > responses.json
//
// Input: a JSON array of {"method", "url", "headers": {...}, "body": base64 or null}.
// Output: a JSON array, one entry per request, in order: {"status", "headers": {...},
// "body": base64} or, when no response came (a refused connection or handshake),
// {"error": "..."}. The requests are sent one after the other on fetch's keep-alive
// connections, so a response that leaves its connection unusable shows up here too.
import { Buffer } from 'node:buffer';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const requests = JSON.parse(await readStdin());
const responses = [];
for (const request of requests) {
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers ?? {},
      body: request.body == null ? undefined : Buffer.from(request.body, 'base64'),
    });
    const body = Buffer.from(await response.arrayBuffer());
    responses.push({
      status: response.status,
      headers: Object.fromEntries(response.headers.entries()),
      body: body.toString('base64'),
    });
  } catch (error) {
    responses.push({ error: String(error?.cause ?? error) });
  }
}
process.stdout.write(JSON.stringify(responses));
