-- Rate limits that phrd nodes share (login attempts per account and per
-- client, wrong bearer tokens per client): one token bucket per limit and
-- key, taken and refilled by one conditional statement, so that nodes
-- never both spend the last token. key is an HMAC of the account id or
-- client address under the server key: no address is stored in clear.
CREATE TABLE phr_limits (
    name   text             NOT NULL,
    key    bytea            NOT NULL,
    tokens double precision NOT NULL,
    last   timestamptz      NOT NULL,
    PRIMARY KEY (name, key)
);
