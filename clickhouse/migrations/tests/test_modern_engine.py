"""Runs camtrail's ClickHouse DDL and the queries the services send on a current ClickHouse
engine (chdb-core embeds one), so the schema is known to work beyond the 18.16 server that
Debian ships.  Run: python3 -m pytest clickhouse/migrations/tests -q
"""
import pathlib
import re
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


ADD_COLUMN = re.compile(r"^ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(\w+)\s+[^,]*$", re.IGNORECASE)


def apply_all(s):
    """Apply every file as `camtrail migrate` does: an `ALTER TABLE t ADD COLUMN c ...` whose
    column exists already is skipped (18.16 has no ADD COLUMN IF NOT EXISTS)."""
    for f in migration_files():
        for stmt in statements(f.read_text()):
            added = ADD_COLUMN.match(stmt)
            if added:
                table, column = added.groups()
                present = str(s.query(f"SELECT count() FROM system.columns WHERE database = 'camtrail' "
                                      f"AND table = '{table}' AND name = '{column}'", "CSV")).strip()
                if present != "0":
                    continue
            s.query(stmt)


def test_ddl_applies_twice(db):
    apply_all(db)
    apply_all(db)  # idempotent
    tables = set(str(db.query("SHOW TABLES FROM camtrail", "CSV")).replace('"', "").split())
    for t in ["detections", "detections_by_hour", "subject_keys_daily", "cameras", "snapshots", "audit_log",
              "cases", "legal_holds", "watchlist_entries", "watchlist_hits"]:
        assert t in tables, tables
    assert "detections_by_camera" not in tables, tables


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
    by_hour = db.query("SELECT uniqExact(event_id), any(day), any(hour) FROM detections_by_hour "
                       "WHERE hour >= 490000 AND hour <= 490000 AND camera_id = 'cam1'", "CSV")
    assert str(by_hour).strip() == '1,"2025-11-24",490000'
    keys = db.query("SELECT subject_key, day, sum(sightings) FROM subject_keys_daily GROUP BY subject_key, day", "CSV")
    assert str(keys).strip() == '"K1","2025-11-24",2'
    partition = db.query("SELECT DISTINCT partition FROM system.parts WHERE database = 'camtrail' "
                         "AND table = 'detections' AND active", "CSV")
    assert str(partition).strip() == '"2025-11-24"'



def test_attributes_reach_the_hour_table(db):
    apply_all(db)
    views = str(db.query("SELECT name FROM system.tables WHERE database = 'camtrail' AND name LIKE '%_mv%' "
                         "ORDER BY name", "CSV")).replace('"', "").split()
    assert views == ["detections_by_hour_mv", "subject_keys_daily_mv"], views
    db.query("INSERT INTO detections (subject_key, captured_at_ms, event_id, camera_id, object_class, plate, "
             "plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, bbox_width, bbox_height, has_snapshot, "
             "gateway_id, received_at_ms, plate_color, vehicle_brand, direction, speed_kmh, plate_char_confidence) "
             "VALUES ('K2', 1764000000000, toFixedString(unhex('0202030405060708090a0b0c0d0e0f10'), 16), 'cam2', 1, "
             "'K2', 0.9, 6, 2, 0, 0, 10, 10, 0, 'gw', 1764000000100, 5, 'BYD', 3, 42.5, [90, 91])")
    row = db.query("SELECT vehicle_color, vehicle_type, plate_color, vehicle_brand, direction, speed_kmh, "
                   "plate_char_confidence FROM detections_by_hour WHERE camera_id = 'cam2' AND plate_color = 5 "
                   "AND vehicle_brand = 'BYD' AND direction = 3", "CSV")
    assert str(row).strip() == '6,2,5,"BYD",3,42.5,"[90,91]"', str(row)


