-- q19, the top 10 bids of each auction by price.
-- upsert-key: auction, rank_number
SELECT auction, bidder, price, channel, url, `dateTime`, extra, rank_number
FROM (
    SELECT *,
        ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number
    FROM bid
)
WHERE rank_number <= 10;
