-- q7, highest bid: the bids carrying the maximum price of each 10 s tumbling
-- window, placed within [window_end - 10 s, window_end]. The suite inserts this
-- select list by position into a sink declared (auction, bidder, price, ...), so
-- its sink's price and bidder columns are swapped; this is the select list.
SELECT B.auction, B.price, B.bidder, B.`dateTime`, B.extra
FROM bid AS B
JOIN (
    SELECT MAX(price) AS maxprice, window_end AS `dateTime`
    FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
    GROUP BY window_start, window_end
) AS B1
ON B.price = B1.maxprice
WHERE B.`dateTime` BETWEEN B1.`dateTime` - INTERVAL '10' SECOND AND B1.`dateTime`;
