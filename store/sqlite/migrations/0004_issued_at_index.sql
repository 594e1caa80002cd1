-- 0004: certificates by issuance time.
--
-- The dashboard counts the certificates issued per hour and per day; without
-- an index that meant reading every record of the period, full rows, and
-- with a fleet's volume a month is millions of them. issued_at only grows
-- (each node stamps its own clock as it records), so the index is written
-- at its end, as the serial index is: no random page per certificate.
-- issued_at is RFC 3339 in UTC with a fixed nine-digit fraction, so text
-- order is time order.
CREATE INDEX certificates_issued_at ON certificates (issued_at);
