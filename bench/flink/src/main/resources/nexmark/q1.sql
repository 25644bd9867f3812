-- q1, currency conversion: the price in euros (0.908 * price, a DECIMAL).
SELECT
    auction,
    bidder,
    0.908 * price AS price,
    `dateTime`,
    extra
FROM bid;
