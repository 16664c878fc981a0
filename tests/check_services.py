"""Fail loudly when the PostgreSQL or Redis server the test suite needs is unreachable."""

from __future__ import annotations

import argparse
import asyncio
import sys


async def check(pg_url: str, redis_url: str) -> list[str]:
    problems = []
    try:
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(pg_url.replace("postgres://", "postgresql://", 1)), 5)
        await conn.execute("SELECT 1")
        await conn.close()
    except Exception as exc:
        problems.append(f"PostgreSQL at {pg_url} is unreachable: {exc.__class__.__name__}: {exc}")
    try:
        from redis.asyncio import Redis

        client = Redis.from_url(redis_url, socket_connect_timeout=5)
        await client.ping()
        await client.aclose()
    except Exception as exc:
        problems.append(f"Redis at {redis_url} is unreachable: {exc.__class__.__name__}: {exc}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", required=True)
    parser.add_argument("--redis", required=True)
    args = parser.parse_args()
    problems = asyncio.run(check(args.pg, args.redis))
    if problems:
        print("=" * 78, file=sys.stderr)
        print("TEST SERVICES MISSING — the PostgreSQL + Redis test pass cannot run:", file=sys.stderr)
        for problem in problems:
            print(f"  * {problem}", file=sys.stderr)
        print("=" * 78, file=sys.stderr)
        return 1
    print(f"test services reachable: PostgreSQL {args.pg}, Redis {args.redis}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
