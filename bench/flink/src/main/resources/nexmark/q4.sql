-- q4, average closing price per category: the highest bid placed within each
-- auction's lifetime, averaged per category (an integer average of BIGINTs; the
-- suite's sink names the columns (id, final), this select list names them
-- (category, avg)).
-- upsert-key: category
SELECT
    Q.category,
    AVG(Q.final) AS `avg`
FROM (
    SELECT MAX(B.price) AS final, A.category
    FROM auction AS A, bid AS B
    WHERE A.id = B.auction
      AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires
    GROUP BY A.id, A.category
) AS Q
GROUP BY Q.category;