def test_backfill_copies_rows_stored_before_008(db):
    """Rows in detections before migration 008 reach detections_by_hour through its copy."""
    files = migration_files()
    for f in files:
        if f.name.startswith("008_"):
            break
        for stmt in statements(f.read_text()):
            db.query(stmt)
    db.query("INSERT INTO detections (subject_key, captured_at_ms, event_id, camera_id, object_class, plate, "
             "plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, bbox_width, bbox_height, has_snapshot, "
             "gateway_id, received_at_ms) VALUES ('K3', 1764000000000, "
             "toFixedString(unhex('0302030405060708090a0b0c0d0e0f10'), 16), 'cam3', 1, 'K3', 0.9, 6, 2, 0, 0, 10, 10, "
             "0, 'gw', 1764000000100)")
    apply_all(db)
    row = db.query("SELECT hour, vehicle_color, vehicle_type FROM detections_by_hour WHERE camera_id = 'cam3'", "CSV")
    assert str(row).strip() == "490000,6,2", str(row)


def test_case_registry_reads_the_highest_version_and_holds_select_by_hex(db):
    """The case and hold reads of clickhouse/src/cases.rs, and retention's held-row
    condition (clickhouse/src/retention.rs), on a current engine."""
    apply_all(db)
    for version, status in [(1, "open"), (3, "closed"), (2, "open")]:
        db.query(f"INSERT INTO cases (case_id, version, updated_at_ms, body) VALUES "
                 f"('C-1', {version}, {version}, '{{\"status\":\"{status}\"}}')")
    one = db.query("SELECT body FROM cases WHERE case_id = 'C-1' ORDER BY version DESC LIMIT 1", "CSV")
    assert "closed" in str(one), str(one)
    listed = db.query("SELECT body FROM cases ORDER BY case_id, version DESC LIMIT 1 BY case_id", "CSV")
    assert str(listed).strip().count("\n") == 0 and "closed" in str(listed), str(listed)
    for _ in range(2):
        db.query("INSERT INTO legal_holds (case_id, event_id, placed_by, placed_at_ms) VALUES "
                 "('C-1', toFixedString(unhex('0102030405060708090a0b0c0d0e0f10'), 16), 'sam', 1)")
    holds = db.query("SELECT case_id, hex(event_id) FROM legal_holds ORDER BY case_id, event_id, placed_at_ms "
                     "LIMIT 1 BY case_id, event_id", "CSV")
    assert str(holds).strip() == '"C-1","0102030405060708090A0B0C0D0E0F10"', str(holds)
    for n in ["10", "11"]:
        db.query("INSERT INTO detections (subject_key, captured_at_ms, event_id, camera_id, object_class, "
                 "plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, bbox_width, "
                 "bbox_height, has_snapshot, gateway_id, received_at_ms) VALUES "
                 f"('K9', 1764000000000, toFixedString(unhex('01020304050607080900000000000{n}0'), 16), "
                 "'cam9', 1, 'K9', 0.9, 1, 1, 0, 0, 10, 10, 0, 'gw', 1764000000100)")
    counted = db.query("SELECT countIf(captured_at_ms < 1800000000000 AND hex(event_id) NOT IN "
                       "('01020304050607080900000000000100')) AS removable, count() AS total FROM detections "
                       "WHERE day >= toDate('2025-11-24') AND day < toDate('2025-12-01') AND subject_key = 'K9'",
                       "CSV")
    assert str(counted).strip() == "1,2", str(counted)


def test_a_closing_version_wins_a_tie(db):
    """clickhouse/src/cases.rs stores version*2 (+1 when it closes): of two writers of one
    version the closing row is read, and is the one a merge keeps."""
    apply_all(db)
    for version, status in [(5, "closed"), (4, "open")]:
        db.query(f"INSERT INTO cases (case_id, version, updated_at_ms, body) VALUES "
                 f"('C-2', {version}, 2, '{{\"case_id\":\"C-2\",\"status\":\"{status}\"}}')")
    one = db.query("SELECT body FROM cases WHERE case_id = 'C-2' ORDER BY version DESC LIMIT 1", "CSV")
    assert "closed" in str(one), str(one)
    db.query("OPTIMIZE TABLE cases FINAL")
    merged = db.query("SELECT count(), any(body) FROM cases WHERE case_id = 'C-2'", "CSV")
    assert str(merged).startswith("1,") and "closed" in str(merged), str(merged)
    same = db.query("SELECT count() FROM cases WHERE case_id = 'C-2' AND intDiv(version, 2) = intDiv(4, 2)", "CSV")
    assert str(same).strip() == "1", str(same)
