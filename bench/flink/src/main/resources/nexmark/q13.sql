-- q13, bounded side input join: each bid with the side input's value for key
-- auction mod 10000. The suite uses a processing-time lookup join
-- (FOR SYSTEM_TIME AS OF); Flink 2's filesystem connector is not a lookup source,
-- so this is a regular join with the (static, bounded) side table, which yields
-- the same rows.
CREATE TEMPORARY TABLE IF NOT EXISTS side_input (
    `key` BIGINT,
    `value` VARCHAR
) WITH (
    'connector' = 'filesystem',
    'path' = 'file://${SIDE_INPUT}',
    'format' = 'csv'
);

SELECT B.auction, B.bidder, B.price, B.`dateTime`, S.`value`
FROM bid AS B
JOIN side_input AS S ON MOD(B.auction, 10000) = S.`key`;
