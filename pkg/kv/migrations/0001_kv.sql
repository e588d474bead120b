-- One table holds every namespace's buckets and keys. ns names the store
-- (the share store, an account's vault, ...); b is the bucket's path
-- (each name length-prefixed, so that no path is ambiguous and every
-- descendant of a bucket starts with its path); k is the key. A row with
-- v NULL is a nested bucket named k inside b, and carries the bucket's
-- sequence; any other row is a key with its value. bytea compares
-- bytewise, as bbolt orders keys. Values are sealed by phr before they
-- get here: compressing them would waste work, so they are stored as
-- they come (STORAGE EXTERNAL: out of line when large, never compressed).
CREATE TABLE phr_kv (
    ns  text   NOT NULL,
    b   bytea  NOT NULL,
    k   bytea  NOT NULL,
    v   bytea,
    seq bigint,
    PRIMARY KEY (ns, b, k),
    CHECK ((v IS NULL) = (seq IS NOT NULL))
);
ALTER TABLE phr_kv ALTER COLUMN v SET STORAGE EXTERNAL;
