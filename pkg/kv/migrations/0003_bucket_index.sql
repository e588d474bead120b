-- The nested buckets of a bucket, apart from its keys: a transaction reads
-- the names of a bucket's nested buckets in one statement (phr_kv's own
-- key would walk every key of the bucket to find them).
CREATE INDEX phr_kv_buckets ON phr_kv (ns, b, k) WHERE v IS NULL;
