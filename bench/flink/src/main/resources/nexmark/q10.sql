-- q10, log to file system: every bid with its day and minute. The suite writes
-- these rows to CSV files partitioned by (dt, hm); here the rows themselves are
-- the result.
SELECT
    auction,
    bidder,
    price,
    `dateTime`,
    extra,
    DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') AS dt,
    DATE_FORMAT(`dateTime`, 'HH:mm') AS hm
FROM bid;
