-- q12, processing-time windows: bids per bidder in 10 s tumbling windows of
-- processing time.
CREATE TEMPORARY VIEW IF NOT EXISTS bid_proctime AS
SELECT *, PROCTIME() AS p_time FROM bid;

SELECT B.bidder, COUNT(*) AS bid_count, B.window_start AS starttime, B.window_end AS endtime
FROM TABLE(TUMBLE(TABLE bid_proctime, DESCRIPTOR(p_time), INTERVAL '10' SECOND)) AS B
GROUP BY B.bidder, B.window_start, B.window_end;
