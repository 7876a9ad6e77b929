// Node 20 fetch (undici) peer of `make bench`: N GETs of /payments/<id>
// with CONCURRENCY workers, each body parsed with res.json() (the same
// work as the SDK's decode). Timed in-process; prints one JSON line.
//   node bench/clients/node_fetch.mjs BASE_URL N CONCURRENCY
const [base, nArg, cArg] = process.argv.slice(2);
const n = Number(nArg), conc = Number(cArg);
const headers = { Accept: "application/json", Authorization: "Bearer sk_bench" };
let next = 1, errors = 0, firstError = null;

async function worker() {
  while (next <= n) {
    const i = next++;
    try {
      const res = await fetch(`${base}/payments/pay_${i}`, { headers });
      const env = await res.json();
      if (res.status !== 200 || env.data.id !== "payment_1234567890") throw new Error(`HTTP ${res.status}`);
    } catch (e) {
      errors++;
      firstError ??= String(e);
    }
  }
}

const t0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ mode: "node_fetch", requests: n, concurrency: conc, seconds,
  rps: n / seconds, errors, first_error: firstError }));
