"""An MCP server for the claims domain: a claim-documents store (mcp's MCPServer).

`search_documents` is read-only (readOnlyHint): the worker re-runs it freely.
`attach_document` has no hints: it is external without downstream dedupe, so a call cut
off by a crash is reported `unknown` instead of attaching the document twice.

Run by the worker over stdio (examples/mcp_claims.py), or on its own over HTTP:
`python examples/claim_documents_server.py --db docs.db http 8765`.
"""

from __future__ import annotations

import argparse
import sqlite3
from datetime import UTC, datetime

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("claim-documents")
_db_path = "claim-documents.db"

SEED = [
    ("123", "police-report.pdf", "Police report of the collision on 2 March"),
    ("123", "repair-estimate.pdf", "Repair estimate from Garage Nord: 2,400 EUR"),
    ("456", "photos.zip", "Photos of the water damage in the kitchen"),
]


def _db() -> sqlite3.Connection:
    db = sqlite3.connect(_db_path, timeout=30, isolation_level=None)
    db.execute(
        "create table if not exists documents (claim text, name text, summary text, added text)"
    )
    if not db.execute("select 1 from documents limit 1").fetchone():
        db.executemany("insert into documents values (?, ?, ?, 'seed')", SEED)
    return db


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def search_documents(claim: str, query: str = "") -> list[dict[str, str]]:
    """The documents of a claim whose name or summary contains `query`."""
    with _db() as db:
        rows = db.execute(
            "select name, summary from documents"
            " where claim = ? and (name like ? or summary like ?)",
            (claim, f"%{query}%", f"%{query}%"),
        ).fetchall()
    return [{"name": name, "summary": summary} for name, summary in rows]


@server.tool(annotations=ToolAnnotations(destructive_hint=False))
def attach_document(claim: str, name: str, summary: str) -> str:
    """Attach a document to a claim. Not idempotent: each call adds one."""
    with _db() as db:
        added = datetime.now(UTC).isoformat()
        db.execute("insert into documents values (?, ?, ?, ?)", (claim, name, summary, added))
    return f"attached {name} to claim {claim}"


def main() -> None:
    global _db_path
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=_db_path)
    parser.add_argument("transport", nargs="?", choices=["stdio", "http"], default="stdio")
    parser.add_argument("port", nargs="?", type=int, default=8765)
    args = parser.parse_args()
    _db_path = args.db
    if args.transport == "http":
        server.run("streamable-http", host="127.0.0.1", port=args.port)
    else:
        server.run()


if __name__ == "__main__":
    main()
