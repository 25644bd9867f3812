-- The suite's combined `datagen` table, read from a JSON-lines event file (one event
-- a line, the layout sabot.nexmark.write_events writes). Only the ROW matching
-- event_type is non-null; dateTime is the nested dateTime of that ROW and carries the
-- suite's watermark (dateTime minus 4 s).
CREATE TEMPORARY TABLE datagen (
    event_type INT,
    person ROW<
        id BIGINT,
        name VARCHAR,
        emailAddress VARCHAR,
        creditCard VARCHAR,
        city VARCHAR,
        state VARCHAR,
        `dateTime` TIMESTAMP(3),
        extra VARCHAR>,
    auction ROW<
        id BIGINT,
        itemName VARCHAR,
        description VARCHAR,
        initialBid BIGINT,
        reserve BIGINT,
        `dateTime` TIMESTAMP(3),
        expires TIMESTAMP(3),
        seller BIGINT,
        category BIGINT,
        extra VARCHAR>,
    bid ROW<
        auction BIGINT,
        bidder BIGINT,
        price BIGINT,
        channel VARCHAR,
        url VARCHAR,
        `dateTime` TIMESTAMP(3),
        extra VARCHAR>,
    `dateTime` AS
        CASE
            WHEN event_type = 0 THEN person.`dateTime`
            WHEN event_type = 1 THEN auction.`dateTime`
            ELSE bid.`dateTime`
        END,
    WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = 'file://${EVENTS_FILE}',
    'format' = 'json',
    'json.timestamp-format.standard' = 'SQL',
    'json.fail-on-missing-field' = 'false',
    'json.ignore-parse-errors' = 'false'
);
