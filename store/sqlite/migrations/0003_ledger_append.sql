-- 0003: what every enrollment writes, kept to the pages it cannot avoid.
--
-- The certificates table is rebuilt without AUTOINCREMENT. Certificates are
-- never deleted, so seq, the rowid, already only grows (were the newest row
-- deleted by hand, its seq would be given again); AUTOINCREMENT made every
-- commit also write sqlite_sequence. Columns, constraints and seq values
-- stay as they were.
--
-- certificates_subject is gone: a fleet's subjects are unique and in no
-- order, so the index took a random page of a large B-tree with every
-- certificate, and with a million certificates enrollment throughput fell
-- by 10-15 %. Nothing on a request's path looks certificates up by subject;
-- BySubject now reads the table.
CREATE TABLE certificates_0003 (
	seq               INTEGER PRIMARY KEY,
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

INSERT INTO certificates_0003 (
	seq, serial, subject, sans, not_before, not_after, key_algorithm, profile,
	requester, auth_method, issued_at, der, revoked, revoked_at, revocation_reason
)
SELECT
	seq, serial, subject, sans, not_before, not_after, key_algorithm, profile,
	requester, auth_method, issued_at, der, revoked, revoked_at, revocation_reason
FROM certificates ORDER BY seq;

DROP TABLE certificates;
ALTER TABLE certificates_0003 RENAME TO certificates;

CREATE INDEX certificates_revoked ON certificates (revoked_at) WHERE revoked = 1;
