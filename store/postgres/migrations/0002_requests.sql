-- 0002: enrollment requests waiting for manual approval (RFC 7030 4.2.3).
--
-- id is derived by the server from label, requester and CSR, so a retry finds
-- its request. status moves pending -> approved -> issued or pending -> rejected;
-- every move is a conditional UPDATE, so two nodes cannot both make it.
CREATE TABLE requests (
	seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id            text        NOT NULL UNIQUE CHECK (id <> ''),
	label         text        NOT NULL,
	operation     text        NOT NULL,
	requester     text        NOT NULL,
	auth_method   text        NOT NULL,
	subject       text        NOT NULL,
	sans          text[]      NOT NULL DEFAULT '{}',
	key_algorithm text        NOT NULL,
	csr           bytea       NOT NULL,
	created_at    timestamptz NOT NULL,
	status        text        NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'issued')),
	decided_by    text        NOT NULL DEFAULT '',
	decided_at    timestamptz,
	reason        text        NOT NULL DEFAULT '',
	serial        text
);

CREATE INDEX requests_status ON requests (status, seq);

-- The CRL lists revoked certificates; this keeps that query off a table scan.
CREATE INDEX certificates_revoked ON certificates (revoked_at NULLS FIRST, seq) WHERE revoked;
