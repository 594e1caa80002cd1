-- 0006: pending requests by label and requester.
--
-- A label caps how many requests may wait for an operator (max_pending,
-- max_pending_per_requester); each new request counts those of its label
-- and requester. The index holds pending requests only, so decided ones,
-- however many accumulate, cost nothing.
CREATE INDEX IF NOT EXISTS requests_pending ON requests (label, requester) WHERE status = 'pending';
