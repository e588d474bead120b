-- The nested buckets of the namespace, apart from its keys: a transaction
-- reads the names of every nested bucket in one statement with its BEGIN
-- (phr_kv's own key would walk every key of the namespace to find them).
-- IF NOT EXISTS: an operator may have built it ahead, CONCURRENTLY, on a
-- large database (docs/operations.md).
CREATE INDEX IF NOT EXISTS phr_kv_buckets ON phr_kv (ns, b, k) WHERE v IS NULL;
