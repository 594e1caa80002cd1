-- 0004: certificates by issuance time.
--
-- The dashboard counts the certificates issued per hour and per day; without
-- an index that meant reading every record of the period. issued_at only
-- grows (each node stamps its own clock), so the index is written at its
-- end. Building it on a large table holds writes for as long as it takes
-- (migrations run in one transaction): run `estd migrate` before starting
-- the nodes of a new version.
CREATE INDEX IF NOT EXISTS certificates_issued_at ON certificates (issued_at);
