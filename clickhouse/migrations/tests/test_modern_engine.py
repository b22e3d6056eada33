"""Runs camtrail's ClickHouse DDL and the queries the services send on a current ClickHouse
engine (chdb-core embeds one), so the schema is known to work beyond the 18.16 server that
Debian ships.  Run: python3 -m pytest clickhouse/migrations/tests -q
"""
import pathlib
import tempfile

import pytest
from chdb import session

DDL_DIR = pathlib.Path(__file__).resolve().parent.parent


def statements(text):
    body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def migration_files():
    files = sorted(DDL_DIR.glob("[0-9][0-9][0-9]_*.sql"))
    assert files, "no migration files found"
    return files


@pytest.fixture()
def db():
    with tempfile.TemporaryDirectory() as path:
        s = session.Session(path)
        s.query("CREATE DATABASE IF NOT EXISTS camtrail")
        s.query("USE camtrail")
        yield s
        s.close()


def apply_all(s):
    for f in migration_files():
        for stmt in statements(f.read_text()):
            s.query(stmt)


def test_ddl_applies_twice(db):
    apply_all(db)
    apply_all(db)  # idempotent
    tables = set(str(db.query("SHOW TABLES FROM camtrail", "CSV")).replace('"', "").split())
    for t in ["detections", "detections_by_camera", "subject_keys_daily", "cameras", "snapshots", "audit_log"]:
        assert t in tables, tables


def test_views_feed_and_dedup_on_read(db):
    apply_all(db)
    row = ("'K1', 1764000000000, toFixedString(unhex('0102030405060708090a0b0c0d0e0f10'), 16), "
           "'cam1', 1, 'K·1', 0.9, 1, 1, 0, 0, 10, 10, 0, 'gw', 1764000000100")
    # The same event delivered twice, as a resent batch would be.
    for _ in range(2):
        db.query(f"INSERT INTO detections (subject_key, captured_at_ms, event_id, camera_id, object_class, "
                 f"plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, bbox_width, "
                 f"bbox_height, has_snapshot, gateway_id, received_at_ms) VALUES ({row})")
    count = db.query("SELECT count() FROM (SELECT DISTINCT event_id FROM detections "
                     "WHERE subject_key = 'K1' AND captured_at_ms >= 0 AND captured_at_ms < 2000000000000)", "CSV")
    assert str(count).strip() == "1"
    by_camera = db.query("SELECT uniqExact(event_id), any(day) FROM detections_by_camera WHERE camera_id = 'cam1'", "CSV")
    assert str(by_camera).strip() == '1,"2025-11-24"'
    keys = db.query("SELECT subject_key, day, sum(sightings) FROM subject_keys_daily GROUP BY subject_key, day", "CSV")
    assert str(keys).strip() == '"K1","2025-11-24",2'
    partition = db.query("SELECT DISTINCT partition FROM system.parts WHERE database = 'camtrail' "
                         "AND table = 'detections' AND active", "CSV")
    assert str(partition).strip() == '"2025-11-24"'

