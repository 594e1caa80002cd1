-- 0001: the certificate ledger.
--
-- seq orders issuance and backs the List cursor. AUTOINCREMENT keeps it from
-- ever being reused, and as the INTEGER PRIMARY KEY it is the rowid, which
-- VACUUM does not renumber.
--
-- serial is the canonical lowercase hexadecimal form of the positive serial
-- number, without leading zeros (big.Int.Text(16)).
--
-- Times are RFC 3339 text in UTC with exactly nine fractional digits, so they
-- round-trip to the nanosecond, cover 0000-9999 (802.1AR's 99991231235959Z
-- included) and compare correctly as text. revoked_at is NULL until revoked.
CREATE TABLE certificates (
	seq               INTEGER PRIMARY KEY AUTOINCREMENT,
	serial            TEXT    NOT NULL UNIQUE
	                  CHECK (serial <> '' AND serial NOT GLOB '*[^0-9a-f]*' AND serial NOT GLOB '0*'),
	subject           TEXT    NOT NULL,
	sans              TEXT    NOT NULL DEFAULT '[]'
	                  CHECK (json_valid(sans) AND json_type(sans) = 'array'),
	not_before        TEXT    NOT NULL,
	not_after         TEXT    NOT NULL,
	key_algorithm     TEXT    NOT NULL,
	profile           TEXT    NOT NULL,
	requester         TEXT    NOT NULL,
	auth_method       TEXT    NOT NULL,
	issued_at         TEXT    NOT NULL,
	der               BLOB    NOT NULL,
	revoked           INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
	revoked_at        TEXT,
	revocation_reason INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX certificates_subject ON certificates (subject);
