-- 0003: no index on subject.
--
-- A fleet's subjects are unique and in no order, so certificates_subject
-- took a random page of a large B-tree with every certificate issued (and
-- with it more WAL to write and flush per commit). Nothing on a request's
-- path looks certificates up by subject; BySubject now reads the table.
DROP INDEX IF EXISTS certificates_subject;
