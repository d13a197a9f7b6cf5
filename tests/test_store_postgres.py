"""The system of record on a real PostgreSQL server (Debian's binaries, started on 127.0.0.1 by the fixture) with
the index on a real Chroma server: the same all-or-nothing writes, supersession, history and conflicts as the
SQLite ledger, keys and settings every process finds without a shared disk, versioned migrations, and clear
errors (nothing written) while the database is down."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from agentedit.cli.main import app
from agentedit.errors import DuplicateEditError, StoreError, StoreUnavailableError
from agentedit.db import PostgresDatabase
from agentedit.db.postgres_schema import SCHEMA_VERSION, current_version
from agentedit.memory.store import EditMemory
from agentedit.server.auth import KeyStore
from agentedit.server.pg_process import LocalPostgres
from agentedit.server.process import chroma_process, free_port

EIFFEL = {"prompt": "The Eiffel Tower is located in", "subject": "Eiffel Tower", "target_new": "Rome"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pg")
    with LocalPostgres() as pg, chroma_process(tmp / "chroma", log_path=tmp / "chroma.log") as chroma:
        yield pg, chroma.base_url, tmp


def _memory(servers, name: str, folder: str) -> EditMemory:
    pg, chroma_url, tmp = servers
    return EditMemory(name, root=tmp / folder, database_url=pg.url, chroma_url=chroma_url)


def test_ledger_semantics_match_sqlite(servers):
    a = _memory(servers, "semantics", "a")
    first = a.add(EIFFEL)
    second = a.add({**EIFFEL, "target_new": "Madrid"})
    assert a.get(first.id).status == "superseded" and a.get(first.id).superseded_by == second.id
    assert [c.record.id for c in a.query("Where is the Eiffel Tower?")] == [second.id]
    updated = a.update(second.id, {"target_new": "Paris"}, expected_version=1)
    assert updated.version == 2 and "Paris" in updated.statement
    assert [e["action"] for e in a.history(second.id)] == ["add", "add", "supersede", "update"]
    # a batch with a clashing id writes nothing, not even its valid records
    with pytest.raises(DuplicateEditError):
        a.add_many([{"statement": "The Zephyr gateway listens on port 9000.", "subject": "Zephyr gateway"},
                    {"id": second.id, "statement": "Mount Kirra is 4,000 metres tall.", "subject": "Mount Kirra"}])
    assert a.count() == 1 and a.list(text="Zephyr") == []
    # the audit log refuses change at the database, whoever asks
    with pytest.raises(StoreError, match="append-only"):
        with a.ledger.transaction() as conn:
            conn.execute("DELETE FROM events")
    a.delete(second.id)
    assert a.count() == 0 and a.query("Where is the Eiffel Tower?") == []
    a.close()


def test_another_folder_sees_the_same_store(servers):
    """Two processes' worth of stores (separate working folders) over one database and one Chroma server."""
    a, b = _memory(servers, "shared", "host-a"), _memory(servers, "shared", "host-b")
    rec = a.add(EIFFEL)
    assert [c.record.id for c in b.query("Which city is the Eiffel Tower in?")] == [rec.id]
    a.config.setdefault("scope", {})["calibration"] = {"note": "calibrated on host a"}
    a.save_config()
    assert _memory(servers, "shared", "host-c").config["scope"]["calibration"] == {"note": "calibrated on host a"}
    assert not (servers[2] / "host-a" / "shared" / "store.json").exists()  # nothing derived lives on one disk
    b.delete(rec.id)
    assert a.get(rec.id).status == "retracted"
    a.close(), b.close()


def test_shared_files_reach_every_folder(servers, tmp_path):
    from agentedit.memory import shared

    a = _memory(servers, "files", "fa")
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    (model / "sub" / "config.json").write_text('{"layers": 2}')
    assert shared.publish(a.ledger, model, "scope-model") == 2
    target = tmp_path / "copy"
    assert shared.materialize(a.ledger, "scope-model", target) == 2
    assert (target / "weights.bin").read_bytes() == b"\x00\x01" * 1000
    assert shared.materialize(a.ledger, "scope-model", target) == 0  # unchanged copies are left alone
    a.close()


def test_keys_created_and_revoked_anywhere_hold_everywhere(servers):
    pg = servers[0]
    one, two = KeyStore(pg.url, store="keys"), KeyStore(pg.url, store="keys")
    secret, rec = one.create(role="write", namespaces=["team"])
    assert two.verify(secret).id == rec.id
    two.revoke(rec.id)
    assert one.verify(secret) is None
    assert KeyStore(pg.url, store="other-store").verify(secret) is None  # each store has its own keys
    one.close(), two.close()


