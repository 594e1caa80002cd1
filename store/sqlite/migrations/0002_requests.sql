-- 0002: enrollment requests waiting for manual approval (RFC 7030 4.2.3).
--
-- id is derived by the server from label, requester and CSR, so a retry finds
-- its request. status moves pending -> approved -> issued or pending -> rejected;
-- every move is a conditional UPDATE, so two nodes cannot both make it.
CREATE TABLE requests (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	id            TEXT    NOT NULL UNIQUE CHECK (id <> ''),
	label         TEXT    NOT NULL,
	operation     TEXT    NOT NULL,
	requester     TEXT    NOT NULL,
	auth_method   TEXT    NOT NULL,
	subject       TEXT    NOT NULL,
	sans          TEXT    NOT NULL DEFAULT '[]'
	              CHECK (json_valid(sans) AND json_type(sans) = 'array'),
	key_algorithm TEXT    NOT NULL,
	csr           BLOB    NOT NULL,
	created_at    TEXT    NOT NULL,
	status        TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'issued')),
	decided_by    TEXT    NOT NULL DEFAULT '',
	decided_at    TEXT,
	reason        TEXT    NOT NULL DEFAULT '',
	serial        TEXT
) STRICT;

CREATE INDEX requests_status ON requests (status, seq);

-- The CRL lists revoked certificates; this keeps that query off a table scan.
CREATE INDEX certificates_revoked ON certificates (revoked_at) WHERE revoked = 1;
