-- q18, last bid per (bidder, auction) by dateTime (a keep-last deduplication).
-- upsert-key: bidder, auction
SELECT auction, bidder, price, channel, url, `dateTime`, extra
FROM (
    SELECT *,
        ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY `dateTime` DESC) AS rank_number
    FROM bid
)
WHERE rank_number <= 1;