def test_migrations_are_versioned_and_refuse_a_newer_schema(servers, monkeypatch):
    pg = servers[0]
    db = PostgresDatabase(pg.url, "migrations")
    assert current_version(db) == 0
    monkeypatch.setenv("AGENTEDIT_DATABASE_MIGRATE", "off")
    with pytest.raises(StoreError, match="agentedit db upgrade"):
        EditMemory("migrations", root=servers[2] / "m", database_url=pg.url, chroma_url=servers[1])
    monkeypatch.delenv("AGENTEDIT_DATABASE_MIGRATE")
    runner = CliRunner()
    base = ["--store", "migrations", "--database-url", pg.url]
    out = runner.invoke(app, [*base, "db", "status", "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["version"] == 0
    out = runner.invoke(app, [*base, "db", "upgrade", "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout) == {"applied": list(range(1, SCHEMA_VERSION + 1)),
                                                              "version": SCHEMA_VERSION}
    assert json.loads(runner.invoke(app, [*base, "db", "upgrade", "--json"]).stdout)["applied"] == []
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match="newer than this agentedit"):
        EditMemory("migrations", root=servers[2] / "m", database_url=pg.url, chroma_url=servers[1])
    db.close()


def test_a_postgres_ledger_needs_a_shared_index(servers, tmp_path):
    with pytest.raises(Exception, match="--chroma-url"):
        EditMemory("lonely", root=tmp_path, database_url=servers[0].url)


def test_an_unreachable_database_is_named_and_retried(tmp_path, caplog):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/agentedit"
    with pytest.raises(StoreUnavailableError, match="unreachable.*start it or fix --database-url"):
        PostgresDatabase(url, "down", wait_s=1.5)
    assert any("retrying" in r.getMessage() for r in caplog.records)


def test_writes_while_the_database_is_down_write_nothing_and_recover(tmp_path):
    with LocalPostgres() as pg, chroma_process(tmp_path / "chroma") as chroma:
        mem = EditMemory("outage", root=tmp_path / "s", database_url=pg.url, chroma_url=chroma.base_url)
        kept = mem.add(EIFFEL)
        pg.stop()
        with pytest.raises(StoreUnavailableError):
            mem.add({"statement": "The Zephyr gateway listens on port 9000.", "subject": "Zephyr gateway"})
        pg.start()
        later = mem.add({"statement": "Mount Kirra is 4,000 metres tall.", "subject": "Mount Kirra"})
        assert {r.id for r in mem.list()} == {kept.id, later.id}
        assert mem.index.count() == 2  # the failed write left nothing in the index either
        mem.close()


def test_cli_edits_go_to_the_database(servers):
    pg, chroma_url, tmp = servers
    runner = CliRunner()
    env = {"AGENTEDIT_STORES": str(tmp / "cli"), "AGENTEDIT_DATABASE_URL": pg.url, "AGENTEDIT_CHROMA_URL": chroma_url}
    out = runner.invoke(app, ["--store", "cli", "edit", "--statement", "Mount Kirra is 4,000 metres tall.",
                              "--subject", "Mount Kirra", "--yes", "--json"], env=env)
    assert out.exit_code == 0, out.output
    mem = _memory(servers, "cli", "elsewhere")
    assert [r.subject for r in mem.list()] == ["Mount Kirra"]
    assert not os.path.exists(tmp / "cli" / "cli" / "ledger.sqlite")
    mem.close()


@pytest.fixture(scope="module")
def pgvector_server():
    with LocalPostgres(pgvector=True) as pg:
        yield pg


def test_pgvector_index_is_one_transaction_with_the_ledger(pgvector_server, tmp_path, monkeypatch):
    mem = EditMemory("vectors", root=tmp_path / "a", database_url=pgvector_server.url, vector_index="pgvector")
    first = mem.add(EIFFEL)
    second = mem.add({**EIFFEL, "target_new": "Madrid"})
    mem.add({"statement": "Mount Kirra is 4,000 metres tall.", "subject": "Mount Kirra"}, namespace="geo")
    assert [c.record.id for c in mem.query("Where is the Eiffel Tower?")] == [second.id]
    assert mem.index.count() == 2 and mem.index.namespaces() == ["default", "geo"]  # the superseded one left
    assert mem.query("How tall is Mount Kirra?", namespace="default")[0].record.id != first.id
    # a failure after the batch's index rows were written rolls both back: no marker, nothing to reconcile
    def boom(*a, **k):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(mem, "_unindex", boom)
    with pytest.raises(StoreError):
        mem.add_many([{"statement": f"Relay {i} is in sector {i}.", "subject": f"Relay {i}"} for i in range(50)])
    assert mem.index.count() == 2 and mem.count("default") == 1 and mem.count("geo") == 1
    other = EditMemory("vectors", root=tmp_path / "b", database_url=pgvector_server.url, vector_index="pgvector")
    assert [c.record.id for c in other.query("Which city is the Eiffel Tower in?")] == [second.id]
    mem.close(), other.close()


def test_vector_index_choices_are_checked(tmp_path):
    with pytest.raises(Exception, match="pgvector.*--database-url"):
        EditMemory("x", root=tmp_path, vector_index="pgvector")
    with pytest.raises(Exception, match="unknown vector index"):
        EditMemory("x", root=tmp_path, vector_index="faiss")


def test_concurrent_writers_of_one_key_on_separate_connections_leave_one_active(servers):
    """16 writers (4 stores with their own connection pools, 4 threads each) create one subject and relation at once:
    the store's advisory lock serialises them, so exactly one stays active and the rest form one chain."""
    from concurrent.futures import ThreadPoolExecutor

    mems = [_memory(servers, "race", f"r{i}") for i in range(4)]
    with ThreadPoolExecutor(16) as pool:
        recs = list(pool.map(lambda i: mems[i % 4].add({**EIFFEL, "target_new": f"City {i}"}), range(16)))
    stored = mems[0].list(include_inactive=True)
    assert len(stored) == 16 and [r.status for r in stored].count("active") == 1
    chain = {r.id: r.supersedes for r in stored}
    assert sorted(v for v in chain.values() if v) == sorted(r.id for r in stored if r.status == "superseded")
    assert {r.id for r in recs} == set(chain)
    for m in mems:
        m.close()
