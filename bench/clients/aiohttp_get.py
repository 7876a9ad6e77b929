"""Python aiohttp peer of `make bench`: N GETs of /payments/<id> with
CONCURRENCY workers on one session (connection limit CONCURRENCY), each
body parsed with resp.json(). Timed in-process; prints one JSON line.
    python3 bench/clients/aiohttp_get.py BASE_URL N CONCURRENCY
"""
import asyncio
import json
import sys
import time

import aiohttp


async def main(base, n, conc):
    headers = {"Accept": "application/json", "Authorization": "Bearer sk_bench"}
    state = {"next": 1, "errors": 0, "first_error": None}
    connector = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        async def worker():
            while state["next"] <= n:
                i = state["next"]
                state["next"] += 1
                try:
                    async with session.get(f"{base}/payments/pay_{i}") as resp:
                        env = await resp.json()
                        if resp.status != 200 or env["data"]["id"] != "payment_1234567890":
                            raise RuntimeError(f"HTTP {resp.status}")
                except Exception as e:  # counted and reported, never dropped
                    state["errors"] += 1
                    if state["first_error"] is None:
                        state["first_error"] = repr(e)

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(min(conc, n))))
        seconds = time.monotonic() - t0
    print(json.dumps({"mode": "aiohttp", "requests": n, "concurrency": conc, "seconds": seconds,
                      "rps": n / seconds, "errors": state["errors"], "first_error": state["first_error"]}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
