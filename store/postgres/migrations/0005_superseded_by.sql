-- 0005: which certificate renewed a certificate.
--
-- On a label with revoke_on_renew, a renewal revokes the certificate it
-- renews (reason superseded) and superseded_by holds the serial of the
-- certificate that replaced it, written by the same UPDATE. A device whose
-- renewal answer was lost can then get its new certificate again, and estd
-- can tell whether a revocation whose outcome it did not learn committed.
-- NULL for every other certificate. A nullable column without a default or
-- a constraint is added without reading or rewriting the table.
ALTER TABLE certificates ADD COLUMN IF NOT EXISTS superseded_by text;
