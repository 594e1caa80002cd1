-- 0001: the certificate ledger.
--
-- seq orders issuance and backs the List cursor. It is an identity column:
-- values are never reused, but a Put that fails (a duplicate serial) leaves a
-- gap, and with several writers seq order is the order in which inserts
-- began, not the order in which they committed.
--
-- serial is the canonical lowercase hexadecimal form of the positive serial
-- number, without leading zeros (big.Int.Text(16)).
--
-- Times are timestamptz, kept to the microsecond. revoked_at is NULL until
-- revoked (or when revoked without a time).
CREATE TABLE certificates (
	seq               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	serial            text        NOT NULL
	                  CONSTRAINT certificates_serial_unique UNIQUE
	                  CONSTRAINT certificates_serial_canonical CHECK (serial ~ '^[1-9a-f][0-9a-f]*$'),
	subject           text        NOT NULL,
	sans              text[]      NOT NULL DEFAULT '{}',
	not_before        timestamptz NOT NULL,
	not_after         timestamptz NOT NULL,
	key_algorithm     text        NOT NULL,
	profile           text        NOT NULL,
	requester         text        NOT NULL,
	auth_method       text        NOT NULL,
	issued_at         timestamptz NOT NULL,
	der               bytea       NOT NULL,
	revoked           boolean     NOT NULL DEFAULT false,
	revoked_at        timestamptz,
	revocation_reason integer     NOT NULL DEFAULT 0
);

CREATE INDEX certificates_subject ON certificates (subject, seq);
